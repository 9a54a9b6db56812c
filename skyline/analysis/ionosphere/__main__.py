import sys

from skyline.analysis.ionosphere.agent import Ionosphere
from skyline.runtime.daemon import main

sys.exit(main(Ionosphere))
