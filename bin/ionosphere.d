#!/usr/bin/env bash
# Start, stop, restart or show the ionosphere daemon: bin/ionosphere.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" ionosphere "$@"
