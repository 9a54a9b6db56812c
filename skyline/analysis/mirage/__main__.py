import sys

from skyline.analysis.mirage.agent import Mirage
from skyline.runtime.daemon import main

sys.exit(main(Mirage))
