import sys

from skyline.daemon import main
from skyline.mirage.agent import Mirage

sys.exit(main(Mirage))
