"""Assemble a running sunarchive from settings: store, sources, writer, live state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sunarchive.api.app import create_app
from sunarchive.api.auth import check_bind, load_tokens
from sunarchive.api.context import ApiContext
from sunarchive.api.limits import WriteLimits
from sunarchive.api.server import HttpServer
from sunarchive.model import require_aware
from sunarchive.pipeline.accumulator import Accumulator
from sunarchive.pipeline.agent import Agent
from sunarchive.pipeline.live import LiveState
from sunarchive.pipeline.retry import until_reachable
from sunarchive.pipeline.spool import Spool
from sunarchive.pipeline.tasks import wait as wait_for_task
from sunarchive.settings import Settings
from sunarchive.sinks.buffer import DiskBuffer
from sunarchive.sinks.influxdb import Mirror
from sunarchive.sources.base import Source
from sunarchive.sources.running import SourceContext
from sunarchive.sources.simulator import SimulatorConfig, SimulatorSource
from sunarchive.storage.open import SqlStore, default_spool_dir
from sunarchive.stores import live_file, open_store
from sunarchive.upstream import ps100, ps100_clearsky, ps100_live


def http_server(settings: Settings, app: App) -> HttpServer:
    """The API server for a running app (not started); refuses an unsafe bind."""
    tokens = load_tokens([t.get_secret_value() for t in settings.http_read_tokens],
                         [t.get_secret_value() for t in settings.http_write_tokens],
                         settings.http_tokens_file)
    check_bind(settings.http_host, tokens, settings.http_insecure)
    ctx = ApiContext(app.store, app.live, app.agent, tokens, settings.timezone,
                     int(settings.http_max_body_mb * 2**20), limits=write_limits(settings),
                     ps100=app.ps100_settings)
    return HttpServer(create_app(ctx), settings.http_host, settings.http_port,
                      settings.http_header_timeout_s, settings.http_keep_alive_s)


def write_limits(settings: Settings) -> WriteLimits:
    """The limits of the InfluxDB write endpoints from the settings of the same names."""
    return WriteLimits(settings.max_future_s, settings.max_measurements,
                       settings.max_tags_per_series, settings.max_fields_per_measurement)


def simulator_config(sim: Any) -> SimulatorConfig:
    return SimulatorConfig(panels=sim.panels, seed=sim.seed, sample_rate_hz=sim.sample_rate_hz,
                           latitude=sim.latitude_deg, longitude=sim.longitude_deg,
                           tilt_deg=sim.tilt_deg, azimuth_deg=sim.azimuth_deg,
                           drop_probability=sim.drop_probability)


DAYLIGHT_SOLAR_HOURS = (7.0, 17.0)
DEMO_NIGHT_START_SOLAR_HOUR = 10.0


def daylight_start(now: datetime, longitude_deg: float) -> datetime:
    """``now`` if the sun is up at the site (solar time 07–17 h), else the last 10:00 solar."""
    offset_h = longitude_deg / 15.0
    solar_hour = (now.hour + now.minute / 60 + now.second / 3600 + offset_h) % 24
    if DAYLIGHT_SOLAR_HOURS[0] <= solar_hour < DAYLIGHT_SOLAR_HOURS[1]:
        return now
    back_h = (solar_hour - DEMO_NIGHT_START_SOLAR_HOUR) % 24
    return (now - timedelta(hours=back_h)).replace(microsecond=0)


def demo_start(requested: datetime | None, stored_until_s: int | None,
               longitude_deg: float = 0.0) -> datetime:
    """Where a demo simulation starts: as asked, else now — or, while the sun is down at the
    simulated site, the last 10:00 solar time, so a demo shows production. A start inside data
    already stored resumes after it."""
    if requested is not None:
        start = require_aware(requested, "start")
    else:
        start = daylight_start(datetime.now(UTC), longitude_deg)
    if stored_until_s is not None and start.timestamp() <= stored_until_s:
        return datetime.fromtimestamp(stored_until_s + 1, UTC)
    return start


@dataclass
class App:
    """A store, its writer agent and the sources feeding it."""

    store: SqlStore
    agent: Agent
    live: LiveState
    location: str
    sources_config: list[tuple[SimulatorConfig, datetime | None, float]]
    resumed_from: datetime | None = None
    adapters: list[Source] = field(default_factory=list)
    """Device sources built from the config (everything but the simulator)."""
    simulator_names: list[str] = field(default_factory=list)
    """The config names of the simulators, in the order of ``sources_config``."""
    mirror: Mirror | None = None
    """The InfluxDB mirror, when enabled."""
    span_complete: bool = False
    """A rerun of a demo whose whole simulated span is already stored (or spooled)."""
    span_starts: dict[int, datetime] = field(default_factory=dict)
    """Where each resumed simulator's original span began (index in ``sources_config``)."""
    ps100_settings: ps100.Ps100Settings | None = None
    """The ``ps100:`` settings (panel registry, clear-sky grid upkeep)."""
    maintenance_interval_s: float = 60.0
    _upkeep: ps100_clearsky.Background | None = None

    def start(self, duration_s: float | None = None) -> None:
        """Start the writer and every source. A simulator resumed after stored data covers
        only what is left of its original span of ``duration_s`` simulated seconds."""
        for i, (config, start, speed) in enumerate(self.sources_config):
            name = self.simulator_names[i] if i < len(self.simulator_names) else None
            remaining = _remaining_s(duration_s, self.span_starts.get(i), start)
            if remaining is not None and remaining <= 0:
                continue   # this simulator's span is already stored
            self.agent.add_source(SimulatorSource(config, start=start, speed=speed,
                                                  duration_s=remaining, name=name))
            self.agent.follow_own_clock(config.measurement)   # simulated time, not live
        if duration_s is not None and self.sources_config and not self.agent.sources \
                and not self.adapters:
            self.span_complete = True
        for source in self.adapters:
            self.agent.add_source(source)
        if self.mirror is not None:
            self.mirror.start()
        self.agent.start()
        if ps100.MEASUREMENT in self.store.profiles:
            expectations = ps100_live.Expectations()
            tag_names = tuple(self.store.profiles[ps100.MEASUREMENT].tags)
            self.live.annotate = lambda entry: expectations.annotate(entry, tag_names)
            self._upkeep = ps100_clearsky.Background(self._on_writer, self.ps100_settings,
                                                     self.maintenance_interval_s,
                                                     expectations)
            self._upkeep.start()

    def _on_writer(self, fn: Any) -> Any:
        """Run ``fn(schema)`` as a writer task, waiting for it."""
        run = ps100_clearsky.direct(self.store)
        return wait_for_task(self.agent.submit(lambda: run(fn), "PS100 upkeep"), 120.0,
                             "PS100 upkeep")

    def notes(self) -> list[str]:
        """What the user should know about the simulated time."""
        out = []
        for _, start, speed in self.sources_config:
            if start is not None:
                pace = "as fast as possible" if speed == float("inf") else f"at {speed:g}×"
                out.append(f"simulating from {start.isoformat()} {pace}")
        if self.mirror is not None:
            out.append(self.mirror.initialized_text())
        return out

    def finished(self) -> bool:
        """True when there is nothing more to do: every source ended, the span asked for
        was already stored, or the writer died."""
        if not self.agent.writer_alive() and self.agent.writer_error is not None:
            return True
        if self.span_complete:
            return True
        return bool(self.agent.sources) and self.agent.sources_done()

    def stop(self) -> dict[str, Any]:
        if self._upkeep is not None:
            self._upkeep.stop()
        self.agent.stop()
        if self._upkeep is not None and self.agent.writer_error is None:
            ps100_clearsky.once(ps100_clearsky.direct(self.store), self.ps100_settings)
        stats = self.agent.stats
        self.live.update_writer(stats, self.agent.accumulator, 0)
        if self.mirror is not None:
            self.mirror.close()
        summary = {"samples_in": self.agent.accumulator.stats.samples_in,
                   "rows_written": stats.rows_written, "rollup_rows": stats.rollup_rows,
                   "too_late_samples": stats.too_late_samples, "gaps": stats.gaps,
                   "write_errors": stats.write_errors,
                   "spooled_batches": len(self.agent.spool),
                   "writer_error": self.agent.writer_error,
                   "source_errors": dict(self.agent.source_errors)}
        if len(self.agent.spool):
            summary["spool"] = str(self.agent.spool.directory or "memory")
        if self.mirror is not None:
            summary["influxdb"] = self.mirror.status()
        self.live.remove_file()
        self.store.close()
        return summary


