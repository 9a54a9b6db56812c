import sys

from skyline.alerters.agent import Alerters
from skyline.daemon import main

sys.exit(main(Alerters))
