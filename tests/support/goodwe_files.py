"""The GoodWe plan's relational tables as ``tests/data/upstream-sql/goodwe_tables.sql`` gives
them, and files in the older optimiser's JSON formats (energy snapshots, charging sessions)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PLAN_SQL = Path(__file__).resolve().parents[1] / "data" / "upstream-sql" / "goodwe_tables.sql"
T0 = datetime(2025, 5, 1, 6, 0, tzinfo=UTC)
"""The first snapshot: 08:00 in Warsaw, the optimiser's zone."""
ZONE = "Europe/Warsaw"


@dataclass(frozen=True)
class PlanTable:
    """One ``CREATE TABLE`` block of the plan: its text verbatim, name and (column, type)."""

    name: str
    sql: str
    columns: list[tuple[str, str]]


def plan_tables() -> list[PlanTable]:
    text = re.sub(r"^--.*$", "", PLAN_SQL.read_text(), flags=re.MULTILINE)
    out = []
    for block in (b.strip() for b in text.split(";")):
        match = re.match(r"CREATE TABLE (\w+) \((.*)\)$", block, re.DOTALL)
        if not match:
            continue
        columns = []
        for line in match.group(2).splitlines():
            parts = line.strip().rstrip(",").split()
            if len(parts) >= 2:
                columns.append((parts[0], parts[1]))
        out.append(PlanTable(match.group(1), block, columns))
    return out


def snapshot(at: datetime, **values: Any) -> dict[str, Any]:
    """A snapshot as the optimiser dumped it: an ISO time with offset, nested sections."""
    battery = {k: values.pop(k) for k in ("battery_soc", "battery_temp") if k in values}
    return {"timestamp": at.isoformat(), **({"battery": battery} if battery else {}),
            **values}


def snapshots(start: datetime, count: int, step_s: int = 10, **tags: str
              ) -> list[dict[str, Any]]:
    """``count`` readings ``step_s`` apart with simple, distinct values."""
    return [{**snapshot(start + timedelta(seconds=i * step_s), battery_soc=40 + i % 50,
                        battery_temp=20.0 + i / 10, pv_power=1000.0 + 7.5 * i,
                        grid_power=-200.0 + i, consumption=800.0 + 0.25 * i,
                        price=0.5 + (i % 3) / 100), **tags}
            for i in range(count)]


def session(session_id: str, start: datetime, hours: float = 2.0, **values: Any
            ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "session_id": session_id, "start_time": start.isoformat(),
        "end_time": (start + timedelta(hours=hours)).isoformat(), "battery_soc_start": 20,
        "battery_soc_end": 80, "energy_charged_kwh": 6.0004, "average_price_pln": 0.41235,
        "total_cost_pln": 2.475, "status": "completed"}
    out.update(values)
    return out


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path
