import sys

from skyline.analysis.boundary.agent import Boundary
from skyline.runtime.daemon import main

sys.exit(main(Boundary))
