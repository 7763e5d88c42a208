"""Moved to ``eventstore.audit.proofs``; ``eventstore.proofs`` stays an alias of it for existing imports."""

import sys

from .audit import proofs as _module
from .audit.proofs import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _module
