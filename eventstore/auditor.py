"""Moved to ``eventstore.audit.state``; ``eventstore.auditor`` stays an alias of it for existing imports."""

import sys

from .audit import state as _module
from .audit.state import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _module
