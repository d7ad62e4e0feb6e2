"""The Perocube lab monitoring system (seed 003): its metadata registries ``scientist``,
``project``, ``experiment`` and ``solar_cell_device``, and how measurements link to them
(``docs/upstream/perocube.md``)."""
