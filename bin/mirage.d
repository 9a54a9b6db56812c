#!/usr/bin/env bash
# Start, stop, restart or show the mirage daemon: bin/mirage.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" mirage "$@"
