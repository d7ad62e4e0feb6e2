"""The scenarios of raw samples the property tests share (hypothesis strategies): series at
10 Hz, polled every 35 s or event-driven, around instants where tiers and days turn (UTC and
zoned midnights, DST changes), with gaps, missing fields, counter resets and spikes; fed in a
jittered arrival order within the lateness allowance."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import strategies as st

from sunarchive.profiles.loader import parse_profile
from sunarchive.profiles.spec import Profile
from tests.support.reference import NS, Harness, RawSample

LATENESS_S = 2.0
ZONES = ("UTC", "Europe/Berlin", "Australia/Brisbane")


def make_profile(max_gap_s: float) -> Profile:
    return parse_profile({
        "name": "prop_test",
        "tags": ["site"],
        "max_gap_s": max_gap_s,
        "fields": {
            "volts": {"unit": "V", "kind": "gauge"},
            "watts": {"unit": "W", "kind": "power"},
            "today": {"unit": "Wh", "kind": "counter"},
            "lifetime": {"unit": "Wh", "kind": "counter", "max_rate_per_s": 5.0},
            "mode": {"unit": "", "kind": "state"},
            "alarm": {"unit": "", "kind": "flag"},
        },
    }, "<test>")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """UTC epoch seconds of a UTC wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


# Instants the data straddles: UTC midnight, Berlin midnights (winter, DST days), the Berlin
# spring-forward instant, Brisbane midnight (UTC+10), an hour and a plain 5-minute boundary.
ANCHORS = (
    utc(2026, 3, 29, 0, 0),
    utc(2026, 3, 28, 23, 0),
    utc(2026, 10, 24, 22, 0),
    utc(2026, 10, 25, 23, 0),
    utc(2026, 3, 29, 1, 0),
    utc(2026, 6, 1, 14, 0),
    utc(2026, 1, 15, 10, 5),
)


@dataclass(frozen=True)
class Scenario:
    seed: int
    anchor: int
    modes: tuple[str, ...]  # per series: "10hz", "poll35" or "events" (irregular)
    missing: float          # probability that a field is absent from a sample
    max_gap_s: float
    shuffled: bool          # arrival order jittered within the lateness allowance
    chunks: int             # close() calls before the final flush()


scenarios = st.builds(
    Scenario,
    seed=st.integers(0, 2**32 - 1),
    anchor=st.sampled_from(ANCHORS),
    modes=st.lists(st.sampled_from(["10hz", "poll35", "events"]), min_size=1,
                   max_size=3).map(tuple),
    missing=st.sampled_from([0.0, 0.1, 0.4]),
    max_gap_s=st.sampled_from([5.0, 40.0, 75.0]),
    shuffled=st.booleans(),
    chunks=st.integers(1, 30),
)


def sample_times(rng: random.Random, mode: str, anchor: int) -> list[int]:
    """Strictly increasing sample times (ns) around ``anchor``, with jitter and gaps."""
    if mode == "events":  # irregular, event-driven: 0.05–3 s apart
        t = anchor * NS - rng.randint(0, 100 * NS)
        out = []
        for _ in range(rng.randint(10, 120)):
            out.append(t)
            t += rng.randint(NS // 20, 3 * NS)
        return out
    if mode == "10hz":
        period, jitter, n = NS // 10, 40_000_000, rng.randint(50, 700)
    else:
        period, jitter, n = 35 * NS, 3 * NS, rng.randint(3, 30)
    start = anchor * NS - rng.randint(0, n * period)
    out = []
    skip_until = -1
    for k in range(n):
        t = start + k * period
        if rng.random() < 0.7:  # often exactly on the grid (and on second boundaries)
            t += rng.randint(-jitter, jitter)
        if t < skip_until:
            continue
        if rng.random() < (0.004 if mode == "10hz" else 0.05):  # a gap
            skip_until = t + rng.randint(1, 25) * NS if mode == "10hz" else t + 40 * NS
        out.append(t)
    return sorted(set(out))


def scenario_samples(sc: Scenario) -> list[RawSample]:
    rng = random.Random(sc.seed)
    out: list[RawSample] = []
    for sid, mode in enumerate(sc.modes):
        today = rng.uniform(0, 5000)
        lifetime = rng.uniform(0, 1e6)
        mode_value = rng.randint(0, 3)
        constant_volts = rng.random() < 0.2
        prev_t = None
        for t in sample_times(rng, mode, sc.anchor):
            dt = 1.0 if prev_t is None else (t - prev_t) / NS
            prev_t = t
            r = rng.random()
            if r < 0.03:
                today = rng.choice([0.0, rng.uniform(0, 20)])  # reset (midnight, restart)
            elif r < 0.04:
                today += 1e5  # spike
            else:
                today += rng.uniform(0, 3) * dt
            r = rng.random()
            if r < 0.03:
                lifetime = rng.choice([0.0, rng.uniform(0, 6), rng.uniform(100, 2000)])
            else:
                lifetime += rng.uniform(0, 6) * max(dt, 1.0) * rng.choice([0.5, 1.0, 1.3])
            if rng.random() < 0.1:
                mode_value = rng.randint(0, 3)
            values: dict[str, float | None] = {
                "volts": 230.0 if constant_volts else round(rng.uniform(200, 250), 3),
                "watts": rng.choice([rng.uniform(-100, 2000), 500.0]),
                "today": today,
                "lifetime": lifetime,
                "mode": float(mode_value),
                "alarm": float(rng.random() < 0.2),
            }
            for name in values:
                if rng.random() < sc.missing:
                    values[name] = None
            out.append(RawSample(sid, t, values))
    return out


def feed(harness: Harness, samples: list[RawSample], sc: Scenario) -> None:
    """Feed in arrival order (each sample delayed < lateness), closing between chunks."""
    rng = random.Random(sc.seed ^ 0x5EED)
    delay = [0.0 if not sc.shuffled or rng.random() < 0.6 else rng.uniform(0, 0.99 * LATENESS_S)
             for _ in samples]
    arrival = sorted(range(len(samples)), key=lambda i: samples[i].time_ns / NS + delay[i])
    ordered = [samples[i] for i in arrival]
    cuts = sorted(rng.randint(0, len(ordered)) for _ in range(sc.chunks - 1))
    bounds = [0, *cuts, len(ordered)]
    for lo, hi in itertools.pairwise(bounds):
        part = ordered[lo:hi]
        split = rng.randint(0, len(part))  # more than one add() per close
        harness.add(part[:split])
        harness.add(part[split:])
        harness.close()
    harness.close(final=True)
