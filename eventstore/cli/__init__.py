"""The ``eventstore`` command line: every command is a thin wrapper over one library call.

``base`` holds the shared plumbing and the ``main`` group; each other module adds the commands
of one concept (``log``, ``audit``, ``data``, ``project``, ``roles``, ``serve``, ``token``, ``tools``, ``bench``) when
imported here. Imports point one way: commands -> base -> the library.
"""

from . import audit, bench, data, health, log, maintenance, project, roles, serve, token, tools  # noqa: F401  (each registers its commands)
from .base import Context, echo_json, main, pass_ctx, progress

__all__ = ["Context", "echo_json", "main", "pass_ctx", "progress"]
