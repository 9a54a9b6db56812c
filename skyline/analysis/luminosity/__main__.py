import sys

from skyline.analysis.luminosity.agent import Luminosity
from skyline.runtime.daemon import main

sys.exit(main(Luminosity))
