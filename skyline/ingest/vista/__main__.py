import sys

from skyline.ingest.vista.agent import Vista
from skyline.runtime.daemon import main

sys.exit(main(Vista))
