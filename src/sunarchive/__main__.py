"""``python -m sunarchive`` runs the CLI."""

from sunarchive.cli import main

raise SystemExit(main())
