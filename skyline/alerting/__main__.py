import sys

from skyline.alerting.agent import Alerters
from skyline.runtime.daemon import main

sys.exit(main(Alerters))
