#!/usr/bin/env bash
# Start, stop, restart or show the boundary daemon: bin/boundary.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" boundary "$@"
