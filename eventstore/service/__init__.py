"""The HTTP ingest service (``eventstore serve``): agents append over HTTP with scoped credentials.

Imports point one way: ``eventstore.cli`` -> ``eventstore.service`` -> the store.
"""

from __future__ import annotations

from .app import Service, create_app
from .config import ServiceConfig
from .credentials import Credential, Credentials, Principal

__all__ = ["Credential", "Credentials", "Principal", "Service", "ServiceConfig", "create_app"]
