"""The library API: a pinned ``sunarchive.__all__``, one version, and docs/library.md's notebook
session run as written against a demo store."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

import sunarchive
from tests.support.cli import clean_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PINNED = [
    "ConfigError", "InputError", "NotSupportedError", "Profile", "QueueFullError", "Reader",
    "Settings", "SourceError", "StoreError", "StoreLockedError", "StoreTooNewError",
    "StoreUnavailableError", "SunarchiveError", "UserSqlError", "WriterStoppedError",
    "__version__", "load_settings", "open_reader",
]


def test_the_public_names_are_pinned_and_all_resolve() -> None:
    assert sorted(sunarchive.__all__) == sorted(PINNED)
    for name in PINNED:
        assert getattr(sunarchive, name) is not None, name
    # private modules are not attributes of a fresh `import sunarchive` (in this process
    # another test may have imported sunarchive.cli, which makes it one)
    code = ("import sunarchive\ntry:\n    sunarchive.cli\n"
            "except AttributeError:\n    print('private')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "private"


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sunarchive.__version__ == project["version"]
    written = [path.relative_to(ROOT) for path in (ROOT / "src").rglob("*.py")
               if f'"{project["version"]}"' in path.read_text()]
    assert written == [], "the version is written again here; use sunarchive.__version__"


def test_importing_sunarchive_loads_no_engine() -> None:
    code = ("import sys, sunarchive; "
            "print(sorted({'duckdb', 'psycopg', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_naive_time_is_refused(demo_db: Path) -> None:
    with sunarchive.open_reader(str(demo_db)) as reader, \
            pytest.raises(sunarchive.InputError, match="no time zone"):
        reader.query("ps100_readings", start=datetime(2026, 6, 21, 9))


def test_an_unknown_measurement_is_one_line(demo_db: Path) -> None:
    with sunarchive.open_reader(str(demo_db)) as reader:
        for call in (reader.latest, reader.query, reader.energy):
            with pytest.raises(sunarchive.InputError, match="unknown measurement 'nope'"):
                call("nope")


def test_two_readers_of_one_store_may_be_open_at_once(demo_db: Path) -> None:
    """A notebook that runs its cell again opens a second reader before the first is
    closed: DuckDB shares one database per file in a process, whose configuration the first
    reader locked; the second must open and read the same, not fail on the lock."""
    first = sunarchive.open_reader(str(demo_db))
    second = sunarchive.open_reader(str(demo_db))
    try:
        assert first.latest("ps100_readings").equals(second.latest("ps100_readings"))
        assert second.latest("ps100_readings").num_rows > 0
    finally:
        first.close()
    assert second.sql("SELECT COUNT(*) AS n FROM ps100_readings_1s").column("n")[0].as_py() > 0
    second.close()


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_the_notebook_session_in_docs_library_md_runs(demo_db: Path, tmp_path: Path) -> None:
    """demo_db is the demo docs/library.md names (conftest: DEMO_START, 2 h, 4 panels)."""
    store = tmp_path / "sunarchive-data" / "sunarchive.duckdb"
    store.parent.mkdir()
    shutil.copy(demo_db, store)
    blocks = _python_blocks((ROOT / "docs" / "library.md").read_text())
    assert len(blocks) >= 4
    script = tmp_path / "session.py"
    script.write_text("\n".join(blocks))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Europe/Berlin" in result.stdout
    assert "is not an ISO 8601 time" in result.stdout
