"""The transparency log over the event log: auditors, witnesses, checkpoints and proofs (docs/audit.md)."""

from .parties import Auditor, Witness

__all__ = ["Auditor", "Witness"]
