"""The ``skyline`` command: daemons, pipeline inspection, users and the demo.

May import: anything in ``skyline``.
"""

from skyline.cli.main import main

__all__ = ["main"]
