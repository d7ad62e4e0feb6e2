"""The lab rig's historical files (upstream perocube ``upload_historical_data.py``) as a
mapping preset: case-insensitive column aliases, the board and channel as constant tags, and
power = current × voltage (W = A × V) when a file has no power column.

``sunarchive import --data-dir DIR --data-type mpp|temperature|irradiance [--board N]
[--channel N]`` imports every ``*.txt`` (tab-delimited) and ``*.csv`` file directly in DIR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sunarchive.model import InputError

TIME_ALIASES = ("timestamp", "time", "datetime")
MEASUREMENTS = {"mpp": "mpp_measurement", "temperature": "temperature_measurement",
                "irradiance": "irradiance_measurement"}
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "mpp": {"time": TIME_ALIASES, "current": ("current", "i"), "voltage": ("voltage", "v"),
            "power": ("power", "p")},
    "temperature": {"time": TIME_ALIASES, "temperature": ("temperature", "temp", "t")},
    # upstream also reads RawReading/Raw/Reading; irradiance_measurement has no field for it,
    # so such a column is reported as unknown (and irradiance is never derived from it)
    "irradiance": {"time": TIME_ALIASES, "irradiance": ("irradiance", "irr")},
}
PRODUCTS = {"mpp": {"power": ("current", "voltage")}}


@dataclass(frozen=True)
class Preset:
    """Renames by case-insensitive aliases, and fields derived as products of two others."""

    aliases: dict[str, tuple[str, ...]]
    """Target name → lower-case column names that mean it (the first column found wins)."""
    products: dict[str, tuple[str, str]] = field(default_factory=dict)

    def renames(self, columns: list[str]) -> dict[str, str]:
        """Column → target name for ``columns`` (surrounding blanks and case ignored)."""
        out: dict[str, str] = {}
        for col in columns:
            key = col.strip().lower()
            for name, names in self.aliases.items():
                if key in names and name not in out.values():
                    out[col] = name
                    break
        return out


@dataclass(frozen=True)
class LabLayout:
    measurement: str
    tags: dict[str, str]
    preset: Preset


def lab_layout(data_type: str, board: int | None, channel: int | None) -> LabLayout:
    """The measurement, constant tags and preset of a lab data type; mpp needs the board and
    channel (as upstream). ``device_id`` is empty unless ``--tag device_id=…`` sets it."""
    if data_type not in MEASUREMENTS:
        raise InputError(f"--data-type {data_type!r}: choose one of {', '.join(MEASUREMENTS)}")
    if data_type == "mpp" and (board is None or channel is None):
        raise InputError("--data-type mpp needs --board N and --channel N (the tracking "
                         "channel the files were recorded on)")
    tags = {"device_id": "", "board": "" if board is None else str(board),
            "channel": "" if channel is None else str(channel)}
    return LabLayout(MEASUREMENTS[data_type], tags,
                     Preset(ALIASES[data_type], PRODUCTS.get(data_type, {})))


def lab_files(directory: Path) -> list[Path]:
    """``*.txt`` then ``*.csv`` files directly in ``directory`` (not in subdirectories)."""
    if not directory.is_dir():
        raise InputError(f"--data-dir {directory}: not a directory")
    return sorted(directory.glob("*.txt")) + sorted(directory.glob("*.csv"))
