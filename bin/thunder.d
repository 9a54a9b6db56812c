#!/usr/bin/env bash
# Start, stop, restart or show the thunder daemon: bin/thunder.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" thunder "$@"
