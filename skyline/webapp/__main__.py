import sys

from skyline.daemon import main
from skyline.webapp.agent import Webapp

sys.exit(main(Webapp))
