"""Direct tests of the Merkle, note, proof and verifier code, written to kill the mutants
`make mutate` found surviving (docs/testing.md lists those left and why)."""

from __future__ import annotations

import base64
import hashlib
import struct
from pathlib import Path

import msgspec
import pytest

from eventstore import EventStore, NewEvent, UserError, VerificationError, merkle, notes, proofs
from eventstore.hashing import entry_hash
from eventstore.notes import Checkpoint, Note, NoteFormatError, Signer, cosign, open_checkpoint, sign_note
from eventstore.records import Problem, Row
from eventstore.verify import ChainVerifier

LEAVES = [merkle.leaf_hash(hashlib.sha256(bytes([i])).digest()) for i in range(40)]


def _perfect(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    return lambda start, end: merkle.root_of_leaves(leaves[start:end])


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


# -- Merkle proofs: every size and index of small trees --------------------------------


def test_inclusion_proofs_of_every_leaf_of_every_small_tree_verify_and_no_altered_one_does() -> None:
    perfect = _perfect(LEAVES)
    for size in range(1, 34):
        root = merkle.root_of_leaves(LEAVES[:size])
        for index in range(size):
            path = merkle.inclusion_path(index, size, perfect)
            merkle.verify_inclusion(index, size, LEAVES[index], path, root)
            for k in range(len(path)):
                bad = path[:k] + [_flip(path[k])] + path[k + 1 :]
                with pytest.raises(VerificationError, match="root hash"):
                    merkle.verify_inclusion(index, size, LEAVES[index], bad, root)
            with pytest.raises(VerificationError, match="longer"):
                merkle.verify_inclusion(index, size, LEAVES[index], path + [LEAVES[0]], root)
            if path:
                with pytest.raises(VerificationError, match="shorter"):
                    merkle.verify_inclusion(index, size, LEAVES[index], path[:-1], root)
            if size > 1:  # the leaf at another index does not verify with this path
                other = (index + 1) % size
                with pytest.raises(VerificationError):
                    merkle.verify_inclusion(other, size, LEAVES[index], path, root)


def test_consistency_proofs_between_every_pair_of_small_trees_verify_and_no_altered_one_does() -> None:
    perfect = _perfect(LEAVES)
    roots = [merkle.root_of_leaves(LEAVES[:n]) for n in range(34)]
    for new in range(1, 34):
        for old in range(1, new + 1):
            path = merkle.consistency_path(old, new, perfect)
            merkle.verify_consistency(old, new, roots[old], roots[new], path)
            for k in range(len(path)):
                bad = path[:k] + [_flip(path[k])] + path[k + 1 :]
                with pytest.raises(VerificationError, match="root"):
                    merkle.verify_consistency(old, new, roots[old], roots[new], bad)
            if old < new:
                with pytest.raises(VerificationError, match="longer"):
                    merkle.verify_consistency(old, new, roots[old], roots[new], path + [LEAVES[0]])
                if len(path) > 1:
                    with pytest.raises(VerificationError, match="shorter|root"):
                        merkle.verify_consistency(old, new, roots[old], roots[new], path[:-1])
                with pytest.raises(VerificationError, match="root"):
                    merkle.verify_consistency(old, new, _flip(roots[old]), roots[new], path)
                with pytest.raises(VerificationError, match="new root"):
                    merkle.verify_consistency(old, new, roots[old], _flip(roots[new]), path)


def test_proof_bounds_are_refused_with_their_reason() -> None:
    perfect = _perfect(LEAVES)
    root = merkle.root_of_leaves(LEAVES[:8])
    for index in (8, 9, -1):
        with pytest.raises(VerificationError, match=f"leaf index {index} is outside a tree of size 8"):
            merkle.verify_inclusion(index, 8, LEAVES[0], [], root)
        with pytest.raises(UserError, match=f"leaf index {index} is outside a tree of size 8"):
            merkle.inclusion_path(index, 8, perfect)
    for old, new in ((0, 5), (6, 5), (-1, 3)):
        with pytest.raises(VerificationError, match=f"cannot prove consistency from size {old} to {new}"):
            merkle.verify_consistency(old, new, root, root, [root])
        with pytest.raises(UserError, match="0 < old size <= new size"):
            merkle.consistency_path(old, new, perfect)
    with pytest.raises(VerificationError, match="equal sizes must be empty"):
        merkle.verify_consistency(8, 8, root, root, [root])
    with pytest.raises(VerificationError, match="forked"):
        merkle.verify_consistency(8, 8, root, _flip(root), [])
    with pytest.raises(VerificationError, match="is empty"):
        merkle.verify_consistency(4, 8, root, root, [])
    merkle.verify_consistency(8, 8, root, root, [])


def test_stored_nodes_are_exactly_the_reference_subtree_roots(tmp_path: Path) -> None:
    """Every stored node is the root of its aligned subtree, whatever the batch size; and a
    node that is missing (deleted by hand) is recomputed from the log, not taken as absent."""
    with EventStore.open(tmp_path / "t.db", durability="process") as store:
        for start in range(0, 600, 100):
            store.append(f"s{start}", [NewEvent(type="t", data={"i": i}) for i in range(100)])
        leaves = [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]
        seen: list[tuple[int, int]] = []
        assert store.tree.synced_size() == 0
        assert store.tree.sync(300, batch=48, progress=lambda d, t: seen.append((d, t))) == 288
        assert seen == [(48, 288), (96, 288), (144, 288), (192, 288), (240, 288), (288, 288)]
        assert store.tree.synced_size() == 288
        assert store.tree.sync(batch=64) == 592 and store.tree.synced_size() == 592
        nodes = store.backend.query("SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx")
        expected = {(lv, i) for lv in range(4, 10) for i in range(592 >> lv)}
        assert {(lv, i) for lv, i, _ in nodes} == expected
        for lv, i, h in nodes:
            span = 1 << lv
            assert bytes(h) == merkle.root_of_leaves(leaves[i * span : (i + 1) * span]), (lv, i)
        for n in (1, 15, 16, 17, 31, 32, 33, 255, 256, 257, 300, 511, 512, 513, 591, 592, 593, 600):
            assert store.tree.root(n) == merkle.root_of_leaves(leaves[:n]), n
        for index, size in ((0, 600), (299, 600), (511, 513), (592, 600)):
            path = store.tree.inclusion_proof(index, size)
            merkle.verify_inclusion(index, size, leaves[index], path, merkle.root_of_leaves(leaves[:size]))
        for old, size in ((1, 600), (256, 600), (300, 513), (592, 593)):
            merkle.verify_consistency(
                old,
                size,
                merkle.root_of_leaves(leaves[:old]),
                merkle.root_of_leaves(leaves[:size]),
                store.tree.consistency_proof(old, size),
            )
        with store.backend.transaction() as tx:
            tx.execute("DELETE FROM merkle_nodes WHERE level = 4 AND idx = 36")
            tx.execute("DELETE FROM merkle_nodes WHERE level = 9")
        assert store.tree.root(600) == merkle.root_of_leaves(leaves)
        with pytest.raises(UserError, match="larger than the log"):
            store.tree.root(601)


# -- notes -----------------------------------------------------------------------------


def test_a_signature_by_another_key_of_the_same_name_is_skipped_not_fatal() -> None:
    a, b = Signer.generate("log.example/x"), Signer.generate("log.example/x")
    note = sign_note("hello\n", a)
    both = note.add(sign_note("hello\n", b).signatures[0])
    assert len(both.signatures) == 2
    assert both.signed_by(b.verifier) and both.signed_by(a.verifier)
    assert not note.signed_by(b.verifier)


def test_cosignature_timestamp_and_length_rules() -> None:
    w = Signer.generate("witness.example/w", cosigner=True)
    note = sign_note("hello\n", Signer.generate("log.example/x"))
    for ts in (0, 1, 2**63 - 1):
        assert cosign(note, w, ts).signed_by(w.verifier), ts
    # 2^63 and above are refused even when correctly signed
    for ts in (2**63, 2**64 - 1):
        sig = struct.pack(">Q", ts) + w.sign(notes.cosignature_message(note.text, ts))
        forged = note.add(notes.NoteSignature(w.name, w.verifier.key_id, sig))
        assert not forged.signed_by(w.verifier), ts
    good = cosign(note, w, 5)
    s = good.signatures[-1]
    for bad in (s.signature[:-1], s.signature + b"\x00"):
        assert not note.add(notes.NoteSignature(s.name, s.key_id, bad)).signed_by(w.verifier)


def test_note_and_checkpoint_parsing_is_strict() -> None:
    log = Signer.generate("log.example/x")
    text = Checkpoint("log.example/x", 3, bytes(32)).text()
    raw = sign_note(text, log).format()
    assert Note.parse(raw).format() == raw
    for bad, why in (
        (raw[:-1], "ending in a newline"),
        (text, "blank line"),
        (raw.replace("\u2014 ", "- "), "not a signature line"),
        (raw.replace("\u2014 log.example/x ", "\u2014 log.example/x  "), "signature line is"),
        (text + "\n\u2014 log.example/x AAAA\n", "too short"),
        (text + "\n\u2014 log.example/x AA!A\n", "not valid base64"),
    ):
        with pytest.raises(NoteFormatError, match=why):
            Note.parse(bad)
    for body, why in (
        ("log.example/x\n3\n", "origin line, a size line"),
        ("\n3\n" + "A" * 44 + "\n", "origin line is empty"),
        ("o\n03\n" + base64.b64encode(bytes(32)).decode() + "\n", "not a decimal"),
        ("o\n+3\n" + base64.b64encode(bytes(32)).decode() + "\n", "not a decimal"),
        ("o\n3\n" + base64.b64encode(bytes(31)).decode() + "\n", "not 32 bytes"),
        ("o\n3\n" + base64.b64encode(bytes(32)).decode(), "origin line"),
    ):
        with pytest.raises(NoteFormatError, match=why):
            Checkpoint.parse(body)
    cp = Checkpoint.parse("o\n0\n" + base64.b64encode(bytes(32)).decode() + "\next one\nextra two\n")
    assert (cp.size, cp.extensions) == (0, ("ext one", "extra two"))
    for bad_text in ("no newline", "two\n\nparas\n"):
        with pytest.raises(NoteFormatError, match="end with a newline and contain no blank line"):
            sign_note(bad_text, log)


def test_key_text_forms_are_strict() -> None:
    s = Signer.generate("log.example/x")
    assert Signer.from_text(s.to_text()) == s and notes.Verifier.from_text(s.verifier.to_text()) == s.verifier
    assert Signer.from_text(s.to_text().replace(s.verifier.key_id.hex(), s.verifier.key_id.hex().upper())) == s
    for name in ("", "a b", "a+b", "tab\tname"):
        with pytest.raises(NoteFormatError, match="non-empty, without spaces"):
            Signer.generate(name)
    vt, st_ = s.verifier.to_text(), s.to_text()
    wrong_id = "00000000" if s.verifier.key_id.hex() != "00000000" else "11111111"
    for bad, why in (
        (vt.replace(s.verifier.key_id.hex(), wrong_id), "key id does not match"),
        (vt.split("+")[0] + "+" + s.verifier.key_id.hex(), "has the form"),
        (vt[:-4] + "!!!!", "not valid base64"),
        (
            vt.split("+")[0] + "+" + s.verifier.key_id.hex() + "+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
            "not an Ed25519 key",
        ),
        (
            vt.split("+")[0] + "+" + s.verifier.key_id.hex() + "+" + base64.b64encode(b"\x01" + bytes(31)).decode(),
            "not an Ed25519 key",
        ),
    ):
        with pytest.raises(NoteFormatError, match=why):
            notes.Verifier.from_text(bad)
    for bad, why in (
        (st_.replace(s.verifier.key_id.hex(), wrong_id), "key id does not match"),
        (st_.replace("PRIVATE+KEY+", "PRIVATE+KEZ+"), "has the form"),
        (
            "PRIVATE+KEY+log.example/x+"
            + s.verifier.key_id.hex()
            + "+"
            + base64.b64encode(b"\x02" + bytes(32)).decode(),
            "not an Ed25519 key",
        ),
        ("PRIVATE+KEY+a b+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(), "without spaces"),
    ):
        with pytest.raises(NoteFormatError, match=why):
            Signer.from_text(bad)
    with pytest.raises(UserError, match="cosigner key"):
        cosign(sign_note("x\n", s), s)


# -- tlog-proof parsing -------------------------------------------------------------


@pytest.fixture
def receipt(tmp_path: Path) -> tuple[str, Signer, EventStore]:
    store = EventStore.open(tmp_path / "r.db", durability="process")
    store.append("s", [NewEvent(type="t", data={"i": i}) for i in range(5)])
    log = Signer.generate("log.example/x")
    return store.tlog_proof(3, store.checkpoint(log)), log, store


def test_tlog_proof_extra_is_sorted_canonical_json(receipt: tuple[str, Signer, EventStore]) -> None:
    text, _, store = receipt
    extra = base64.b64decode(text.split("\n")[1].removeprefix("extra "))
    entry = proofs.EntryHeader.from_row(store.backend.row_at(3))  # type: ignore[arg-type]
    assert extra == msgspec.json.encode(entry, order="sorted")
    keys = list(msgspec.json.decode(extra))
    assert keys == sorted(keys)


def test_tlog_proof_lines_are_parsed_strictly(receipt: tuple[str, Signer, EventStore]) -> None:
    text, log, _ = receipt
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[2] == "index 2"

    def variant(ls: list[str]) -> str:
        return "\n".join(ls) + "\n\n" + note

    cases = [
        (head, UserError, "no blank line"),
        (variant(["c2sp.org/tlog-proof@v2"] + lines[1:]), UserError, "first line must be"),
        (variant(lines[:1] + lines[2:]), UserError, "carries no entry header"),
        (variant(lines[:1] + ["extra " + lines[1][6:-2] + "!!"] + lines[2:]), UserError, "extra line"),
        (
            variant(lines[:1] + ["extra " + base64.b64encode(b'{"position": 1}').decode()] + lines[2:]),
            UserError,
            "extra line",
        ),
        (variant(lines[:2] + lines[3:]), UserError, "missing 'index N'"),
        (variant(lines[:2] + ["index x2"] + lines[3:]), UserError, "missing 'index N'"),
        (variant(lines[:2] + ["index \u0662"] + lines[3:]), UserError, "missing 'index N'"),
        (variant(lines[:2] + ["index "] + lines[3:]), UserError, "missing 'index N'"),
        (variant(lines[:2]), UserError, "missing 'index N'"),
        (variant(lines[:3] + [lines[3][:-2] + "!="] + lines[4:]), VerificationError, "not base64"),
        (variant(lines[:3] + [base64.b64encode(bytes(31)).decode()] + lines[4:]), VerificationError, "not 32 bytes"),
        (variant(lines[:2] + ["index 3"] + lines[3:]), VerificationError, "index is not the entry's position - 1"),
    ]
    for bad, error, why in cases:
        with pytest.raises(error, match=why):
            proofs.check_tlog_proof(bad, log.verifier)
    w = Signer.generate("witness.example/w", cosigner=True)
    with pytest.raises(VerificationError, match="cosignature by witness"):
        proofs.check_tlog_proof(text, log.verifier, (w.verifier,))
    cosigned = head + "\n\n" + cosign(Note.parse(note), w).format()
    assert proofs.check_tlog_proof(cosigned, log.verifier, (w.verifier,))[0].position == 3


def test_json_proof_errors(receipt: tuple[str, Signer, EventStore]) -> None:
    _, log, store = receipt
    cp = store.checkpoints()[-1][3]
    inc = store.prove_inclusion(2, 5, origin="log.example/x")
    ok = proofs.check_proof_text(msgspec.json.encode(inc).decode(), [cp], log.verifier)
    assert (ok.ok, ok.kind, ok.position, ok.tree_size) == (True, "inclusion", 2, 5)
    assert "entry 2 is included in the tree of size 5" in ok.message
    for hashes, why in ((["zz" * 32], "not hex"), (["00" * 31], "not 32 bytes")):
        bad = msgspec.structs.replace(inc, hashes=hashes)
        r = proofs.check_proof_text(msgspec.json.encode(bad).decode(), [cp], log.verifier)
        assert not r.ok and r.kind == "invalid" and why in r.message
    bad_entry = msgspec.structs.replace(inc, entry=msgspec.structs.replace(inc.entry, data_digest="zz"))
    with pytest.raises(VerificationError, match="not hex"):
        proofs.check_inclusion(bad_entry, open_checkpoint(cp, log.verifier))
    with pytest.raises(VerificationError, match="leaf index is not the entry's position - 1"):
        proofs.check_inclusion(msgspec.structs.replace(inc, leaf_index=2), open_checkpoint(cp, log.verifier))
    with pytest.raises(VerificationError, match="does not hash to its stated hash"):
        proofs.check_inclusion(
            msgspec.structs.replace(inc, entry=msgspec.structs.replace(inc.entry, type="x")),
            open_checkpoint(cp, log.verifier),
        )
    with pytest.raises(UserError, match="exactly one --checkpoint"):
        proofs.check_proof_text(msgspec.json.encode(inc).decode(), [cp, cp], log.verifier)
    with pytest.raises(UserError, match="two --checkpoint"):
        proofs.check_proof_text(msgspec.json.encode(store.prove_consistency(2, 5)).decode(), [cp], log.verifier)
    with pytest.raises(UserError, match="unknown proof format 'x'"):
        proofs.check_proof_text('{"format": "x"}', [], log.verifier)
    with pytest.raises(UserError, match="unknown proof format None"):
        proofs.check_proof_text("[1]", [], log.verifier)
    with pytest.raises(UserError, match="neither JSON nor"):
        proofs.check_proof_text("nope", [], log.verifier)
    with pytest.raises(UserError, match="malformed proof"):
        proofs.check_proof_text('{"format": "eventstore/inclusion-proof/v1"}', [cp], log.verifier)


def test_every_problem_carries_its_message(sqlite_store: EventStore) -> None:
    sqlite_store.append("s", [NewEvent(type="t", data={"i": i}) for i in range(3)])
    with sqlite_store.backend.transaction() as tx:
        tx.execute("DROP TRIGGER events_no_update")
        tx.execute("UPDATE events SET data = ? WHERE position = 2", (b'{"i":7}',))
    report = sqlite_store.verify()
    assert (
        report.problem is not None
        and report.problem.message == "data does not hash to data_digest: the payload was changed"
    )


# -- the chain verifier, fed rows directly ----------------------------------------------


def _rows(specs: list[tuple[str, int, str, str]], first: int = 1, prev: bytes = bytes(32)) -> list[Row]:
    """Rows for (stream_id, version, type, recorded_at), correctly chained from ``prev``."""
    out = []
    for k, (stream, version, type_, at) in enumerate(specs):
        data, meta = b'{"k":%d}' % k, b"{}"
        dd, md = hashlib.sha256(data).digest(), hashlib.sha256(meta).digest()
        h = entry_hash(first + k, stream, version, type_, at, dd, md, prev)
        out.append(Row(first + k, stream, version, type_, data, meta, dd, md, at, prev, h))
        prev = h
    return out


SPECS = [("", 1, "", ""), ("a", 1, "t", ""), ("a", 2, "t", "2026"), ("", 2, "t", "2026"), ("b", 1, "", "")]


def test_verifier_defaults_and_empty_strings() -> None:
    rows = _rows(SPECS)
    v = ChainVerifier()
    assert v.feed(rows[:2]) and v.feed(rows[2:]) and v.problem is None
    assert (v.checked, v.next_position, v.prev_hash) == (5, 6, rows[-1].hash)
    assert not ChainVerifier(first_position=2).feed(rows)
    v = ChainVerifier(4, rows[2].hash, lambda s, ver, pos: {"": 1}[s])
    assert v.feed(rows[3:]) and v.checked == 2


def _fails(rows: list[Row], position: int, kind: str, message: str, checked: int) -> None:
    v = ChainVerifier()
    assert not v.feed(rows)
    assert v.problem == Problem(position=position, kind=kind, message=message)
    assert v.checked == checked and v.next_position == checked + 1
    assert v.prev_hash == (rows[checked - 1].hash if checked else bytes(32))
    assert not v.feed(_rows(SPECS)) and v.checked == checked  # stays failed


def test_each_problem_names_its_position_kind_and_reason_and_counts_the_rows_before() -> None:
    rows = _rows(SPECS)
    _fails(rows[:2] + rows[4:], 3, "gap", "positions 3..4 are missing (next entry found is 5)", 2)
    _fails(rows[:3] + rows[1:], 4, "gap", "expected position 4, found 2 again or out of order", 3)
    _fails(
        rows[:2] + [rows[2]._replace(data=b"{}")] + rows[3:],
        3,
        "data_digest",
        "data does not hash to data_digest: the payload was changed",
        2,
    )
    _fails(
        rows[:3] + [rows[3]._replace(metadata=b"[]")] + rows[4:],
        4,
        "metadata_digest",
        "metadata does not hash to metadata_digest: the metadata was changed",
        3,
    )
    _fails(
        rows[:1] + [rows[1]._replace(prev_hash=bytes(32))] + rows[2:],
        2,
        "link",
        "prev_hash does not equal the previous entry's hash: an entry was removed, inserted or reordered",
        1,
    )
    _fails(
        rows[:4] + [rows[4]._replace(type="u")],
        5,
        "hash",
        "entry hash does not match the entry's columns: the entry was changed",
        4,
    )
    bad_version = _rows(SPECS[:2] + [("a", 3, "t", "2026")])
    _fails(bad_version, 3, "version", "stream 'a' goes from version 1 to 3", 2)
    # metadata equal to the previous row's, under a digest that is not its hash
    same = _rows([("a", 1, "t", "x"), ("a", 2, "t", "x")])
    bad = same[1]._replace(metadata_digest=bytes(32))
    bad = bad._replace(hash=entry_hash(2, "a", 2, "t", "x", bad.data_digest, bytes(32), bad.prev_hash))
    _fails(
        [same[0], bad], 2, "metadata_digest", "metadata does not hash to metadata_digest: the metadata was changed", 1
    )


# -- the stored tree reads O(log n) rows, each range once -------------------------------


def test_stored_tree_uses_its_nodes_and_reads_each_range_once(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "q.db", durability="process") as store:
        store.append("s", [NewEvent(type="t", data={"i": i}) for i in range(600)])
        assert store.tree.sync() == 592
        leaves = [merkle.leaf_hash(r.hash) for rows in store.iter_rows() for r in rows]
        seen: list[tuple[str, tuple]] = []
        query = store.backend.query

        def recording(sql: str, params: tuple = ()) -> list:  # type: ignore[type-arg]
            seen.append((sql, tuple(params)))
            return query(sql, params)

        store.backend.query = recording  # type: ignore[method-assign]

        def reads(table: str) -> list[tuple[str, tuple]]:  # type: ignore[type-arg]
            return [(s, p) for s, p in seen if f"FROM {table} " in s]

        assert store.tree.root(592) == merkle.root_of_leaves(leaves[:592])
        assert not reads("events") and len(reads("merkle_nodes")) == 3  # 512 + 64 + 16
        seen.clear()
        assert store.tree.root(600) == merkle.root_of_leaves(leaves)
        assert [p for _, p in reads("events")] == [(592, 600)]
        seen.clear()
        assert store.tree.root(8) == merkle.root_of_leaves(leaves[:8])
        assert not reads("merkle_nodes") and len(reads("events")) == 1
        for make in (lambda: store.tree.inclusion_proof(300, 600), lambda: store.tree.consistency_proof(300, 600)):
            seen.clear()
            make()
            assert len(seen) == len(set(seen)), "a range was read twice"
        with store.backend.transaction() as tx:
            tx.execute("DELETE FROM merkle_nodes WHERE level = 4 AND idx = 36")
        seen.clear()
        assert store.tree.root(592) == merkle.root_of_leaves(leaves[:592])
        assert [p for _, p in reads("events")] == [(576, 592)]  # the 16 leaves, in one read


# -- parsing edge cases ----------------------------------------------------------------


def test_tlog_proof_without_lines_and_with_stray_characters(receipt: tuple[str, Signer, EventStore]) -> None:
    text, log, _ = receipt
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    with pytest.raises(UserError, match="missing 'index N'"):
        proofs.check_tlog_proof(lines[0] + "\n\n" + note, log.verifier)
    stray_extra = "\n".join(lines[:1] + ["extra !" + lines[1][6:]] + lines[2:]) + "\n\n" + note
    with pytest.raises(UserError, match="extra line"):
        proofs.check_tlog_proof(stray_extra, log.verifier)
    stray_hash = "\n".join(lines[:3] + ["!" + lines[3]] + lines[4:]) + "\n\n" + note
    with pytest.raises(VerificationError, match="not base64"):
        proofs.check_tlog_proof(stray_hash, log.verifier)


def test_proof_check_results_name_kind_position_and_size(receipt: tuple[str, Signer, EventStore]) -> None:
    text, log, store = receipt
    w = Signer.generate("witness.example/w", cosigner=True)
    r = proofs.check_proof_text(text, [], log.verifier)
    assert (r.ok, r.kind, r.position, r.tree_size) == (True, "tlog-proof", 3, 5)
    assert r.message == "entry 3 (t on 's') is in log.example/x at tree size 5"
    r = proofs.check_proof_text(text, [], log.verifier, (w.verifier,))  # a witness asked for must have cosigned
    assert r.ok is False and "witness" in r.message
    old = store.checkpoints()[-1][3]
    store.append("s", [NewEvent(type="t", data={})])
    new = store.checkpoint(log).format()
    c = store.prove_consistency(5, 6, origin="log.example/x")
    r = proofs.check_proof_text(msgspec.json.encode(c).decode(), [old, new], log.verifier)
    assert (r.ok, r.kind, r.position, r.tree_size) == (True, "consistency", None, 6)
    assert r.message == "the tree of size 5 is a prefix of the tree of size 6: the log only grew"
    r = proofs.check_proof_text(msgspec.json.encode(c).decode(), [old, new], log.verifier, (w.verifier,))
    assert r.ok is False and "witness" in r.message
    bad = msgspec.structs.replace(c, hashes=[])
    r = proofs.check_proof_text(msgspec.json.encode(bad).decode(), [old, new], log.verifier)
    assert r.ok is False and r.kind == "invalid"


def test_note_parse_edge_cases() -> None:
    log = Signer.generate("log.example/x")
    sig = sign_note("b\n", log).signatures[0].line()
    assert Note.parse("a\n\nb\n\n" + sig).text == "a\n\nb\n"  # the last blank line separates
    assert Note.parse("\n\n" + sig).text == "\n"
    five = "\u2014 n " + base64.b64encode(b"\x01\x02\x03\x04\x05").decode() + "\n"
    assert Note.parse("t\n\n" + five).signatures[0].signature == b"\x05"
    with pytest.raises(NoteFormatError, match="no signatures"):
        Note.parse("t\n\n")
