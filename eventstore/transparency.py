"""Moved to ``eventstore.audit.log``; ``eventstore.transparency`` stays an alias of it for existing imports."""

import sys

from .audit import log as _module
from .audit.log import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _module
