"""``python -m skyline.analysis.nab run|score ...`` — the same as ``skyline nab run|score ...``."""

import sys

from skyline.analysis.nab.cli import main

sys.exit(main(sys.argv[1:]))
