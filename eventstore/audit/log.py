"""The transparency log over a store: roots, signed checkpoints and proofs, derived from entries.

Invariants (docs/audit.md, "What the store trusts"):

* Nothing is signed that was not derived from the log's entries. A checkpoint's root
  is computed by extending an *anchor* (the newest checkpoint this key signed, whose
  signature is checked) with the entries appended since, each rehashed and linked
  (the same checks as ``verify``). The anchor's frontier (O(log n) subtree roots, read
  from the stored tree) is accepted only if it hashes to the signed root, and the
  anchor's last entry only if it is included under that root, so a planted or damaged
  ``merkle_nodes`` row, or a log rewritten below the anchor, is detected, never signed.
  With no anchor (an origin's first checkpoint) the whole log is verified.
* No proof is handed out unverified. Proofs are built from stored nodes (a cache, for
  O(log n) cost) and then checked against a root derived as above (or the root of the
  checkpoint they are for). If the check fails, the store tells apart damaged derived
  data (``DerivedDataDamaged``: run ``eventstore audit repair``) from a log that no longer
  matches what was signed (``VerificationError``).
* Reading needs no write: proofs and roots compute what the stored tree lacks from the
  log in memory; only ``checkpoint`` and ``repair`` (the store owner) write the tree.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Literal

import msgspec

from ..backends import sql
from ..clock import utc_now as _now
from ..errors import DerivedDataDamaged, UserError, VerificationError
from ..records import Problem, ProblemKind, Row, VerifyReport
from . import merkle, notes, proofs

if TYPE_CHECKING:
    from ..store import EventStore
    from .state import AuditorState

Progress = Callable[[int, int], None]


class _Mismatch(Exception):
    """The anchor's frontier or last entry does not match its root (internal)."""


