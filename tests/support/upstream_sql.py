"""The upstream systems' SQL blocks (tests/data/upstream-sql, copied from the team's
shared/upstream-sql) and data for them relative to now.

:func:`blocks` parses the ``-- name:`` / ``-- engines:`` blocks, verbatim. :class:`HoymilesData`
is what the Hoymiles bridge pushes to InfluxDB (``dtu``, ``inverter``, ``port``: one DTU, two
inverters, six ports polled every minute for five hours up to now), as line protocol for
``sunarchive import`` or as 1 s rows for a plain INSERT where there is no COPY (PGlite).
:class:`PS100Demo` is the PS100 data: ``sunarchive demo`` of a few panels, at a site where the
sun is up, for the half hour up to now, through the collector and its write hook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sunarchive.model import FieldKind
from sunarchive.profiles.spec import Profile
from sunarchive.storage.tiered import tier_columns

UPSTREAM_SQL = Path(__file__).resolve().parents[1] / "data" / "upstream-sql"


@dataclass(frozen=True)
class Block:
    """One ``-- name:`` block of an upstream-sql/*.sql file, verbatim."""

    file: str
    name: str
    engines: tuple[str, ...]
    sql: str


def blocks(system: str | None = None, folder: Path = UPSTREAM_SQL) -> list[Block]:
    """Every block of one system's file (``ps100``: ``ps100.sql``), or of every file."""
    out = []
    paths = [folder / f"{system}.sql"] if system else sorted(folder.glob("*.sql"))
    for path in paths:
        for text in re.split(r"^(?=-- name:)", path.read_text(), flags=re.MULTILINE):
            name = re.search(r"^-- name:\s*(\S+)", text, re.MULTILINE)
            engines = re.search(r"^-- engines:(.*)$", text, re.MULTILINE)
            if name and engines:
                out.append(Block(path.stem, name.group(1), tuple(engines.group(1).split()),
                                 text.strip()))
    return out


@dataclass(frozen=True)
class PS100Demo:
    """``sunarchive demo`` of ``panels`` simulated panels for the ``span_s`` seconds up to
    ``now_s`` (as fast as possible), written through the collector and the PS100 write hook."""

    now_s: int
    span_s: int = 1800
    panels: int = 2

    @property
    def start_s(self) -> int:
        return self.now_s - self.span_s

    @property
    def panel_ids(self) -> set[str]:
        return {f"panel_{i + 1}" for i in range(self.panels)}

    @property
    def longitude_deg(self) -> float:
        """Where the half hour up to ``now_s`` ends at 13:00 solar time, so the sun is up
        whenever the tests run (the efficiency and the words need daylight; the upstream
        queries need data within the last hour)."""
        utc_hours = (self.now_s % 86400) / 3600.0
        return ((13.0 - utc_hours) * 15.0 + 180.0) % 360.0 - 180.0

    def config_yaml(self) -> str:
        """The site (``simulator`` and ``ps100`` registry defaults) in the sun at ``now_s``:
        10 degrees north, at :attr:`longitude_deg`."""
        site = f"latitude_deg: 10.0, longitude_deg: {self.longitude_deg:.4f}"
        return f"simulator: {{{site}}}\nps100: {{{site}}}\n"

    def demo_options(self, config: Path) -> list[str]:
        """The options of ``sunarchive demo`` that write this data; ``config`` is where
        :meth:`config_yaml` was written."""
        start = datetime.fromtimestamp(self.start_s, UTC).isoformat()
        return ["--config", str(config), "--panels", str(self.panels), "--speed", "0",
                "--duration", str(self.span_s), "--start", start, "--no-console", "--no-http"]


DTU_NAME, DTU_SERIAL = "Dach", "414312345678"
PORTS = {"116180012345": (1, 2, 3, 4), "112180054321": (1, 2)}
ALARMS = {"116180012345": (0, 0), "112180054321": (2, 141)}   # alarm_count, alarm_code


@dataclass
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | bool]
    time_s: int


@dataclass
class HoymilesData:
    """Polls every ``step_s`` from ``hours`` before ``now_s`` to 30 s before it, none within
    3 minutes of one hour ago (so no point sits on the edge of a ``now() - interval '1 hour'``
    window while the tests run)."""

    now_s: int
    hours: int = 5
    step_s: int = 60
    seed: int = 18
    points: list[Point] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        start = self.now_s - self.hours * 3600 + 30
        times = [t for t in range(start, self.now_s - 29, self.step_s)
                 if abs(t - (self.now_s - 3600)) > 180]
        today = {(s, p): 0.0 for s, ports in PORTS.items() for p in ports}
        for t in times:
            dtu_power = 0.0
            for serial, ports in PORTS.items():
                inverter_power = 0.0
                for port in ports:
                    power = round(float(rng.uniform(0, 400)), 1)
                    volts = round(float(rng.uniform(28, 40)), 1)
                    today[(serial, port)] += round(power * self.step_s / 3600)
                    inverter_power += power
                    self.points.append(Point("port", {
                        "serial_number": serial, "port_number": str(port),
                        "dtu_name": DTU_NAME}, {
                        "pv_voltage": volts, "pv_current": round(power / volts, 2),
                        "pv_power": power, "today_production": int(today[(serial, port)]),
                        "total_production": int(1_000_000 + today[(serial, port)])}, t))
                count, code = ALARMS[serial]
                self.points.append(Point("inverter", {
                    "serial_number": serial, "dtu_name": DTU_NAME}, {
                    "grid_voltage": round(float(rng.uniform(225, 240)), 1),
                    "grid_frequency": round(float(rng.uniform(49.9, 50.1)), 2),
                    "temperature": round(float(rng.uniform(20, 45)), 1),
                    "operating_status": int(inverter_power > 0), "alarm_code": code,
                    "alarm_count": count, "link_status": 1}, t))
                dtu_power += inverter_power
            self.points.append(Point("dtu", {"dtu_name": DTU_NAME, "dtu_serial": DTU_SERIAL}, {
                "pv_power": round(dtu_power, 1),
                "today_production": int(sum(today.values())),
                "total_production": int(sum(1_000_000 + v for v in today.values())),
                "alarm_flag": any(count > 0 for count, _ in ALARMS.values())}, t))

    def of(self, measurement: str) -> list[Point]:
        return [p for p in self.points if p.measurement == measurement]

    def line_protocol(self, profiles: dict[str, Profile]) -> str:
        """The points as the bridge writes them (seconds precision)."""
        lines = []
        for p in self.points:
            tags = "".join(f",{k}={v}" for k, v in p.tags.items())
            kinds = {f.name: f.line_type for f in profiles[p.measurement].fields}
            values = ",".join(f"{k}={_lp(v, kinds[k])}" for k, v in p.fields.items())
            lines.append(f"{p.measurement}{tags} {values} {p.time_s}")
        return "\n".join(lines) + "\n"

    def insert_sql(self, profile: Profile) -> str:
        """One INSERT of the points of ``profile`` as 1 s rows (see :func:`insert_sql`)."""
        return insert_sql(profile, self.of(profile.name))


def insert_sql(profile: Profile, points: list[Point]) -> str:
    """One INSERT of ``points`` as 1 s rows of ``profile`` (one sample per second; counters'
    increase 0), for PostgreSQL without COPY (PGlite)."""
    cols = [name for name, _ in tier_columns(profile, "1s")]
    series: dict[tuple[str, ...], int] = {}
    rows = []
    for p in points:
        key = tuple(p.tags[t] for t in profile.tags)
        sid = series.setdefault(key, len(series) + 1)
        values: dict[str, object] = {"time": f"to_timestamp({p.time_s})", "series_id": sid,
                                     "sample_count": 1, "covered_s": 1}
        values.update({profile.tag_column(t): f"'{p.tags[t]}'" for t in profile.tags})
        for spec in profile.fields:
            v = float(p.fields[spec.name])
            for col in spec.columns():
                values[col.name] = _stat(spec.kind, col.name[len(spec.stem) + 1:], v)
        rows.append("(" + ", ".join(str(values.get(c, "NULL")) for c in cols) + ")")
    quoted = ", ".join(f'"{c}"' for c in cols)
    return f'INSERT INTO "{profile.table("1s")}" ({quoted}) VALUES ' + ", ".join(rows)


def _lp(value: float | int | bool, kind: str) -> str:
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int", "uint"):
        return f"{int(value)}i"
    return repr(float(value))


def _stat(kind: FieldKind, stat: str, v: float) -> object:
    """A statistics column of a second holding the one sample ``v``."""
    if stat in ("count", "true_count") or (stat == "any" and kind is FieldKind.FLAG):
        if stat == "any":
            return "true" if v else "false"
        return 1 if stat == "count" else int(bool(v))
    if stat in ("stddev", "increase", "changes", "energy_wh"):
        return 0
    return int(v) if kind is FieldKind.STATE else v
