"""Every command example in README.md and docs/**/*.md runs as written (issue 18, point 8).

The examples are the lines of fenced ``sh``/``bash``/``console`` blocks. ``sunarchive …`` lines
run through the real CLI in a work directory whose default store
(``./sunarchive-data/sunarchive.duckdb``) is a fresh copy of the demo store, next to the files
the examples name (made by ``_fixture_files``). ``export`` lines set the environment of the
lines after them in their block; a PostgreSQL URL is replaced by a throwaway database holding a
short demo. Commands that run until Ctrl-C are started, waited on until they have done their
work (rows in the store, an answering API, a drawn console), stopped with SIGINT and must exit
with 0. Anything else must be listed in ``NOT_RUN`` with the reason, so a new example that does
not run fails here.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.cli import DEMO_SECONDS, DEMO_START, clean_env, cli
from tests.support.pg_server import drop_database, fresh_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL_LANGS = {"sh", "bash", "console", "shell"}
PROGRAMS = ("sunarchive ", ".venv/bin/sunarchive ")
DEADLINE_S = 180.0   # generous: the machine is shared; every wait is on state, not on time

# Example lines that are not run, exactly as extracted (continuations joined, comment
# stripped), with the reason.
NOT_RUN: dict[str, str] = {
    "printf '{\"device_id\":\"test\",\"voltage\":0.6,\"current\":3.0}\\n' | nc -q1 127.0.0.1 5555":
        "needs a collector with the TCP source of docs/sources/tcp.md listening on port 5555; "
        "tests/test_tcp_source.py sends such JSON lines to a real TCP source",
}
# `make` targets are not run (they install, run the whole suite or run until Ctrl-C): the
# test checks that the Makefile has the target.
# Commands that only TimescaleDB can do: on the throwaway plain PostgreSQL they must refuse
# with a last line saying they need TimescaleDB and a usage-error exit (docs/postgresql.md: they
# exit with an error on engines that need no compression).
TIMESCALE_ONLY = {"compress"}


@dataclass(frozen=True)
class Example:
    """One command line of a doc, as a reader would type it."""

    where: str                       # "README.md:27"
    text: str                        # continuations joined, trailing comment stripped
    env: tuple[tuple[str, str], ...] = field(default=())   # exports before it in its block

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


# -- extraction -----------------------------------------------------------------------------
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` outside quotes after a blank)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _logical_lines(body: str, first_line: int) -> Iterator[tuple[int, str]]:
    """(line number, command) for each command of a block, ``\\`` continuations joined."""
    pending, start = "", 0
    for offset, raw in enumerate(body.splitlines()):
        line = raw.removeprefix("$ ") if not pending else raw
        if not pending:
            start = first_line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = _strip_comment(pending + line).strip()
        pending = ""
        if text:
            yield start, " ".join(text.split()) if "'" not in text else text


def _blocks(path: Path) -> Iterator[tuple[str, int, str]]:
    """(language, line number of the first line inside, body) of each fenced block."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        yield match.group(1), text[:match.start()].count("\n") + 2, match.group(2)


def _doc_name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def shell_examples() -> list[Example]:
    examples = []
    for path in DOC_FILES:
        for lang, first, body in _blocks(path):
            if lang not in SHELL_LANGS:
                continue
            env: dict[str, str] = {}
            for number, text in _logical_lines(body, first):
                if text.startswith("export "):
                    key, _, value = text.removeprefix("export ").partition("=")
                    env[key] = " ".join(shlex.split(value))
                    continue
                examples.append(Example(f"{_doc_name(path)}:{number}", text,
                                        tuple(env.items())))
    return examples


EXAMPLES = shell_examples()


def _ids(examples: list[Example]) -> list[str]:
    return [f"{e.where} {e.text[:60]}" for e in examples]


# -- the work directory the examples run in ---------------------------------------------------
def _readme_config() -> str:
    """README's ``# sunarchive.yaml`` block, the config its `run --config` example reads."""
    for lang, _, body in _blocks(ROOT / "README.md"):
        if lang == "yaml" and body.startswith("# sunarchive.yaml"):
            return body
    raise AssertionError("README.md lost its `# sunarchive.yaml` block")


def _panel_csv(start_s: int, rows: int, panel: str) -> str:
    """A logger export: naive local times, one row per second of one panel."""
    lines = ["timestamp,panel_id,voltage,current,power"]
    for i in range(rows):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start_s + i))
        lines.append(f"{stamp},{panel},30.5,2.0,61.0")
    return "\n".join(lines) + "\n"


