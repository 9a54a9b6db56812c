import sys

from skyline.daemon import main
from skyline.horizon.agent import Horizon

sys.exit(main(Horizon))
