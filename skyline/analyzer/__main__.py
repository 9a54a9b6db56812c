import sys

from skyline.analyzer.agent import Analyzer
from skyline.daemon import main

sys.exit(main(Analyzer))
