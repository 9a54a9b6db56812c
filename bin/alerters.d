#!/usr/bin/env bash
# Start, stop, restart or show the alerters daemon: bin/alerters.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" alerters "$@"
