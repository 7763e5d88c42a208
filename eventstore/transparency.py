"""Moved to ``eventstore.audit.log``; ``eventstore.transparency`` stays an alias of it for existing imports."""

import sys

from .audit import log as _module

sys.modules[__name__] = _module
