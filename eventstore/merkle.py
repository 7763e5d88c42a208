"""Moved to ``eventstore.audit.merkle``; ``eventstore.merkle`` stays an alias of it for existing imports."""

import sys

from .audit import merkle as _module
from .audit.merkle import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _module
