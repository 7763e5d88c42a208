"""The CLI against a running service: ``eventstore --db http://host:8787 ...`` (docs/cli.md).

``Context.open`` returns a ``RemoteStore`` for an http(s) URL: the store's methods that the
remote-capable commands call, answered by HTTP API v1 through ``eventstore.client.Client``.
The credential comes from ``EVENTSTORE_TOKEN`` only (a secret on the command line would
show in ``ps`` and shell history); it is never printed. Commands that need the database
itself (migrations, roles, projections, erasure, tokens, serve...) are refused with one line.
Proofs from the service are checked here against the caller's checkpoint before they are
printed: a service cannot hand out a proof for another tree.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden, Unauthorized, UserError, VerificationError

if TYPE_CHECKING:
    from ..audit.notes import SignedCheckpoint, Signer
    from ..audit.proofs import ConsistencyProof, InclusionProof
    from ..client import Client
    from ..records import NewEvent, Receipt, RecordedEvent, VerifyReport
    from ..store import EventStore

TOKEN_ENV = "EVENTSTORE_TOKEN"

REMOTE_COMMANDS = frozenset({"append", "read", "verify-receipt", "checkpoint", "prove", "receipt", "cosign"})
"""Top-level commands that work against a service (each call maps to an API v1 endpoint)."""

OFFLINE_COMMANDS = frozenset({"keygen", "verify-proof", "verify-archive", "bench"})
"""Commands that never open the database, so any --db is fine."""


def is_service_url(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def shown(url: str) -> str:
    """The URL without any user:password part (never printed)."""
    from ..client import shown_url

    return shown_url(url)


def check_command(url: str, command: str | None) -> None:
    """Refuse, in one line, a command that needs the database itself when --db is a service."""
    if command is None or command in REMOTE_COMMANDS or command in OFFLINE_COMMANDS:
        return
    raise UserError(
        f"'eventstore {command}' needs a database URL (a path, sqlite:///file.db or postgresql://...), "
        f"not the service at {shown(url)} (commands that work against a service: {', '.join(sorted(REMOTE_COMMANDS))})"
    )


class RemoteStore:
    """The part of ``EventStore`` the remote-capable commands use, over HTTP API v1."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0, retries: int = 3):
        from ..client import Client

        secret = os.environ.get(TOKEN_ENV, "") if token is None else token
        if not secret.strip():
            raise UserError(
                f"--db {shown(url)} is a service: set {TOKEN_ENV} to a credential's secret "
                "('eventstore token create' prints it); it is never taken on the command line"
            )
        self.url = shown(url)
        self._client: Client = Client(url, secret.strip(), timeout=timeout, retries=retries)
        self._scratch: tuple[str, EventStore] | None = None

    def close(self) -> None:
        self._client.close()
        if self._scratch is not None:
            self._scratch[1].close()
            shutil.rmtree(self._scratch[0], ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never the token
        return f"RemoteStore({self.url!r})"

    @contextmanager
    def _answer(self) -> Iterator[None]:
        """Name the service and the credential's source in a refusal, so the fix is obvious."""
        try:
            yield
        except Unauthorized as e:
            raise Unauthorized(f"the service at {self.url} refused the credential in {TOKEN_ENV}: {e}") from None
        except Forbidden as e:
            raise Forbidden(f"the service at {self.url} refused: {e}") from None

    # -- the log --------------------------------------------------------------------
    def prepare(self, events: Sequence[NewEvent]) -> Any:
        """Validate as ``append`` would, locally (a scratch store of this version of eventstore),
        so that ``append --jsonl`` refuses bad input before anything is sent; the service checks again."""
        from ..store import EventStore

        if self._scratch is None:
            d = tempfile.mkdtemp(prefix="eventstore-cli-")
            self._scratch = (d, EventStore.open(os.path.join(d, "scratch.db"), durability="process"))
        return self._scratch[1].prepare(events)

    def append(
        self, stream_id: str, events: Sequence[NewEvent], *, expected_version: int | None = None
    ) -> list[Receipt]:
        with self._answer():
            return self._client.append(stream_id, events, expected_version=expected_version)

    def append_many(self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> list[list[Receipt]]:
        with self._answer():
            return self._client.append_many(batch)

    def stream_version(self, stream_id: str) -> int:
        with self._answer():
            return self._client.stream_version(stream_id)

    def head(self) -> tuple[int, str | None]:
        with self._answer():
            return self._client.head()

    def read_stream(self, stream_id: str, from_version: int = 1, **kwargs: Any) -> Iterator[RecordedEvent]:
        with self._answer():
            yield from self._client.read_stream(stream_id, from_version, **kwargs)

    def read_all(self, from_position: int = 1, **kwargs: Any) -> Iterator[RecordedEvent]:
        with self._answer():
            yield from self._client.read_all(from_position, **kwargs)

    def verify_receipt(self, receipt: Receipt) -> VerifyReport:
        with self._answer():
            return self._client.verify_receipt(receipt)

    # -- checkpoints and proofs -----------------------------------------------------
    def checkpoint(self, signer: Signer) -> SignedCheckpoint:
        """The service signs with its own key (``serve --signing-key``); the note is accepted only
        if it verifies with ``signer``'s public key, so ``--key`` must be that same key."""
        from ..audit import notes

        with self._answer():
            text = self._client.checkpoint()
        try:
            return notes.open_checkpoint(text, signer.verifier)
        except VerificationError:
            raise UserError(
                f"the service at {self.url} signed the checkpoint with another key than --key "
                "(it signs with its own 'serve --signing-key')"
            ) from None

    def prove_inclusion(
        self, position: int, tree_size: int | None = None, *, origin: str = "", root: bytes | None = None
    ) -> InclusionProof:
        """The service's proof, checked here against ``root`` (the caller's checkpoint)."""
        from ..audit import merkle, proofs

        with self._answer():
            p: InclusionProof = self._client.prove_inclusion(position, tree_size)
        if tree_size is not None and p.tree_size != tree_size:
            raise VerificationError(f"the service proved inclusion in a tree of size {p.tree_size}, not {tree_size}")
        want = root if root is not None else bytes.fromhex(p.root)
        if p.leaf_index != position - 1 or p.entry.position != position:
            raise VerificationError(f"the service's proof is for another entry than position {position}")
        try:
            merkle.verify_inclusion(
                p.leaf_index,
                p.tree_size,
                merkle.leaf_hash(p.entry.recompute()),
                [bytes.fromhex(h) for h in p.hashes],
                want,
            )
        except (VerificationError, ValueError) as e:
            raise VerificationError(
                f"the service's inclusion proof for position {position} does not check against the checkpoint: {e}"
            ) from None
        return proofs.InclusionProof(
            origin=origin or p.origin,
            tree_size=p.tree_size,
            root=want.hex(),
            leaf_index=p.leaf_index,
            entry=p.entry,
            hashes=p.hashes,
        )

    def prove_consistency(
        self,
        old_size: int,
        new_size: int | None = None,
        *,
        origin: str = "",
        old_root: bytes | None = None,
        new_root: bytes | None = None,
    ) -> ConsistencyProof:
        """The service's proof, checked here against the caller's roots."""
        from ..audit import merkle, proofs

        with self._answer():
            p: ConsistencyProof = self._client.prove_consistency(old_size, new_size)
        if p.old_size != old_size or (new_size is not None and p.new_size != new_size):
            raise VerificationError(f"the service proved sizes {p.old_size}->{p.new_size}, not {old_size}->{new_size}")
        o = old_root if old_root is not None else bytes.fromhex(p.old_root)
        n = new_root if new_root is not None else bytes.fromhex(p.new_root)
        try:
            merkle.verify_consistency(p.old_size, p.new_size, o, n, [bytes.fromhex(h) for h in p.hashes])
        except (VerificationError, ValueError) as e:
            raise VerificationError(
                f"the service's consistency proof {old_size}->{p.new_size} does not check against the checkpoints: {e}"
            ) from None
        return proofs.ConsistencyProof(
            origin=origin or p.origin,
            old_size=p.old_size,
            old_root=o.hex(),
            new_size=p.new_size,
            new_root=n.hex(),
            hashes=p.hashes,
        )

    def tlog_proof(self, position: int, checkpoint: SignedCheckpoint) -> str:
        """An offline receipt under the caller's checkpoint (built here from a checked inclusion proof)."""
        from ..audit import proofs

        cp = checkpoint.checkpoint
        p = self.prove_inclusion(position, cp.size, origin=cp.origin, root=cp.root)
        return proofs.format_tlog_proof(p.entry, [bytes.fromhex(h) for h in p.hashes], checkpoint.format())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise UserError(
            f"this command needs a database URL (a path, sqlite:///file.db or postgresql://...); "
            f"the service at {self.url} does not offer '{name}' over HTTP"
        )
