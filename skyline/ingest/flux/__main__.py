import sys

from skyline.ingest.flux.agent import Flux
from skyline.runtime.daemon import main

sys.exit(main(Flux))
