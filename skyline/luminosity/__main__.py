import sys

from skyline.daemon import main
from skyline.luminosity.agent import Luminosity

sys.exit(main(Luminosity))
