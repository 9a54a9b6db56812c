#!/usr/bin/env bash
# Start, stop, restart or show the crucible daemon: bin/crucible.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" crucible "$@"
