import sys

from tts.cli import main

sys.exit(main())
