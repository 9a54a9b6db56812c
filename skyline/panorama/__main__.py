import sys

from skyline.daemon import main
from skyline.panorama.agent import Panorama

sys.exit(main(Panorama))
