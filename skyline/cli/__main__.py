"""``python -m skyline.cli``."""

import sys

from skyline.cli.main import main

sys.exit(main())
