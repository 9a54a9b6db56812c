#!/usr/bin/env bash
# Start, stop, restart or show the horizon daemon: bin/horizon.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" horizon "$@"
