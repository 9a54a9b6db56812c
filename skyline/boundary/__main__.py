import sys

from skyline.boundary.agent import Boundary
from skyline.daemon import main

sys.exit(main(Boundary))
