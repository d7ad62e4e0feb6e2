"""Support for end-to-end tests of `sunarchive run --config`: the collector in a subprocess,
its sources as `sunarchive sources` lists them, and waiting for a condition."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cli import clean_env, cli


@dataclass
class Collector:
    """A running `sunarchive run`; ``out``, ``err`` and ``returncode`` are set once it ended."""

    config: Path
    db: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    out: str = ""
    err: str = ""
    returncode: int | None = field(default=None)

    def sources(self) -> dict[str, dict[str, Any]]:
        """`sunarchive sources --json` on the same config and store, by source name."""
        out = cli("sources", "--json", "--config", str(self.config), "--db", str(self.db),
                  env=self.env).stdout
        return {s["name"]: s for s in json.loads(out)}

    def sources_table(self) -> str:
        """The plain `sunarchive sources` table."""
        return cli("sources", "--config", str(self.config), "--db", str(self.db),
                   env=self.env).stdout

    def summary(self) -> dict[str, Any]:
        """The JSON summary `run` prints last when it stops."""
        result: dict[str, Any] = json.loads(self.out.strip().splitlines()[-1])
        return result


@contextmanager
def running_collector(config: Path, db: Path,
                      env: dict[str, str] | None = None) -> Iterator[Collector]:
    """`sunarchive run --config CONFIG --db DB` without console and HTTP API until the block
    ends, then stopped with SIGINT like Ctrl-C."""
    env = env or {}
    process = subprocess.Popen(
        [sys.executable, "-m", "sunarchive", "run", "--config", str(config), "--db", str(db),
         "--no-console", "--no-http"], cwd=tempfile.gettempdir(), env=clean_env(env),
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    collector = Collector(config, db, env, process)
    try:
        yield collector
    finally:
        process.send_signal(signal.SIGINT)
        collector.out, collector.err = process.communicate(timeout=60)
        collector.returncode = process.returncode
