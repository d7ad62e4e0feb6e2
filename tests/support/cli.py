"""``python -m sunarchive`` in a subprocess with a clean environment, and the demo store's
constants (the ``demo_db`` fixture in conftest.py makes it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.ports import free_port

DEMO_START = "2026-06-21T09:00:00+02:00"
DEMO_SECONDS = 7200
DEMO_PANELS = 4


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without SUNARCHIVE_*/upstream database variables; collectors serve
    their API on a free port so parallel or leftover servers never collide."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SUNARCHIVE_", "TIMESCALE_")) and k != "DATABASE_URL"}
    clean["SUNARCHIVE_HTTP_PORT"] = str(free_port())
    clean.update(extra or {})
    return clean


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sunarchive`` with a clean SUNARCHIVE_* environment."""
    clean = clean_env(env)
    # run outside the checkout so a developer's .env cannot change what the tests see
    result = subprocess.run([sys.executable, "-m", "sunarchive", *args],
                            cwd=cwd or Path(tempfile.gettempdir()), env=clean,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"sunarchive {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result
