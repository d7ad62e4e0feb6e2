"""HOMEPOT health checks relative to now, as line protocol for ``sunarchive import``.

Three devices (123 and 124 at site 1, 200 at site 2) report a check every ``step_s`` for
``hours`` up to 30 s before now, none within 3 minutes of 24 hours ago (no point on the edge
of the document's ``NOW() - INTERVAL '24 hours'`` windows while the tests run). Counters
(``transactions``, ``errors``) are monotonic totals, as the profile says; every seventh check
is unhealthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tests.support.upstream_sql import Point

DEVICES = {123: 1, 124: 1, 200: 2}
"""device id → site id."""


@dataclass
class Check:
    device_id: int
    site_id: int
    time_s: int
    fields: dict[str, float | bool]

    def line(self) -> str:
        values = ",".join(f"{k}={_value(v)}" for k, v in self.fields.items())
        return (f"health_checks,device_id={self.device_id},site_id={self.site_id} "
                f"{values} {self.time_s}")


@dataclass
class HomepotData:
    now_s: int
    hours: int = 30
    step_s: int = 120
    seed: int = 2
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        start = self.now_s - self.hours * 3600 + 30
        times = [t for t in range(start, self.now_s - 29, self.step_s)
                 if abs(t - (self.now_s - 86400)) > 180]
        for device, site in DEVICES.items():
            transactions, errors = 0.0, 0.0
            for i, t in enumerate(times):
                transactions += float(rng.integers(0, 20))
                errors += float(rng.integers(0, 2))
                self.checks.append(Check(device, site, t, {
                    "cpu_percent": round(float(rng.uniform(5, 95)), 1),
                    "memory_percent": round(float(rng.uniform(20, 80)), 1),
                    "disk_percent": round(float(rng.uniform(40, 60)), 1),
                    "transactions": transactions, "errors": errors,
                    "latency_ms": round(float(rng.uniform(5, 200)), 1),
                    "is_healthy": (i + device) % 7 != 0}))

    def of(self, device_id: int) -> list[Check]:
        return [c for c in self.checks if c.device_id == device_id]

    def points(self) -> list[Point]:
        """The checks as points (for :func:`tests.support.upstream_sql.insert_sql`)."""
        return [Point("health_checks", {"device_id": str(c.device_id),
                                        "site_id": str(c.site_id)}, dict(c.fields), c.time_s)
                for c in self.checks]

    def line_protocol(self) -> str:
        return "\n".join(c.line() for c in self.checks) + "\n"


def _value(v: float | bool) -> str:
    """A field value in line protocol (floats as written, booleans as true/false)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(float(v))
