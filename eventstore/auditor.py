"""Moved to ``eventstore.audit.state``; ``eventstore.auditor`` stays an alias of it for existing imports."""

import sys

from .audit import state as _module

sys.modules[__name__] = _module
