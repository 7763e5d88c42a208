"""Moved to ``eventstore.audit.proofs``; ``eventstore.proofs`` stays an alias of it for existing imports."""

import sys

from .audit import proofs as _module

sys.modules[__name__] = _module
