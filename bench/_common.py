"""Helpers shared by the benchmark scripts: machine facts, timing summaries, JSON output.

Every benchmark prints exactly one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def log(message: str) -> None:
    """Progress line on stderr (stdout is reserved for the one JSON object)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_facts() -> dict[str, Any]:
    """CPU, memory and library versions of the machine the figures were measured on."""
    import duckdb
    import psutil
    import pyarrow

    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    try:
        from importlib.metadata import version

        sunarchive_version: str | None = version("sunarchive")
    except Exception:
        sunarchive_version = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity_count": affinity,
        "cpu_model": _cpu_model(),
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "sunarchive": sunarchive_version,
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process image. Not
    ``ru_maxrss``: Linux carries that across fork + exec, so a child started by a big parent
    reports the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def timing_summary(seconds: list[float]) -> dict[str, Any]:
    """p50/p95/min/max/mean in milliseconds of repeated timings (given in seconds)."""
    ms = np.asarray(seconds, np.float64) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "min_ms": round(float(ms.min()), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def emit(result: dict[str, Any], output: Path | None = None) -> None:
    """Print the result as one JSON object on stdout (and write it to ``output`` if given)."""
    text = json.dumps(result, default=str)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def quiet_library_logs() -> None:
    """Keep library log lines (warnings included) on stderr only, never on stdout."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
