import sys

from skyline.runtime.daemon import main
from skyline.webapp.agent import Webapp

sys.exit(main(Webapp))