def build_app(settings: Settings, demo: bool, collect: bool = True) -> App:
    """A ready-to-start app: the store is open and set up, sources are configured
    (none with ``collect=False``: a server that only takes writes over HTTP)."""
    store = until_reachable(lambda: open_store(settings), "opening the store")
    spool = Spool(settings.spool_dir or default_spool_dir(settings.database_url))
    sims = [s for s in settings.effective_sources() if s.type == "simulator"] if collect \
        else []
    configs = []
    resumed = None
    span_starts: dict[int, datetime] = {}
    targets: dict[str, float] = {}
    for i, sim in enumerate(sims):
        config = simulator_config(sim)
        stored = _newest_s(store.last_time_s(config.measurement),
                           spool.last_time_s(config.measurement))
        start = demo_start(sim.start, stored, sim.longitude_deg) if (demo or sim.start) else None
        if stored is not None and start is not None and int(start.timestamp()) == stored + 1:
            resumed = start - timedelta(seconds=1)
            span_starts[i] = demo_start(sim.start, None, sim.longitude_deg)
        speed = sim.speed if sim.speed > 0 else float("inf")
        configs.append((config, start, speed))
        rate = config.panels * config.sample_rate_hz * (speed if speed != float("inf") else 1)
        targets[config.measurement] = targets.get(config.measurement, 0.0) + rate
    live = LiveState(live_file(settings), targets_hz=targets)
    accumulator = Accumulator(settings.queue_max_samples, settings.queue_full_policy,
                              settings.queue_put_timeout_s)
    agent = Agent(store, accumulator, settings.lateness_s, settings.commit_interval_s,
                  settings.maintenance_interval_s, live, spool, settings.dedup_window_s)
    context = SourceContext(settings.timezone, store.profiles, agent.post_event,
                            settings.max_future_s)
    adapters = [s.build(context) for s in settings.effective_sources()
                if collect and s.type != "simulator"]
    mirror = influx_mirror(settings, store, agent)
    return App(store, agent, live, store.location, configs, resumed, adapters,
               [s.name for s in sims], mirror, span_starts=span_starts,
               ps100_settings=settings.ps100,
               maintenance_interval_s=settings.maintenance_interval_s)


