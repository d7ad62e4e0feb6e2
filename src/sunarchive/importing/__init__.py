"""Import historical data (CSV, JSON lines, JSON documents, line protocol, Parquet, the lab
rig's layout) through the reducer into every tier."""

from sunarchive.importing.context import ImportOptions
from sunarchive.importing.report import ImportReport
from sunarchive.importing.run import collect_files, import_files

__all__ = ["ImportOptions", "ImportReport", "collect_files", "import_files"]
