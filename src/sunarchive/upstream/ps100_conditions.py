"""The PS100 console's words for the sky, and the clear-sky power they compare with: one
definition for the live console (:mod:`sunarchive.console`, fed by
:mod:`sunarchive.upstream.ps100_live`) and the ``conditions_estimate`` and
``expected_power_w`` columns (:mod:`sunarchive.upstream.ps100_view` renders the same rules as
SQL; a test compares the two on stored rows).

The ratio is measured DC power ÷ the power the panel would give under a clear sky now
(pvlib's clear-sky plane-of-array irradiance for the panel's place and orientation, scaled by
its rated power and temperature coefficient). Below :data:`NIGHT_SHARE` of the rated power
expected, the sky cannot be judged from the panel: "Night or no production".
"""

from __future__ import annotations

NIGHT_SHARE = 0.02
"""Clear-sky expected power below this share of the rated power: night (or sun too low)."""
WORDS: tuple[tuple[float, str], ...] = (
    (0.80, "Excellent - Full sun"),
    (0.55, "Good - Bright, some haze"),
    (0.30, "Fair - Partly cloudy"),
    (0.10, "Poor - Overcast"),
    (0.0, "Very poor - Heavy cloud or shade"),
)
"""(least measured ÷ clear-sky expected power, words), best first."""
NIGHT = "Night or no production"
STC_IRRADIANCE_W_M2 = 1000.0
"""Plane-of-array irradiance at which a panel gives its rated power (standard test)."""
STC_TEMPERATURE_C = 25.0
"""Cell temperature of the rating; also assumed when a second has no temperature."""


def clearsky_at(first_w_m2: float, next_w_m2: float | None, second: float) -> float:
    """Clear-sky POA irradiance (W/m²) ``second`` (0–59) into a minute: linear between the
    minute's grid value and the next minute's (the first alone when that is missing)."""
    step = 0.0 if next_w_m2 is None else next_w_m2 - first_w_m2
    return first_w_m2 + step * second / 60.0


def clearsky_sql(first: str, following: str, time: str) -> str:
    """:func:`clearsky_at` as SQL over two irradiance columns and a timestamp."""
    return (f"{first} + COALESCE({following} - {first}, 0) * EXTRACT(SECOND FROM {time}) "
            "/ 60.0")


def expected_power_w(rated_w: float, gamma_pct_per_c: float, poa_w_m2: float | None,
                     temperature_c: float | None) -> float | None:
    """PVWatts: rated power × POA ÷ 1000 W/m² × (1 + γ/100 × (T − 25 °C)); None without
    irradiance. γ in %/°C (negative for silicon), T the cell temperature in °C."""
    if poa_w_m2 is None:
        return None
    temperature = STC_TEMPERATURE_C if temperature_c is None else temperature_c
    return (rated_w * poa_w_m2 / STC_IRRADIANCE_W_M2
            * (1 + gamma_pct_per_c / 100.0 * (temperature - STC_TEMPERATURE_C)))


def expected_sql(rated: str, gamma: str, poa: str, temperature: str) -> str:
    """:func:`expected_power_w` as SQL over four numeric expressions."""
    return (f"({rated} * {poa} / {STC_IRRADIANCE_W_M2!r} * (1 + {gamma} / 100.0 * "
            f"(COALESCE({temperature}, {STC_TEMPERATURE_C!r}) - {STC_TEMPERATURE_C!r})))")


def conditions_estimate(measured_w: float | None, expected_w: float | None,
                        rated_w: float) -> str | None:
    """The words for a second: None without a measurement."""
    if measured_w is None:
        return None
    if expected_w is None or expected_w < NIGHT_SHARE * rated_w:
        return NIGHT
    ratio = measured_w / expected_w
    for least, words in WORDS:
        if ratio >= least:
            return words
    return WORDS[-1][1]


def conditions_sql(measured: str, expected: str, rated: str) -> str:
    """The same rule as SQL over three numeric expressions."""
    cases = " ".join(f"WHEN {measured} >= {least!r} * {expected} THEN '{words}'"
                     for least, words in WORDS[:-1])
    return (f"CASE WHEN {measured} IS NULL THEN NULL "
            f"WHEN {expected} IS NULL OR {expected} < {NIGHT_SHARE!r} * {rated} "
            f"THEN '{NIGHT}' {cases} ELSE '{WORDS[-1][1]}' END")
