import sys

from skyline.analysis.analyzer.agent import Analyzer
from skyline.runtime.daemon import main

sys.exit(main(Analyzer))
