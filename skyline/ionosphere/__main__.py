import sys

from skyline.daemon import main
from skyline.ionosphere.agent import Ionosphere

sys.exit(main(Ionosphere))
