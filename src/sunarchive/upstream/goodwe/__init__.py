"""The GoodWe price optimiser's storage plan (seed 004): its relational tables, its older
JSON files and the plan's "validate migration" step (``docs/upstream/goodwe.md``)."""
