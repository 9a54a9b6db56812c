#!/usr/bin/env bash
# Start, stop, restart or show the webapp daemon: bin/webapp.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" webapp "$@"
