"""``python -m skyline.runtime NAME``: run daemon NAME in the foreground (systemd, containers).

The same as ``python -m <its module>`` without having to know where it lives.
"""

import runpy
import sys

from skyline.runtime.daemons import MODULES

if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
    sys.exit(
        f"usage: python -m skyline.runtime NAME [ARGS]...; NAME is one of: {', '.join(MODULES)}"
    )
name = sys.argv.pop(1)
runpy.run_module(MODULES[name], run_name="__main__", alter_sys=True)
