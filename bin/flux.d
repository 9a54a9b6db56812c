#!/usr/bin/env bash
# Start, stop, restart or show the flux daemon: bin/flux.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" flux "$@"
