import sys

from skyline.daemon import main
from skyline.thunder.watch import Thunder

sys.exit(main(Thunder))
