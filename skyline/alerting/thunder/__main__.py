import sys

from skyline.alerting.thunder.watch import Thunder
from skyline.runtime.daemon import main

sys.exit(main(Thunder))