def _fixture_files(work: Path) -> None:
    """The files the examples name, small but real (times are naive local times)."""
    t0 = 1_782_021_600   # 2026-06-21 06:00:00 as a naive clock reading
    (work / "sunarchive.yaml").write_text(_readme_config())
    for folder, count in (("data", 2), ("exports", 2)):
        (work / folder).mkdir()
        for n in range(1, count + 1):
            (work / folder / f"panel_{n}.csv").write_text(_panel_csv(t0, 20, f"panel_{n}"))
    (work / "east.csv").write_text("unix_ms,volts,watts\n" + "".join(
        f"{(t0 + i) * 1000},30.1,{50 + i}\n" for i in range(20)))
    (work / "export.lp").write_text("".join(
        f"ps100_readings,panel_id=lp power={60 + i},voltage=30.2 {(t0 + i) * 10**9}\n"
        for i in range(20)))
    (work / "lake").mkdir()
    for n in (1, 2):
        table = pa.table({"time": pa.array([(t0 + i) * 10**6 for i in range(20)],
                                            pa.timestamp("us")),
                          "panel_id": [f"lake_{n}"] * 20, "power": [40.0 + i for i in range(20)]})
        pq.write_table(table, work / "lake" / f"part-{n}.parquet")
    (work / "dumps").mkdir()
    for i in range(3):
        (work / "dumps" / f"{i}.json").write_text(json.dumps({
            "timestamp": f"2025-05-01T12:00:{5 * i:02d}+02:00",
            "inverter": {"serial": "ET123", "ppv": 1234.5, "battery_soc": 57,
                         "battery_power": -200},
            "meter": {"grid_power": 310.0, "consumption": 924.5}}))
    for rig in (work / "runs", work / "runs" / "2024-03"):
        rig.mkdir(exist_ok=True)
        (rig / "mpp.txt").write_text("Timestamp\tCurrent\tVoltage\n" + "".join(
            f"01/03/2024 12:00:{i:02d}\t0.1\t0.5{i % 10}\n" for i in range(20)))


@pytest.fixture
def work(demo_db: Path, tmp_path: Path) -> Path:
    """A directory with a fresh copy of the demo store as the default store and the files the
    examples name."""
    work = tmp_path / "work"
    (work / "sunarchive-data").mkdir(parents=True)
    shutil.copy(demo_db, work / "sunarchive-data" / "sunarchive.duckdb")
    _fixture_files(work)
    return work


@pytest.fixture(scope="module")
def demo_pg(pg_server_url: str) -> Iterator[str]:
    """A plain PostgreSQL database holding half an hour of the demo: the stand-in for every
    postgresql:// URL in the docs. Shared: the examples' writes are idempotent maintenance."""
    url = fresh_database(pg_server_url)
    cli("demo", "--database-url", url, "--panels", "2", "--speed", "0", "--duration", "1800",
        "--start", DEMO_START, "--no-console", "--no-http", "--timezone", "Europe/Berlin")
    yield url
    drop_database(url)


# -- running one example ---------------------------------------------------------------------
def _substitute(value: str, pg: str, work: Path) -> str:
    """A doc's placeholder → what exists here: its PostgreSQL URL, its secret file."""
    if value.startswith("postgresql://"):
        return pg
    if value.startswith("/run/secrets/"):
        secret = work / "secret"
        secret.write_text("unused: the throwaway server trusts local connections\n")
        return str(secret)
    return value


def _expand(arg: str, work: Path) -> list[str]:
    """Shell globbing of one argument, relative to the work directory."""
    if "*" not in arg or any(char.isspace() for char in arg):   # a quoted SQL's * stays
        return [arg]
    matches = sorted(str(p.relative_to(work)) for p in work.glob(arg))
    assert matches, f"{arg}: no fixture file matches; add one to _fixture_files"
    return matches


def _prepare(example: Example, pg: Callable[[], str], work: Path
             ) -> tuple[list[str], dict[str, str]]:
    """The CLI arguments (program name dropped) and environment of an example."""
    needs_pg = any("postgresql://" in part for part in (example.text, *dict(example.env).values()))
    url = pg() if needs_pg else ""
    env = {key: _substitute(value, url, work) for key, value in example.env}
    args = []
    for arg in example.argv[1:]:
        args.extend(_expand(_substitute(arg, url, work), work))
    return args, env


