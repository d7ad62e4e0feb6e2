"""The ``sunarchive`` command line: the parser of every command and ``main``. Commands are thin
(they parse, call the library, print) and live in one module per group:

- ``collecting.py``: demo, run, serve, monitor, sources
- ``store.py``: status, setup
- ``reading.py``: query, sql
- ``importing.py``: import
- ``maintenance.py``: create-aggregates, chunks, compress, refresh
- ``panels.py``: panels list, set, recompute (the PS100 registry, docs/upstream/ps100.md)
- ``common.py``: the shared flags, settings from flags, signals, the running instance
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from sunarchive.cli.collecting import add_parsers as add_collecting
from sunarchive.cli.common import EPILOG
from sunarchive.cli.importing import add_parser as add_import
from sunarchive.cli.maintenance import add_parsers as add_maintenance
from sunarchive.cli.panels import add_parsers as add_panels
from sunarchive.cli.reading import add_parsers as add_reading
from sunarchive.cli.store import add_setup, add_status
from sunarchive.model import SunarchiveError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunarchive", epilog=EPILOG,
        description="Solar and home-energy telemetry historian: collects readings, keeps "
                    "exact 1-second statistics and 5-minute, hourly and daily rollups.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # the order of the commands in --help
    add_collecting(sub)     # demo, run, serve, monitor, sources
    add_status(sub)
    add_reading(sub)        # query, sql
    add_setup(sub)
    add_import(sub)
    add_maintenance(sub)    # create-aggregates, chunks, compress, refresh
    add_panels(sub)         # panels list, set, recompute
    return parser


TIME_FLAGS = ("--start", "--end", "--older-than")
"""Flags whose value may start with a dash (``-24h``, ``-7d``)."""
RELATIVE_VALUE = re.compile(r"^-\d+[smhd]$")


def glue_relative_times(argv: Sequence[str]) -> list[str]:
    """``--start -24h`` → ``--start=-24h``: argparse would take ``-24h`` for a flag."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in TIME_FLAGS and RELATIVE_VALUE.match(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def one_line(message: str) -> str:
    """A message as one line (a driver's error may add a hint line, e.g. PostgreSQL's "Is
    the server running on that host …?")."""
    return "; ".join(part.strip() for part in message.splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(glue_relative_times(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except SunarchiveError as exc:
        print(f"sunarchive: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("sunarchive: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
