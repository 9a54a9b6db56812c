#!/usr/bin/env bash
# Start, stop, restart or show the panorama daemon: bin/panorama.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" panorama "$@"
