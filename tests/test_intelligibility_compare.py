"""benchmarks/intelligibility_compare.py: the paired WER difference of two runs, and pooling with --and."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "intelligibility_compare.py"


def _run(path: Path, sentences: list[str], hypotheses: list[str]) -> Path:
    """An `intelligibility.py --json` file for one speaker."""
    path.write_text(json.dumps({"sentences": sentences, "rows": [{"speaker": "slt", "hypotheses": hypotheses}]}))
    return path


def _compare(*arguments: Path | str) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True,
                            check=True)
    return result.stdout


def test_pooling_adds_the_pairs_of_another_sentence_set(tmp_path):
    first = ["the cat sat", "a dog ran home"]  # 7 reference words
    second = ["birds fly south"]  # 3 reference words
    # set 1: A gets one word wrong in each sentence, B one in the second (a tie there); set 2: A none, B all 3
    a1 = _run(tmp_path / "a1.json", first, ["the cat mat", "a log ran home"])
    b1 = _run(tmp_path / "b1.json", first, ["the cat sat", "a dog ran foam"])
    a2 = _run(tmp_path / "a2.json", second, ["birds fly south"])
    b2 = _run(tmp_path / "b2.json", second, ["words by mouth"])
    alone = _compare(a1, b1)
    assert "WER A 0.286   B 0.143   B - A -0.143" in alone and "B better on 1, worse on 0 of 2" in alone
    pooled = _compare(a1, b1, "--and", a2, b2)
    # (1 + 3 - 2 - 0) word edits more over 10 reference words
    assert "WER A 0.200   B 0.400   B - A +0.200" in pooled and "B better on 1, worse on 1 of 3" in pooled


def test_runs_of_different_sentences_are_refused(tmp_path):
    a = _run(tmp_path / "a.json", ["the cat sat"], ["the cat sat"])
    b = _run(tmp_path / "b.json", ["birds fly south"], ["birds fly south"])
    result = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True)
    assert result.returncode != 0 and "spoke different sentences" in result.stderr
