#!/usr/bin/env bash
# Start, stop, restart or show the analyzer daemon: bin/analyzer.d start|stop|restart|status
exec "$(dirname "${BASH_SOURCE[0]}")/skyline-daemon" analyzer "$@"
