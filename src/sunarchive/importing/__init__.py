"""Import historical data (CSV, JSON lines) through the reducer into every tier."""

from sunarchive.importing.run import ImportOptions, ImportReport, collect_files, import_files

__all__ = ["ImportOptions", "ImportReport", "collect_files", "import_files"]
