"""Raw samples → exact 1-second statistics, vectorized with numpy.

The reducer of one measurement buffers samples and *closes* whole seconds of each series on
its own: a series' seconds close once that series' clock is more than ``lateness_s`` past their
end, so a series that runs behind another (a second sender, a slow device clock) is never made
"too late" by it. A series' clock is its newest sample time; for live inputs (samples added
with ``arrived_ns``, closes given ``now_ns``) it also advances with the time elapsed since that
sample arrived, so a point that nothing follows is closed ``lateness_s`` after the end of its
second (plus the *slack* of a series whose sender delivers in bursts, see
``windowing.learn_slack``). Closing turns the buffered samples of those seconds into one
statistics row per (series, second):

* gauge / power fields: count, mean, min, max, population stddev;
* power fields also: energy in Wh, the time integral of power with a zero-order hold — each
  sample holds until the next sample of the same series, the hold is split exactly at the
  boundaries below, and a hold longer than the profile's ``max_gap_s`` contributes nothing and
  is reported as a ``gap`` event. The pieces of a hold inside its first second and inside
  the second of its end go to those seconds; the rest is cut at 5-minute boundaries (UTC
  epoch multiples of 300 s) and each piece goes to its first second — an energy-only row
  (``sample_count`` 0, statistics NULL). So a hold makes at most one energy-only row per
  5-minute bucket it crosses (a 15-minute poll makes 3, not 900), a second with samples has
  exactly its own energy, every rollup tier is exact, and the 1 s tier is exact over ranges
  that begin and end on 5-minute boundaries (see ``energy.split_holds``);
* counter fields: first, last and increase. The increase of a sample is its difference to the
  previous sample of the series and belongs to the sample's own second. A decrease is a reset
  (midnight, restart, replacement): it contributes the new value only when the field declares
  ``max_rate_per_s`` and the new value is within ``max_rate_per_s`` × elapsed time, otherwise
  nothing. With ``max_rate_per_s`` a rise faster than that rate is a spike and contributes
  nothing. Increase is therefore never negative and never spikes;
* state fields: first, last, min, max and changes (a change belongs to the second of the sample
  that differs from its predecessor);
* flag fields: any, number true, count.

A sample that arrives after its second was closed is *too late*: it is reduced on its own and
returned as a ``merge`` row that the store merges into the stored row; its gauge, flag and count
statistics are exact, its energy and counter/state transitions are not revised (they depend on
neighbours that have already been accounted). Too-late samples are counted.

A point written again (same series, same nanosecond) is a duplicate, never a second sample:
before its second closes the last value of every field wins; after, an unchanged repeat is
dropped and a changed one *replaces* the point — the seconds it touches are recomputed from the
remembered points and replace the stored rows (:mod:`sunarchive.replacement`).

The package, by concern: ``core.py`` (the ``Reducer``: input and closing), ``windowing.py``
(which seconds close when: sorting, grouping, the series' clocks), ``statistics.py`` (per-kind
statistics), ``energy.py`` (holds → Wh), ``late.py`` (late merges, duplicates, replacements),
``carry.py`` (the per-series state between closes) and ``rows.py`` (the output).
"""

from sunarchive.reducer.core import Reducer
from sunarchive.reducer.rows import ReduceResult, concat_rows, select_rows

__all__ = ["ReduceResult", "Reducer", "concat_rows", "select_rows"]
