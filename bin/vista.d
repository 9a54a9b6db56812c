#!/usr/bin/env bash
# Start, stop, restart or show the vista daemon: bin/vista.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" vista "$@"
