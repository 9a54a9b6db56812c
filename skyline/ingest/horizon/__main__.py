import sys

from skyline.ingest.horizon.agent import Horizon
from skyline.runtime.daemon import main

sys.exit(main(Horizon))
