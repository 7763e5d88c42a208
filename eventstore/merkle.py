"""Moved to ``eventstore.audit.merkle``; ``eventstore.merkle`` stays an alias of it for existing imports."""

import sys

from .audit import merkle as _module

sys.modules[__name__] = _module