def _newest_s(*times_s: int | None) -> int | None:
    """The latest of some epoch seconds, ignoring the unknown ones."""
    known = [t for t in times_s if t is not None]
    return max(known) if known else None


def _remaining_s(duration_s: float | None, span_start: datetime | None,
                 resume_at: datetime | None) -> float | None:
    """Simulated seconds left of a span of ``duration_s`` that began at ``span_start``, when
    resuming at ``resume_at`` (the whole duration when nothing was resumed)."""
    if duration_s is None or span_start is None or resume_at is None:
        return duration_s
    return duration_s - (resume_at - span_start).total_seconds()


def influx_mirror(settings: Settings, store: SqlStore, agent: Agent) -> Mirror | None:
    """The InfluxDB mirror fed by ``agent`` (None unless ``influxdb.enabled``)."""
    config = settings.influxdb
    if not config.enabled:
        return None
    spool = settings.spool_dir or default_spool_dir(settings.database_url)
    directory = config.buffer_dir or spool.with_name(
        spool.name.removesuffix(".spool") + ".influxdb-buffer")
    buffer = DiskBuffer(directory, int(config.buffer_max_mb * 2**20), config.buffer_full_policy)
    mirror = Mirror(config, store.profiles, buffer)
    agent.add_raw_listener(mirror.offer_raw)
    agent.live.add_listener(mirror.offer_rows)
    agent.live.mirror_status = mirror.status
    accumulator = agent.accumulator
    mirror.busy = lambda: accumulator.depth > 0
    return mirror
