"""The Merkle tree against RFC 6962 test vectors, and proof properties under hypothesis."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from eventstore import EventStore, NewEvent, VerificationError, merkle

# RFC 6962 reference data (as used by the certificate-transparency and transparency-dev test suites)
LEAF_DATA = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
CONSISTENCY = [
    (
        2,
        8,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
LEAVES = [merkle.leaf_hash(d) for d in LEAF_DATA]


def reference(start: int, end: int) -> bytes:
    return merkle.root_of_leaves(LEAVES[start:end])


def test_rfc6962_roots() -> None:
    assert merkle.root_of_leaves([]).hex() == ROOTS[0]
    for n in range(1, 9):
        assert merkle.root_of_leaves(LEAVES[:n]).hex() == ROOTS[n]
        assert merkle.range_root(0, n, reference).hex() == ROOTS[n]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_rfc6962_inclusion(index: int, size: int, path: list[str]) -> None:
    assert [h.hex() for h in merkle.inclusion_path(index, size, reference)] == path
    merkle.verify_inclusion(index, size, LEAVES[index], [bytes.fromhex(h) for h in path], bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_rfc6962_consistency(old: int, new: int, path: list[str]) -> None:
    assert [h.hex() for h in merkle.consistency_path(old, new, reference)] == path
    merkle.verify_consistency(
        old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), [bytes.fromhex(h) for h in path]
    )


def _store_with(n: int, d: str) -> EventStore:
    store = EventStore.open(Path(d) / "m.db", durability="process")
    for start in range(0, n, 500):
        store.append("s", [NewEvent(type="t", data={"i": i}) for i in range(start, min(n, start + 500))])
    return store


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_stored_tree_proofs_verify_and_any_altered_byte_fails(n: int, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = _store_with(n, d)
        leaves = [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]
        m = data.draw(st.integers(1, n), label="old size")
        i = data.draw(st.integers(0, n - 1), label="leaf")
        root_n = merkle.root_of_leaves(leaves)
        root_m = merkle.root_of_leaves(leaves[:m])
        # the stored tree (partly synced, partly hashed from the log) agrees with the reference
        store.tree.sync(data.draw(st.integers(0, n), label="synced"))
        assert store.tree.root(n) == root_n and store.tree_root(m) == root_m

        inc = [bytes.fromhex(h) for h in store.prove_inclusion(i + 1, n).hashes]
        merkle.verify_inclusion(i, n, leaves[i], inc, root_n)
        con = [bytes.fromhex(h) for h in store.prove_consistency(m, n).hashes]
        merkle.verify_consistency(m, n, root_m, root_n, con)

        if inc:
            k = data.draw(st.integers(0, len(inc) * 32 - 1), label="flipped byte")
            bad = [bytearray(h) for h in inc]
            bad[k // 32][k % 32] ^= 0x01
            with pytest.raises(VerificationError):
                merkle.verify_inclusion(i, n, leaves[i], [bytes(b) for b in bad], root_n)
        if con:
            k = data.draw(st.integers(0, len(con) * 32 - 1), label="flipped byte")
            bad = [bytearray(h) for h in con]
            bad[k // 32][k % 32] ^= 0x80
            with pytest.raises(VerificationError):
                merkle.verify_consistency(m, n, root_m, root_n, [bytes(b) for b in bad])
        if m < n:  # a different old root (a fork) is refused
            with pytest.raises(VerificationError):
                merkle.verify_consistency(m, n, leaves[0] if m > 1 else b"\x00" * 32, root_n, con)
        store.close()


def test_compact_range_matches_reference() -> None:
    cr = merkle.CompactRange()
    assert cr.root() == merkle.EMPTY_ROOT
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(70)]
    for k, leaf in enumerate(leaves, start=1):
        cr.append(leaf)
        assert cr.root() == merkle.root_of_leaves(leaves[:k])


def test_sync_is_idempotent_and_incremental(tmp_path: Path) -> None:
    store = _store_with(1000, str(tmp_path))
    assert store.tree.sync(500) == 496
    assert store.tree.sync() == 992 and store.tree.sync() == 992
    store.append("s", [NewEvent(type="t", data={}) for _ in range(40)])
    assert store.tree.sync() == 1040
    leaves = [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]
    assert store.tree_root() == merkle.root_of_leaves(leaves)


def test_sync_recomputes_stored_nodes_deleted_by_hand(tmp_path: Path) -> None:
    store = _store_with(100, str(tmp_path))
    store.tree.sync()
    with store.backend.transaction() as tx:
        tx.execute("DELETE FROM merkle_nodes WHERE (level = 5 AND idx = 2) OR (level = 4 AND idx = 4)")
    store.append("s", [NewEvent(type="t", data={}) for _ in range(28)])
    assert store.tree.sync() == 128
    leaves = [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]
    assert store.tree_root() == merkle.root_of_leaves(leaves)
    store.close()
