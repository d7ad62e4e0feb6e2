"""The running MQTT source: subscribe with aiomqtt, decode, group, reconnect with backoff.

The asyncio loop runs inside the source's thread. Rules:

* Retained messages (replayed by the broker when we (re)subscribe) are old values, not new
  readings: they are skipped as readings, but still update state (names, online/offline,
  reachability).
* A device's ``offline`` status (its last will, e.g. OpenDTU's ``dtu/status``) or a lost
  broker connection posts one offline event; nothing is emitted meanwhile, so the series
  shows a gap, never zeros. The next live reading or ``online`` status makes it connected.
* Wrong credentials stop the source (a permanent error); anything else is retried with
  capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable

import aiomqtt

from sunarchive.model import ConfigError, InputError
from sunarchive.sources.base import SampleSink
from sunarchive.sources.mqtt.ahoy import AhoyLayout
from sunarchive.sources.mqtt.config import MqttSettings
from sunarchive.sources.mqtt.generic import GenericLayout, compile_mapping
from sunarchive.sources.mqtt.opendtu import OpenDTULayout
from sunarchive.sources.mqtt.readings import Grouper, Layout, Reading, Sample, to_batches
from sunarchive.sources.push import PushSource
from sunarchive.sources.running import Backoff, SourceContext, SourceError, SourceStatus

log = logging.getLogger(__name__)

TICK_S = 0.1
"""How often open samples are checked for their quiet time and ``stop`` is looked at."""
AUTH_CODES = {4, 5, 134, 135}
"""CONNACK codes for bad credentials / not authorised (MQTT 3.1.1 and 5)."""


def make_layout(settings: MqttSettings, context: SourceContext) -> Layout:
    """The topic layout a config asks for (generic mappings checked against the profiles)."""
    if settings.layout == "opendtu":
        return OpenDTULayout(settings.base, settings.dtu, settings.dtu_serial)
    if settings.layout == "ahoydtu":
        return AhoyLayout(settings.base, settings.dtu, settings.dtu_serial,
                          settings.inverter_serials)
    compiled = []
    for mapping in settings.mappings:
        profile = context.profiles.get(mapping.measurement)
        if profile is None:
            raise ConfigError(f"source {settings.name}: mapping {mapping.topic!r} names "
                              f"measurement {mapping.measurement!r}, which has no profile")
        compiled.append(compile_mapping(mapping, profile.tags))
    return GenericLayout(compiled, settings.status_topic, settings.online_payload,
                         settings.offline_payload)


class MqttSource(PushSource):
    """A push source reading one MQTT broker (see the module docstring); its sessions run
    in the shared push wrapper (:class:`~sunarchive.sources.push.PushSource`)."""

    def __init__(self, settings: MqttSettings, context: SourceContext,
                 layout: Layout | None = None) -> None:
        self.name = settings.name
        self.settings = settings
        self.layout = layout or make_layout(settings, context)
        self.status = SourceStatus(settings.name, "mqtt", context.events)
        self.retained_skipped = 0
        """Retained messages that carried readings and were not counted as new."""
        self._fields = {p.name: {f.name for f in p.fields} for p in context.profiles.values()}
        self._dropped: set[tuple[str, str]] = set()
        self._grouper = Grouper(settings.group_quiet_s)
        self.backoff_min_s = settings.backoff_min_s
        self.backoff_max_s = settings.backoff_max_s

    def drain(self, sink: SampleSink) -> None:
        self._emit(sink, self._grouper.drain())

    async def session(self, sink: SampleSink, stop: threading.Event, backoff: Backoff) -> None:
        """One connection to the broker; its errors as :class:`SourceError` (refused
        credentials are permanent)."""
        try:
            await self._session(sink, stop, backoff)
        except aiomqtt.MqttError as exc:
            reason = f"broker {self.settings.host}:{self.settings.port}: {exc}"
            raise SourceError(reason, transient=not _is_auth_error(exc)) from exc

    async def _session(self, sink: SampleSink, stop: threading.Event, backoff: Backoff) -> None:
        s = self.settings
        async with aiomqtt.Client(
                s.host, s.port, username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                identifier=s.client_id, keepalive=s.keepalive_s, timeout=s.timeout_s,
                logger=log) as client:
            for topic in self.layout.filters():
                await client.subscribe(topic, qos=s.qos)
            backoff.reset()
            log.info("source %s: subscribed to %s on %s:%d", self.name,
                     ", ".join(self.layout.filters()), s.host, s.port)
            if isinstance(self.layout, GenericLayout) and not self.layout.status_topic:
                self.status.connected(f"broker {s.host}:{s.port}")
            reader = asyncio.create_task(self._read(client, sink))
            try:
                while not stop.is_set() and not reader.done():
                    await asyncio.wait({reader}, timeout=TICK_S)
                    self._emit(sink, self._grouper.due(time.monotonic()))
                if reader.done():
                    reader.result()   # raises the MqttError that ended the session
            finally:
                reader.cancel()

    async def _read(self, client: aiomqtt.Client, sink: SampleSink) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else \
                str(message.payload).encode()
            self.handle(message.topic.value, payload, bool(message.retain), sink)

    def handle(self, topic: str, payload: bytes, retained: bool, sink: SampleSink) -> None:
        """Decode one message and apply it (public for tests and replays)."""
        try:
            decoded = self.layout.decode(topic, payload)
        except InputError as exc:
            self.status.error(str(exc))
            return
        if decoded.online is False:
            self._emit(sink, self._grouper.drain())
            self.status.offline(f"device says offline on {topic}")
        elif decoded.online:
            self.status.connected(f"{topic} online")
        readings = self._known(decoded.readings)
        if not readings:
            return
        if retained:
            self.retained_skipped += 1
            return
        self.status.connected()
        now_ns, now_s = time.time_ns(), time.monotonic()
        for reading in readings:
            self._emit(sink, self._grouper.add(reading, now_ns, now_s))

    def _known(self, readings: list[Reading]) -> list[Reading]:
        """Readings whose measurement and field the store has a profile for."""
        if not self._fields:
            return readings
        known = []
        for r in readings:
            if r.field in self._fields.get(r.measurement, ()):
                known.append(r)
            elif (r.measurement, r.field) not in self._dropped:
                self._dropped.add((r.measurement, r.field))
                log.warning("source %s: no profile field %s.%s; its values are dropped",
                            self.name, r.measurement, r.field)
        return known

    @staticmethod
    def _emit(sink: SampleSink, samples: Iterable[Sample]) -> None:
        for batch in to_batches(samples):
            sink.put(batch)   # the agent's sink counts it into the status


def _is_auth_error(exc: aiomqtt.MqttError) -> bool:
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return isinstance(exc, aiomqtt.MqttCodeError) and value in AUTH_CODES
