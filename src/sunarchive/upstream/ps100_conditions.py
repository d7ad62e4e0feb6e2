"""The PS100 console's words for the sky: one definition for the live console and the
``conditions_estimate`` column (:mod:`sunarchive.upstream.ps100_view` renders it as SQL).

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
