"""`egoface` — one command, subcommands per job. Each subcommand parses, calls the library, prints.

Commands that measure accept `--json` and then print exactly one JSON object on stdout (keys in README.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from egoface.cli import bench, calibration, data, demo, eval, face, headset, placement, runtime, track, train
from egoface.cli._common import console

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egoface", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (demo, face, headset, data, train, eval, calibration, placement, runtime, track, bench):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
