"""``python -m utils.fuzz [--per-protocol N] [--seed S] [--protocols a,b]``: one JSON line."""

from __future__ import annotations

import argparse
import json
import sys

from utils.fuzz.run import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m utils.fuzz", description=__doc__)
    p.add_argument("--per-protocol", type=int, default=20_000, help="hostile inputs per protocol")
    p.add_argument("--seed", type=int, default=1, help="hypothesis seed (the run is repeatable)")
    p.add_argument("--protocols", default="all", help="comma-separated, or all")
    args = p.parse_args(argv)
    report = run(args.per_protocol, args.seed, args.protocols)
    print(json.dumps(report, sort_keys=True))
    return 0 if report["crashes"] == 0 and report["good_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
