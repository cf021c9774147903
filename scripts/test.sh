#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs the whole suite.
#   bash scripts/test.sh            # install + all tests
#   bash scripts/test.sh -k audio   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: real speech engines for the synthetic corpus, and the sentence sources.
DEBIAN_PACKAGES="flite festival festvox-us-slt-hts espeak-ng sox wordnet-base fortunes chromium"
missing=$(for p in $DEBIAN_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "missing Debian packages: $missing (run as root, or: sudo apt-get install -y $missing)" >&2
    exit 1
  fi
fi

# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
python3 -m pip install -q torch==2.13.0
python3 -m pip install -q -e '.[dev]'

python3 -m pytest -q "$@"
