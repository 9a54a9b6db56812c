#!/usr/bin/env bash
# Start, stop, restart or show the luminosity daemon: bin/luminosity.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" luminosity "$@"
