"""The live console: system totals, one block per panel, pipeline statistics and alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sunarchive.upstream.ps100_conditions import conditions_estimate

PANEL_MEASUREMENT = "ps100_readings"
WAITING = "… (clear-sky grid not in yet)"
"""A panel whose minute has no clear-sky expectation yet (a new day's grid takes a minute)."""
HOT_CELL_C = 70.0
STALE_AFTER_S = 10.0


def condition(entry: dict[str, Any]) -> str:
    """The sky in words for a panel's latest second: :func:`conditions_estimate` of its
    power and the clear-sky expectation the collector added (``expected_power_w``,
    ``rated_power_w``) — the same words as ``conditions_estimate`` in SQL."""
    power = _v(entry, "power_avg")
    if power is None:
        return "No data"
    if entry.get("rated_power_w") is None:
        return WAITING
    return conditions_estimate(power, entry.get("expected_power_w"),
                               float(entry["rated_power_w"])) or "No data"


def _v(entry: dict[str, Any], column: str) -> float | None:
    value = entry["values"].get(column)
    return None if value is None else float(value)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}"


def panel_entries(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Latest rows of the panel measurement, sorted by panel id."""
    rows = [e for e in snapshot.get("latest", []) if e["measurement"] == PANEL_MEASUREMENT]
    return sorted(rows, key=lambda e: e["tags"])


def system_totals(panels: list[dict[str, Any]]) -> dict[str, float | int]:
    """Total power and current, mean voltage and active panels from the latest rows."""
    powers = [_v(p, "power_avg") for p in panels]
    active = [p for p, w in zip(panels, powers, strict=True) if w is not None and w > 1.0]
    volts = [v for v in (_v(p, "voltage_avg") for p in active) if v is not None]
    return {
        "power_w": sum(w for w in powers if w is not None),
        "current_a": sum(c for c in (_v(p, "current_avg") for p in panels) if c is not None),
        "voltage_v": sum(volts) / len(volts) if volts else 0.0,
        "active_panels": len(active),
        "panels": len(panels),
    }


def alerts(snapshot: dict[str, Any], now_s: float) -> list[str]:
    """Things worth a look: hot panels, stale panels, gaps, write errors, dropped samples."""
    out = []
    for entry in panel_entries(snapshot):
        name = "/".join(entry["tags"])
        temp = _v(entry, "temperature_avg")
        if temp is not None and temp > HOT_CELL_C:
            out.append(f"{name}: hot ({temp:.0f} °C)")
    counters = snapshot.get("counters", {})
    if counters.get("write_errors"):
        out.append(f"write errors: {counters['write_errors']} ({counters.get('last_error')})")
    if counters.get("samples_dropped"):
        out.append(f"samples dropped (queue full): {counters['samples_dropped']}")
    if counters.get("gaps"):
        out.append(f"gaps in series: {counters['gaps']}")
    if now_s - float(snapshot.get("updated_at", now_s)) > STALE_AFTER_S:
        out.append("no update from the collector for more than 10 s")
    return out


def render(snapshot: dict[str, Any]) -> RenderableType:
    """One frame of the console."""
    now = time.time()
    panels = panel_entries(snapshot)
    totals = system_totals(panels)
    head = Table.grid(padding=(0, 3))
    head.add_row(Text(f"{totals['power_w']:.1f} W", style="bold green"),
                 f"{totals['current_a']:.2f} A", f"{totals['voltage_v']:.2f} V avg",
                 f"{totals['active_panels']}/{totals['panels']} panels active")
    blocks = Table(expand=True, show_edge=False)
    for column in ("panel", "V", "I", "P", "temp", "condition", "samples/s", "buffered",
                   "time"):
        blocks.add_column(column)
    for entry in panels:
        stamp = datetime.fromtimestamp(entry["time_s"], UTC).strftime("%H:%M:%S")
        blocks.add_row("/".join(entry["tags"]), _fmt(_v(entry, "voltage_avg"), "V"),
                       _fmt(_v(entry, "current_avg"), "A", 3), _fmt(_v(entry, "power_avg"), "W", 1),
                       _fmt(_v(entry, "temperature_avg"), "°C", 1),
                       condition(entry),
                       f"{_v(entry, 'sample_count') or 0:.0f}",
                       f"{entry.get('buffered', 0)}", stamp)
    return Group(Panel(head, title="System"), Panel(blocks, title="Panels"),
                 Panel(_statistics(snapshot), title="Statistics"),
                 Panel("\n".join(alerts(snapshot, now)) or "none", title="Alerts"))


def _statistics(snapshot: dict[str, Any]) -> Table:
    counters = snapshot.get("counters", {})
    target = sum(float(v) for v in snapshot.get("targets_hz", {}).values())
    rate = float(snapshot.get("samples_per_s", 0.0))
    grid = Table.grid(padding=(0, 3))
    grid.add_row("uptime", _duration(float(snapshot.get("uptime_s", 0))),
                 "readings", f"{counters.get('samples_in', 0):,}")
    grid.add_row("sample rate", f"{rate:,.1f}/s" + (f" of {target:,.0f}/s target ("
                                                    f"{100 * rate / target:.0f} %)"
                                                    if target else ""),
                 "buffered", f"{counters.get('samples_buffered', 0):,}")
    grid.add_row("rows written", f"{counters.get('rows_written', 0):,}",
                 "queue", f"{counters.get('queue_depth', 0)} batches")
    errors = sum(counters.get(k, 0) for k in ("write_errors", "rejected_batches",
                                              "rejected_fields"))
    grid.add_row("errors", f"{errors}",
                 "late samples", f"{counters.get('too_late_samples', 0)}")
    return grid


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"
