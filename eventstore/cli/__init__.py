"""The ``eventstore`` command line: every command is a thin wrapper over one library call.

``base`` holds the shared plumbing and the ``main`` group; each other module adds the commands
of one concept (``agents``, ``log``, ``audit``, ``data``, ``project``, ``roles``, ``serve``, ``token``, ``tools``, ``bench``) when
imported here. Imports point one way: commands -> base -> the library.
"""

from . import (  # noqa: F401  (each registers its commands)
    agents,
    archive,
    audit,
    bench,
    data,
    health,
    log,
    maintenance,
    project,
    retention,
    roles,
    serve,
    token,
    tools,
)
from .base import Context, echo_json, main, pass_ctx, progress

__all__ = ["Context", "echo_json", "main", "pass_ctx", "progress"]
