import sys

from skyline.daemon import main
from skyline.flux.agent import Flux

sys.exit(main(Flux))
