"""Moved to ``eventstore.audit.notes``; ``eventstore.notes`` stays an alias of it for existing imports."""

import sys

from .audit import notes as _module
from .audit.notes import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _module
