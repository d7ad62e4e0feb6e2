"""``python -m sunarchive.settings`` prints docs/settings.md."""

import sys

from sunarchive.settings.docs import settings_markdown

sys.stdout.write(settings_markdown())
