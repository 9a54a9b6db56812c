import sys

from skyline.events.panorama.agent import Panorama
from skyline.runtime.daemon import main

sys.exit(main(Panorama))
