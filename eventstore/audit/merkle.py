"""The Merkle tree over the log, exactly as RFC 6962 / RFC 9162 (section 2.1) define it.

Leaves are the 32-byte entry hashes in position order (leaf ``i`` is position
``i + 1``)::

    leaf hash  = SHA-256(0x00 || entry hash)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")

The pure functions here compute roots, inclusion and consistency proofs from any
``subtree(start, end)`` callable, and verify proofs with the RFC 9162 algorithms.
``StoredTree`` keeps the hashes of complete aligned subtrees of 16 leaves and more
in ``merkle_nodes``, so any root or proof needs O(log n) reads, however long the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..backends import sql
from ..errors import UserError, VerificationError

if TYPE_CHECKING:
    from ..backends.base import Backend

EMPTY_ROOT = hashlib.sha256(b"").digest()
STORED_LEVEL = 4
"""Subtrees of 2**4 = 16 leaves and more are stored; smaller ones are hashed from the log."""

SubtreeFn = Callable[[int, int], bytes]


def leaf_hash(entry_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (reference implementation; O(n))."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_of_leaves(leaf_hashes[:k]), root_of_leaves(leaf_hashes[k:]))


def range_root(start: int, end: int, perfect: SubtreeFn) -> bytes:
    """MTH of leaves [start, end) where ``start`` is aligned, from perfect subtree roots."""
    n = end - start
    if n & (n - 1) == 0:
        return perfect(start, end)
    k = _split(n)
    return node_hash(perfect(start, start + k), range_root(start + k, end, perfect))


def inclusion_path(index: int, size: int, perfect: SubtreeFn) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size]): sibling hashes from the leaf up."""
    if not 0 <= index < size:
        raise UserError(f"leaf index {index} is outside a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return path(m, start, start + k) + [range_root(start + k, end, perfect)]
        return path(m - k, start + k, end) + [perfect(start, start + k)]

    return path(index, 0, size)


def consistency_path(old_size: int, new_size: int, perfect: SubtreeFn) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size])."""
    if not 0 < old_size <= new_size:
        raise UserError(f"a consistency proof needs 0 < old size <= new size, got {old_size} and {new_size}")

    def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [range_root(start, end, perfect)]
        k = _split(n)
        if m <= k:
            return subproof(m, start, start + k, b) + [range_root(start + k, end, perfect)]
        return subproof(m - k, start + k, end, False) + [perfect(start, start + k)]

    return subproof(old_size, 0, new_size, True)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2: raise VerificationError unless ``leaf`` is at ``index`` under ``root``."""
    if not 0 <= index < size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is shorter than the tree requires")
    if r != root:
        raise VerificationError("inclusion proof does not lead to the root hash")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise VerificationError unless the old tree is a prefix of the new one."""
    if old_size < 1 or old_size > new_size:
        raise VerificationError(f"cannot prove consistency from size {old_size} to {new_size}")
    if old_size == new_size:
        if proof:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise VerificationError("same tree size with different root hashes: the log forked")
        return
    if not proof:
        raise VerificationError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is shorter than the trees require")
    if fr != old_root:
        raise VerificationError("consistency proof does not lead to the old root: the log was rewritten")
    if sr != new_root:
        raise VerificationError("consistency proof does not lead to the new root")


class StoredTree:
    """The tree over a backend's log, with complete subtrees of >= 16 leaves kept in ``merkle_nodes``.

    ``sync()`` extends the stored nodes up to the log head; it is idempotent and safe
    when several processes run it at once. Subtrees below 16 leaves are hashed from
    the (at most 16) entry hashes read from the log in one range query.
    """

    def __init__(self, backend: Backend):
        self.backend = backend

    # -- maintenance ---------------------------------------------------------------
    def synced_size(self) -> int:
        """Leaves covered by stored nodes (a multiple of 16)."""
        rows = self.backend.query(sql.MERKLE_SYNCED_SIZE)
        return rows[0][0] if rows else 0

    def sync(
        self, target: int | None = None, batch: int = 1 << 16, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Store the node of every complete 16-leaf chunk up to ``target`` (default: the
        head), and every parent those complete, computed from the log's entry hashes.

        Rows already present are overwritten with the value computed from the log (a
        row planted ahead of the log is a cache entry, never a source). Idempotent;
        concurrent runs write the same rows.
        """
        unit = 1 << STORED_LEVEL
        head = self.backend.head()[0]
        target = head if target is None else min(target, head)
        limit = target - target % unit
        done = self.synced_size()
        if self.backend.readonly:  # nothing is stored: root() and proofs hash the rest from the log
            return done
        if done >= limit:
            return done
        perfect = self.subtree_fn()
        new: dict[tuple[int, int], bytes] = {}

        def keep(level: int, idx: int, h: bytes) -> None:
            if level >= STORED_LEVEL:
                new[(level, idx)] = h

        compact = CompactRange.from_frontier(done, [perfect(a, b) for a, b in decompose(done)], on_node=keep)
        while done < limit:
            end = min(limit, done + batch)
            for leaf in self._leaves(done, end):
                compact.append(leaf)
            with self.backend.transaction() as tx:
                tx.executemany(sql.MERKLE_PUT_NODE, [(lv, i, h) for (lv, i), h in new.items()])
                tx.execute(sql.MERKLE_ADVANCE, (end,))
            new.clear()
            done = end
            if progress:
                progress(done, limit)
        return done

    def stored_nodes(self) -> dict[tuple[int, int], bytes]:
        """Every stored node as {(level, idx): hash} (for ``check``)."""
        return {(lv, i): bytes(h) for lv, i, h in self.backend.query(sql.MERKLE_ALL_NODES)}

    def reset(self) -> None:
        """Forget every stored node (``repair`` then rebuilds them from the log)."""
        with self.backend.transaction() as tx:
            for statement in sql.MERKLE_RESET:
                tx.execute(statement)

    # -- reads ---------------------------------------------------------------------
    def _leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes of leaves [start, end) read from the log."""
        rows = self.backend.query(sql.LEAF_HASHES, (start, end))
        if len(rows) != end - start:
            raise VerificationError(f"the log has no entries for leaves {start}..{end - 1}: it was cut")
        return [leaf_hash(bytes(r[0])) for r in rows]

    def _stored(self, level: int, idx: int) -> bytes | None:
        rows = self.backend.query(sql.MERKLE_NODE, (level, idx))
        return bytes(rows[0][0]) if rows else None

    def _compute(self, start: int, end: int) -> bytes:
        return root_of_leaves(self._leaves(start, end))

    def subtree_fn(self) -> SubtreeFn:
        """``perfect(start, end)`` for one operation: stored nodes where synced, else hashed
        from the log; a per-operation cache, as a proof's ranges share subtrees.

        Stored nodes are NOT checked here: callers verify what they build against a root
        derived from the entries (eventstore.audit.log).
        """
        cache: dict[tuple[int, int], bytes] = {}
        synced = self.synced_size()

        def perfect(start: int, end: int) -> bytes:
            key = (start, end)
            h = cache.get(key)
            if h is None:
                n = end - start
                level = n.bit_length() - 1
                h = self._stored(level, start >> level) if level >= STORED_LEVEL and end <= synced else None
                if h is None:
                    if level <= STORED_LEVEL:
                        h = self._compute(start, end)
                    else:
                        h = node_hash(perfect(start, start + n // 2), perfect(start + n // 2, end))
                cache[key] = h
            return h

        return perfect

    def root(self, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        self._check_size(size)
        return range_root(0, size, self.subtree_fn())

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        return inclusion_path(index, size, self.subtree_fn())

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        self._check_size(new_size)
        return consistency_path(old_size, new_size, self.subtree_fn())

    def _check_size(self, size: int) -> None:
        head = self.backend.head()[0]
        if size > head:
            raise UserError(f"tree size {size} is larger than the log ({head} entries)")


class CompactRange:
    """Streaming root of a growing tree: feed leaf hashes in order, ask the root at any time.

    Keeps one hash per set bit of the size (O(log n) memory): the roots of the perfect
    subtrees that ``decompose(size)`` names, left to right. Used to compute roots from
    the entries themselves, trusting no stored node; ``on_node(level, idx, hash)`` is
    told of every perfect subtree completed on the way (level >= 1).
    """

    def __init__(self, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        self.size = 0
        self._stack: list[bytes] = []
        self._on_node = on_node

    @classmethod
    def from_frontier(
        cls, size: int, hashes: Sequence[bytes], on_node: Callable[[int, int, bytes], None] | None = None
    ) -> CompactRange:
        """Resume at ``size`` from the roots of ``decompose(size)``, left to right."""
        if len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} frontier hashes, not {len(hashes)}")
        c = cls(on_node)
        c.size = size
        c._stack = list(hashes)
        return c

    @property
    def frontier(self) -> list[bytes]:
        return list(self._stack)

    def append(self, leaf: bytes) -> None:
        h = leaf
        n = self.size
        level = 0
        while n & 1:
            h = node_hash(self._stack.pop(), h)
            n >>= 1
            level += 1
            if self._on_node is not None:
                self._on_node(level, self.size >> level, h)
        self._stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def decompose(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees [start, end) that make up a tree of ``size`` leaves, left to right."""
    out = []
    start = 0
    for bit in reversed(range(size.bit_length())):
        if size >> bit & 1:
            out.append((start, start + (1 << bit)))
            start += 1 << bit
    return out
