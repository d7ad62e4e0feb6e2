"""The ``sunarchive`` command: a module per command group (see ``main.py``). The console
script and ``python -m sunarchive`` call ``main``."""

from sunarchive.cli.main import main

__all__ = ["main"]
