"""Clear-sky plane-of-array irradiance from pvlib, optionally computed in a child process.

pvlib pulls in pandas and scipy (about 100 MB resident). A long-running collector only needs a
one-minute irradiance grid per simulated day, so by default the grid is computed in a short-lived
child process that exits afterwards, keeping the collector's memory small. Nothing in this
module imports pvlib at import time.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

DAY_S = 86_400
STEP_S = 60

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Site:
    """Where the panels are: degrees north/east, tilt from horizontal, azimuth from north."""

    latitude_deg: float
    longitude_deg: float
    tilt_deg: float
    azimuth_deg: float


def poa_minutes(site: Site, days: list[int]) -> dict[int, FloatArray]:
    """Clear-sky POA irradiance [W/m²] each minute of the given UTC days (epoch day numbers).

    Ineichen clear sky with pvlib's bundled Linke turbidity (no network), Hay-Davies
    transposition, albedo 0.2. Runs pvlib in this process.
    """
    import pandas as pd
    import pvlib

    location = pvlib.location.Location(site.latitude_deg, site.longitude_deg, tz="UTC")
    out: dict[int, FloatArray] = {}
    for day in days:
        seconds = day * DAY_S + np.arange(0, DAY_S, STEP_S, dtype=np.int64)
        times = pd.DatetimeIndex(pd.to_datetime(seconds * 1_000_000_000, utc=True))
        with warnings.catch_warnings():
            # pvlib (0.16) still uses DatetimeIndex.dayofyear, deprecated in pandas 3
            warnings.filterwarnings("ignore", message=".*dayofyear is deprecated",
                                    category=DeprecationWarning)
            solpos = location.get_solarposition(times)
            clearsky = location.get_clearsky(times, model="ineichen", solar_position=solpos)
            poa = pvlib.irradiance.get_total_irradiance(
                site.tilt_deg, site.azimuth_deg, solpos["apparent_zenith"], solpos["azimuth"],
                clearsky["dni"], clearsky["ghi"], clearsky["dhi"],
                dni_extra=pvlib.irradiance.get_extra_radiation(times), model="haydavies",
                albedo=0.2)
        out[day] = np.clip(np.nan_to_num(np.asarray(poa["poa_global"], np.float64)), 0.0, None)
    return out


def poa_minutes_isolated(site: Site, days: list[int],
                         timeout_s: float = 120.0) -> dict[int, FloatArray]:
    """Like :func:`poa_minutes`, computed in a fresh child process that exits afterwards."""
    request = json.dumps({"site": asdict(site), "days": days})
    proc = subprocess.run([sys.executable, "-m", "sunarchive.sources.clearsky", request],
                          capture_output=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError("clear-sky helper process failed: "
                           + (detail[-1] if detail else f"exit code {proc.returncode}"))
    with np.load(io.BytesIO(proc.stdout)) as data:
        return {int(name): np.asarray(data[name], np.float64) for name in data.files}


def _serve(request: str) -> None:
    """Child side: compute the days asked for and write them to stdout as an .npz archive."""
    query = json.loads(request)
    grids = poa_minutes(Site(**query["site"]), [int(d) for d in query["days"]])
    buffer = io.BytesIO()
    arrays: dict[str, Any] = {str(day): grid for day, grid in grids.items()}
    np.savez(buffer, **arrays)
    sys.stdout.buffer.write(buffer.getvalue())


def faiman_cell_temperature(poa_w_m2: FloatArray, air_c: FloatArray,
                            wind_m_s: float) -> FloatArray:
    """Cell temperature [°C] by the Faiman model with pvlib's default coefficients.

    ``T = T_air + E / (u0 + u1·wind)`` with u0 = 25.0 W/(m²·K), u1 = 6.84 W·s/(m³·K); the same
    formula and defaults as :func:`pvlib.temperature.faiman` (a test checks they agree).
    """
    return air_c + poa_w_m2 / (25.0 + 6.84 * wind_m_s)


if __name__ == "__main__":
    _serve(sys.argv[1])