def _runs_until_ctrl_c(args: list[str]) -> bool:
    command = args[0]
    if command in ("demo", "run"):
        return "--duration" not in args
    if command == "monitor":
        return "--once" not in args and "--json" not in args
    return command == "serve"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def _wait_for(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not ready():
        assert process.poll() is None, f"exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {DEADLINE_S:.0f} s"
        time.sleep(0.2)


class _Pty:
    """A terminal for a child's stdout, drained by a thread (a full pty would block it)."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.output = bytearray()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output.extend(chunk)

    def close(self) -> None:
        os.close(self.slave)
        self._thread.join(timeout=10)
        os.close(self.master)


def _start(args: list[str], work: Path, env: dict[str, str]
           ) -> tuple[subprocess.Popen[bytes], _Pty, dict[str, str]]:
    full_env = clean_env(env)
    terminal = _Pty()
    process = subprocess.Popen([sys.executable, "-m", "sunarchive", *args], cwd=work,
                               env=full_env, stdin=subprocess.DEVNULL, stdout=terminal.slave,
                               stderr=subprocess.PIPE)
    return process, terminal, full_env


def _interrupt(process: subprocess.Popen[bytes], terminal: _Pty) -> tuple[int, str]:
    """SIGINT (Ctrl-C), then the exit code and stderr once it has stopped by itself."""
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        terminal.close()
    return int(process.returncode), stderr.decode(errors="replace")


def _run_until_ctrl_c(args: list[str], work: Path, env: dict[str, str]) -> None:
    """Start a command that runs until Ctrl-C, wait for its work, Ctrl-C, expect exit 0."""
    helper = None
    if args[0] == "monitor":   # needs a running collector on the same store
        helper = _start(["demo", "--no-console"], work, env)
        _wait_for("demo rows for monitor",
                  _has_latest_after_start(helper[2]["SUNARCHIVE_HTTP_PORT"]), helper[0])
    process, terminal, full_env = _start(args, work, env)
    port = full_env["SUNARCHIVE_HTTP_PORT"]
    try:
        if args[0] == "serve":
            _wait_for("answer from /api/v1/health",
                      lambda: _get(f"http://127.0.0.1:{port}/api/v1/health")[0] == 200, process)
        elif args[0] == "monitor":
            _wait_for("console frame", lambda: b"panels active" in terminal.output, process)
        else:
            _wait_for("rows in /api/v1/latest", _has_latest_after_start(port), process)
    finally:
        code, stderr = _interrupt(process, terminal)
        if helper is not None:
            helper_code, helper_err = _interrupt(helper[0], helper[1])
            assert helper_code == 0, helper_err
    assert code == 0, f"exit {code} after Ctrl-C:\n{stderr}"
    assert "Traceback" not in stderr, stderr


def _has_latest_after_start(port: str) -> Callable[[], bool]:
    """True once the collector has stored a second of its own: one after every second of the
    demo stores the examples start from (a demo without --start picks a daytime near now)."""
    stored_until = _epoch(DEMO_START) + DEMO_SECONDS

    def ready() -> bool:
        status, body = _get(f"http://127.0.0.1:{port}/api/v1/latest")
        times = re.findall(rb'"time":\s*"([^"]+)"', body) if status == 200 else []
        return any(_epoch(stamp.decode()) > stored_until for stamp in times)
    return ready


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _run_once(example: Example, args: list[str], work: Path, env: dict[str, str]) -> None:
    result = cli(*args, cwd=work, env=env, check=False)
    output = f"{example.where}: {example.text}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, output
    if args[0] in TIMESCALE_ONLY and "postgresql://" in (env.get("SUNARCHIVE_DATABASE_URL", "")
                                                         + " ".join(args)):
        assert result.returncode == 2, output
        assert "needs TimescaleDB" in result.stderr.strip().splitlines()[-1], output
        return
    assert result.returncode == 0, output


# -- the tests -------------------------------------------------------------------------------
def test_examples_were_found() -> None:
    programs = {e.argv[1] for e in EXAMPLES if e.text.startswith(PROGRAMS)}
    assert {"demo", "run", "query", "sql", "import", "status", "refresh"} <= programs


def test_every_example_line_is_a_command_or_listed() -> None:
    """A shell example is a sunarchive command, a make target, or listed with its reason."""
    unknown = [f"{e.where}: {e.text}" for e in EXAMPLES
               if not e.text.startswith((*PROGRAMS, "make ")) and e.text not in NOT_RUN]
    assert unknown == [], "run these in this test or list them in NOT_RUN with the reason"
    stale = set(NOT_RUN) - {e.text for e in EXAMPLES}
    assert stale == set(), "NOT_RUN lists lines the docs no longer have"


def test_unlabelled_blocks_hold_no_commands() -> None:
    """A command in a block without a language would escape this test: label it ``sh`` (an
    example that runs) or ``text`` (a synopsis, output)."""
    hidden = [f"{_doc_name(path)}:{first + i}"
              for path in DOC_FILES for lang, first, body in _blocks(path) if lang == ""
              for i, line in enumerate(body.splitlines())
              if line.startswith((*PROGRAMS, "make "))]
    assert hidden == []


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.text.startswith("make ")],
                         ids=_ids([e for e in EXAMPLES if e.text.startswith("make ")]))
def test_make_example_names_a_target(example: Example) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in example.argv[1:]:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE), example.where


SUNARCHIVE_EXAMPLES = [e for e in EXAMPLES if e.text.startswith(PROGRAMS)]


@pytest.mark.slow   # the examples together: minutes on a loaded 2-core machine
@pytest.mark.parametrize("example", SUNARCHIVE_EXAMPLES, ids=_ids(SUNARCHIVE_EXAMPLES))
def test_sunarchive_example_runs(example: Example, work: Path,
                                 request: pytest.FixtureRequest) -> None:
    args, env = _prepare(example, lambda: str(request.getfixturevalue("demo_pg")), work)
    if args[0] == "demo" and "--start" in args:   # into a new store: a stored span does nothing
        (work / "sunarchive-data" / "sunarchive.duckdb").unlink()
    if _runs_until_ctrl_c(args):
        _run_until_ctrl_c(args, work, env)
    else:
        _run_once(example, args, work, env)