class TreeProblem(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["node", "extra", "checkpoint", "log"]
    """``node`` (a stored node differs from the log), ``extra`` (a node beyond the synced
    tree), ``checkpoint`` (a stored checkpoint's root differs from the log's), ``log``."""
    message: str
    level: int | None = None
    idx: int | None = None
    position: int | None = None


class TreeReport(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of ``audit check``: the stored tree and checkpoints against the entries."""

    ok: bool
    tree_size: int
    synced_size: int
    nodes_checked: int
    checkpoints_checked: int
    problems: list[TreeProblem]


class TransparencyLog:
    """Checkpoints and proofs over one store's log (``EventStore`` delegates here)."""

    def __init__(self, store: EventStore):
        self.store = store
        self.backend = store.backend
        self.tree = merkle.StoredTree(store.backend)

    # -- roots derived from the entries ----------------------------------------------
    def _head(self) -> int:
        return self.backend.head()[0]

    def _scan(
        self,
        compact: merkle.CompactRange,
        end: int | None = None,
        sizes: Collection[int] = (),
        progress: Progress | None = None,
    ) -> tuple[VerifyReport, dict[int, bytes]]:
        """Verify the entries after ``compact.size`` (up to ``end``) as ``verify`` does, feeding each
        entry's leaf to ``compact``; return the report and the roots at ``sizes`` passed on the way.

        The one place where roots are computed from the entries themselves (checkpoints, the
        auditor's check, ``audit check``), trusting no stored node.
        """
        found: dict[int, bytes] = {}
        if compact.size in sizes:
            found[compact.size] = compact.root()

        def add(rows: list[Row]) -> None:
            append, leaf_hash = compact.append, merkle.leaf_hash
            for r in rows:
                append(leaf_hash(r.hash))
                if compact.size in sizes:
                    found[compact.size] = compact.root()

        report = self.store.verify(compact.size + 1, end, progress=progress, on_rows=add)
        return report, found

    def _from_anchor(self, anchor: tuple[int, bytes] | None) -> merkle.CompactRange:
        """The tree of the anchor's m entries as a compact range (empty without an anchor), from
        the stored frontier; raises _Mismatch unless the frontier hashes to the anchor's root
        and the entry at m (rehashed) is included under it."""
        if anchor is None or anchor[0] == 0:
            return merkle.CompactRange()
        m, root = anchor
        perfect = self.tree.subtree_fn()
        compact = merkle.CompactRange.from_frontier(m, [perfect(a, b) for a, b in merkle.decompose(m)])
        if compact.root() != root:
            raise _Mismatch
        row = self.backend.row_at(m)
        if row is None:
            raise _Mismatch
        try:
            leaf = merkle.leaf_hash(proofs.EntryHeader.from_row(row).recompute())
            merkle.verify_inclusion(m - 1, m, leaf, merkle.inclusion_path(m - 1, m, perfect), root)
        except VerificationError:
            raise _Mismatch from None
        return compact

    def verify_since(self, size: int, root: bytes, progress: Progress | None = None) -> VerifyReport:
        """Verify the log from a checkpoint (``size`` entries with ``root``) to its head, in
        O(new entries + log n): the checkpoint's frontier and last entry are checked against
        ``root`` as for signing (module docstring), then each entry after it as ``verify`` does.
        The entries below ``size`` are not rehashed: they were when that checkpoint was signed.
        Raises DerivedDataDamaged or VerificationError if the log no longer matches ``root``."""
        try:
            compact = self._from_anchor((size, root))
        except _Mismatch:
            raise self._explain(size, root, f"the checkpoint of size {size}") from None
        report, _ = self._scan(compact, progress=progress)
        return report

    def _extend(self, size: int, anchor: tuple[int, bytes] | None) -> merkle.CompactRange:
        """The tree of ``size`` entries as a compact range, from ``anchor`` (m, root of m) and the
        entries after it, each verified. Raises _Mismatch if the stored frontier or the entry
        at m does not match the anchor's root; VerificationError if an entry fails verification."""
        m = 0 if anchor is None else anchor[0]
        compact = self._from_anchor(anchor)
        if size > m:
            report, _ = self._scan(compact, size)
            if not report.ok:
                p = report.problem
                assert p is not None
                raise VerificationError(f"the log does not verify at position {p.position} ({p.kind}): {p.message}")
        if compact.size != size:
            raise VerificationError(f"the log has no entries beyond position {compact.size}")
        return compact

    def _anchor(self, size: int) -> tuple[int, bytes] | None:
        """The newest stored checkpoint at or below ``size`` (any origin), as (size, root)."""
        rows = self.backend.query(
            sql.CHECKPOINT_AT_OR_BELOW,
            (size,),
        )
        return (rows[0][0], bytes(rows[0][1])) if rows else None

    def _explain(self, size: int, expected: bytes, what: str) -> Exception:
        """A proof or anchor did not check out: damaged stored nodes, or a log that changed?"""
        try:
            actual = self._extend(size, None).root()
        except VerificationError as e:
            return VerificationError(f"the log no longer matches {what}: {e}")
        if actual == expected:
            return DerivedDataDamaged(
                "the stored Merkle tree (merkle_nodes) does not match the log's entries: derived data was "
                "damaged or tampered with; nothing was signed or handed out. Run 'eventstore audit check' "
                "to see where and 'eventstore audit repair' to rebuild it"
            )
        return VerificationError(
            f"the log's first {size} entries do not have the checkpoint's root ({what}): "
            "the log was truncated or rewritten, or the checkpoint is of another log"
        )

    def root(self, size: int | None = None) -> bytes:
        """RFC 9162 root of the first ``size`` entries (default: all), derived from the entries
        after the newest stored checkpoint; O(new entries + log n)."""
        head = self._head()
        size = head if size is None else size
        if not 0 <= size <= head:
            raise UserError(f"tree size {size} is larger than the log ({head} entries)")
        above = self.backend.query(sql.CHECKPOINT_AT_OR_ABOVE, (size,))
        if above and size > 0:
            # Below a stored checkpoint: the stored tree's root for ``size`` is accepted only with
            # a consistency proof up to the checkpoint's root (O(log n) either way).
            m, m_root = above[0][0], bytes(above[0][1])
            perfect = self.tree.subtree_fn()
            candidate = merkle.range_root(0, size, perfect)
            try:
                merkle.verify_consistency(size, m, candidate, m_root, merkle.consistency_path(size, m, perfect))
                return candidate
            except VerificationError:
                pass  # derive it from the entries below, which tells damage from rewriting
        anchor = self._anchor(size)
        try:
            return self._extend(size, anchor).root()
        except _Mismatch:
            assert anchor is not None
            raise self._explain(anchor[0], anchor[1], f"the checkpoint stored for size {anchor[0]}") from None

    # -- checkpoints ----------------------------------------------------------------
    def checkpoints(self, origin: str | None = None) -> list[tuple[str, int, bytes, str]]:
        """Stored checkpoints as (origin, tree_size, root, note), oldest first."""
        if origin is None:
            rows = self.backend.query(sql.CHECKPOINTS)
        else:
            rows = self.backend.query(sql.CHECKPOINTS_OF_ORIGIN, (origin,))
        return [(o, n, bytes(r), t) for o, n, r, t in rows]

    def checkpoint(self, signer: notes.Signer) -> notes.SignedCheckpoint:
        """Sign a C2SP checkpoint of the whole log and store it.

        The root is derived from the entries (module docstring). Refuses when the log no
        longer matches the newest checkpoint signed under the same origin (truncated or
        rewritten), when that stored checkpoint does not carry this key's signature, when
        an entry since fails verification, and when the stored tree is damaged.
        """
        # The newest checkpoint first, then the head: the head only grows, so one signed meanwhile
        # by another process (at a size beyond a head read earlier) is not taken for truncation.
        newest = self.backend.query(sql.CHECKPOINT_NEWEST_OF_ORIGIN, (signer.name,))
        size = self._head()
        anchor: tuple[int, bytes] | None = None
        for row_id, old_size, old_root, note in newest:
            try:
                signed = notes.open_checkpoint(note, signer.verifier)
            except (VerificationError, UserError) as e:
                raise VerificationError(
                    f"refusing to sign: the stored checkpoint {row_id} of size {old_size} does not "
                    f"carry this log's valid signature ({e}): the checkpoints table was tampered "
                    "with"
                ) from None
            if (signed.checkpoint.size, signed.checkpoint.root) != (old_size, bytes(old_root)):
                raise VerificationError(
                    f"refusing to sign: the stored checkpoint {row_id} does not match its own note: "
                    "the checkpoints table was tampered with"
                )
            if old_size > size:
                raise VerificationError(
                    f"refusing to sign: the log has {size} entries, fewer than the checkpoint of "
                    f"size {old_size} signed earlier for {signer.name!r} (it was truncated)"
                )
            anchor = (old_size, bytes(old_root))
        what = f"the checkpoint of size {anchor[0] if anchor else 0} signed earlier for {signer.name!r}"
        try:
            root = self._extend(size, anchor).root()
        except _Mismatch:
            assert anchor is not None
            err = self._explain(anchor[0], anchor[1], what)
            if isinstance(err, DerivedDataDamaged):
                raise err from None
            raise VerificationError(
                f"refusing to sign: the log no longer matches {what} (it was truncated or rewritten)"
            ) from None
        except VerificationError as e:
            raise VerificationError(f"refusing to sign: {e}") from None
        note_ = notes.sign_note(notes.Checkpoint(signer.name, size, root).text(), signer)
        with self.backend.transaction() as tx:
            tx.execute(
                sql.CHECKPOINT_INSERT,
                (signer.name, size, root, note_.format(), _now()),
            )
        self.tree.sync(size)  # keep proofs O(log n); a cache, checked whenever used
        return notes.SignedCheckpoint(notes.Checkpoint.parse(note_.text), note_)

    # -- proofs ---------------------------------------------------------------------
    def _trusted(self, size: int, root: bytes | None) -> bytes:
        """The root a proof for ``size`` must lead to: ``root`` if given (a checkpoint's), else derived."""
        return self.root(size) if root is None else root

    def prove_inclusion(
        self, position: int, tree_size: int | None = None, *, origin: str = "", root: bytes | None = None
    ) -> proofs.InclusionProof:
        """An inclusion proof of the entry at ``position`` in the tree of ``tree_size`` entries,
        checked before it is returned against ``root`` (a checkpoint's) or the derived root."""
        head = self._head()
        size = head if tree_size is None else tree_size
        if not 1 <= position <= size:
            raise UserError(f"position {position} is not in a tree of size {size}")
        if size > head:
            raise UserError(f"tree size {size} is larger than the log ({head} entries)")
        row = self.backend.row_at(position)
        if row is None:
            raise VerificationError(f"the log has no entry at position {position}: it was cut")
        entry = proofs.EntryHeader.from_row(row)
        try:
            leaf = merkle.leaf_hash(entry.recompute())
        except VerificationError:
            raise VerificationError(
                f"the entry at position {position} does not hash to its stored hash: it was "
                "changed; no proof is given for it"
            ) from None
        perfect = self.tree.subtree_fn()
        path = merkle.inclusion_path(position - 1, size, perfect)
        what = f"the checkpoint of size {size}" if root is not None else f"the tree of size {size}"
        expected = self._trusted(size, root)
        try:
            merkle.verify_inclusion(position - 1, size, leaf, path, expected)
        except VerificationError:
            raise self._explain(size, expected, what) from None
        return proofs.InclusionProof(
            origin=origin,
            tree_size=size,
            root=expected.hex(),
            leaf_index=position - 1,
            entry=entry,
            hashes=[h.hex() for h in path],
        )

    def prove_consistency(
        self,
        old_size: int,
        new_size: int | None = None,
        *,
        origin: str = "",
        old_root: bytes | None = None,
        new_root: bytes | None = None,
    ) -> proofs.ConsistencyProof:
        """A proof that the tree of ``old_size`` entries is a prefix of the one of ``new_size``,
        checked against the given (checkpoints') roots or roots derived from the entries."""
        head = self._head()
        new = head if new_size is None else new_size
        if not 0 < old_size <= new:
            raise UserError(f"a consistency proof needs 0 < old size <= new size, got {old_size} and {new}")
        if new > head:
            raise UserError(f"tree size {new} is larger than the log ({head} entries)")
        path = merkle.consistency_path(old_size, new, self.tree.subtree_fn())
        old_expected = self._trusted(old_size, old_root)
        new_expected = self._trusted(new, new_root)
        try:
            merkle.verify_consistency(old_size, new, old_expected, new_expected, path)
        except VerificationError:
            for size, expected in ((old_size, old_expected), (new, new_expected)):
                err = self._explain(size, expected, f"the checkpoint of size {size}")
                if not isinstance(err, DerivedDataDamaged):
                    raise err from None
            raise err from None
        return proofs.ConsistencyProof(
            origin=origin,
            old_size=old_size,
            old_root=old_expected.hex(),
            new_size=new,
            new_root=new_expected.hex(),
            hashes=[h.hex() for h in path],
        )

    def tlog_proof(self, position: int, checkpoint: notes.SignedCheckpoint) -> str:
        """An offline receipt (c2sp.org/tlog-proof@v1) for one entry under a signed checkpoint,
        checked against the checkpoint's root before it is returned."""
        cp = checkpoint.checkpoint
        p = self.prove_inclusion(position, cp.size, origin=cp.origin, root=cp.root)
        return proofs.format_tlog_proof(p.entry, [bytes.fromhex(h) for h in p.hashes], checkpoint.format())

    # -- auditing the derived data ---------------------------------------------------
    def check(self, progress: Progress | None = None, max_problems: int = 100) -> TreeReport:
        """Recompute every stored node and stored checkpoint root from the entries and compare."""
        stored = self.tree.stored_nodes()
        synced = self.tree.synced_size()
        computed: dict[tuple[int, int], bytes] = {}
        checkpoints = self.backend.query(sql.CHECKPOINT_ROOTS)
        roots_at = {n: bytes(r) for _, _, n, r in checkpoints}

        def keep(level: int, idx: int, h: bytes) -> None:
            if level >= merkle.STORED_LEVEL and (idx + 1) << level <= synced:
                computed[(level, idx)] = h

        compact = merkle.CompactRange(on_node=keep)
        report, found = self._scan(compact, sizes=roots_at.keys(), progress=progress)
        problems: list[TreeProblem] = []

        def problem(p: TreeProblem) -> None:
            if len(problems) < max_problems:
                problems.append(p)

        if not report.ok:
            assert report.problem is not None
            problem(
                TreeProblem(
                    kind="log",
                    position=report.problem.position,
                    message=f"the log does not verify: {report.problem.message}",
                )
            )
        for key in sorted(set(stored) | set(computed)):
            s, c = stored.get(key), computed.get(key)
            if s == c:
                continue
            level, idx = key
            span = f"leaves {idx << level}..{((idx + 1) << level) - 1}"
            if c is None:
                problem(
                    TreeProblem(
                        kind="extra",
                        level=level,
                        idx=idx,
                        message=f"stored node ({level}, {idx}) covers {span}, beyond the synced tree "
                        f"of {synced} leaves: planted or left over",
                    )
                )
            elif s is None:
                problem(
                    TreeProblem(
                        kind="node", level=level, idx=idx, message=f"node ({level}, {idx}) over {span} is missing"
                    )
                )
            else:
                problem(
                    TreeProblem(
                        kind="node",
                        level=level,
                        idx=idx,
                        message=f"stored node ({level}, {idx}) over {span} differs from the entries",
                    )
                )
        for row_id, origin, size, root in checkpoints:
            if report.ok and size <= compact.size and found.get(size) != bytes(root):
                problem(
                    TreeProblem(
                        kind="checkpoint",
                        position=size,
                        message=f"stored checkpoint {row_id} ({origin}, size {size}) has a root the "
                        "log's entries do not give",
                    )
                )
            elif size > compact.size:
                problem(
                    TreeProblem(
                        kind="checkpoint",
                        position=size,
                        message=f"stored checkpoint {row_id} ({origin}) is of size {size}, but the log "
                        f"has {compact.size} entries: it was truncated",
                    )
                )
        return TreeReport(
            ok=not problems,
            tree_size=compact.size,
            synced_size=synced,
            nodes_checked=len(set(stored) | set(computed)),
            checkpoints_checked=len(checkpoints),
            problems=problems,
        )

    def repair(self, progress: Progress | None = None) -> int:
        """Drop every stored node and rebuild the stored tree from the entries; return its size."""
        self.tree.reset()
        return self.tree.sync(progress=progress)

    # -- an auditor's check of a checkpoint ---------------------------------------------
    def verify_checkpoint(
        self,
        checkpoint: notes.SignedCheckpoint,
        *,
        state: AuditorState | None = None,
        progress: Progress | None = None,
    ) -> VerifyReport:
        """Everything ``verify`` checks, plus: the log at the checkpoint's size has exactly its
        root (recomputed from the entries, trusting no stored tree node), and, given an
        auditor's state, that the checkpoint is not older than it and the log agrees with it."""
        cp = checkpoint.checkpoint
        head, head_hash = self.backend.head()

        def problem(position: int, kind: ProblemKind, message: str) -> VerifyReport:
            return VerifyReport(
                ok=False,
                checked=0,
                from_position=1,
                to_position=head,
                head_position=head,
                head_hash=head_hash.hex() if head_hash else None,
                problem=Problem(position=position, kind=kind, message=message),
            )

        if state is not None:
            if state.origin != cp.origin:
                return problem(
                    0, "origin", f"the state file is for log {state.origin!r}, the checkpoint for {cp.origin!r}"
                )
            if cp.size < state.tree_size:
                return problem(
                    cp.size,
                    "rollback",
                    f"the checkpoint (size {cp.size}) is older than the one this "
                    f"auditor already accepted (size {state.tree_size})",
                )
            if cp.size == state.tree_size and cp.root != base64.b64decode(state.root):
                return problem(
                    cp.size,
                    "fork",
                    f"the log signed two different roots for size {cp.size} (this "
                    "checkpoint and the one this auditor accepted): a split view",
                )
        if head < cp.size:
            return problem(
                head + 1,
                "truncated",
                f"the log has {head} entries, fewer than the checkpoint's {cp.size}: it was truncated",
            )
        wanted = {cp.size: cp.root}
        if state is not None:
            wanted[state.tree_size] = base64.b64decode(state.root)
        report, found = self._scan(merkle.CompactRange(), sizes=wanted.keys(), progress=progress)
        if not report.ok:
            return report
        for size, root in sorted(wanted.items()):
            if found.get(size) != root:
                what = "checkpoint" if size == cp.size else "auditor state"
                return problem(
                    size,
                    "fork",
                    f"the log's first {size} entries do not have the {what}'s root hash: "
                    "history was rewritten or forked",
                )
        return report
