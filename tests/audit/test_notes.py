"""Signed notes, checkpoints and cosignatures against the C2SP / Go reference formats."""

from __future__ import annotations

import base64
import struct

import pytest

from eventstore import VerificationError
from eventstore.notes import (
    Checkpoint,
    Note,
    NoteFormatError,
    Signer,
    Verifier,
    cosign,
    cosignature_message,
    open_checkpoint,
    sign_note,
)

# golang.org/x/mod/sumdb/note reference vector
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_reference_note_signs_and_verifies_byte_for_byte() -> None:
    signer = Signer.from_text(GO_SKEY)
    assert signer.verifier.to_text() == GO_VKEY
    assert sign_note(GO_TEXT, signer).format() == GO_NOTE
    note = Note.parse(GO_NOTE)
    assert note.signed_by(Verifier.from_text(GO_VKEY))
    tampered = Note.parse(GO_NOTE.replace("answer", "Answer"))
    assert not tampered.signed_by(Verifier.from_text(GO_VKEY))


def test_unknown_signatures_are_ignored_and_the_known_one_is_required() -> None:
    log = Signer.generate("example.com/log")
    other = Signer.generate("other.example/log")
    body = Checkpoint("example.com/log", 3, bytes(range(32))).text()
    note = sign_note(body, log)
    stranger = sign_note(body, other).signatures[0]
    with_extra = Note(note.text, note.signatures + (stranger,)).format()
    assert open_checkpoint(with_extra, log.verifier).checkpoint.size == 3
    with pytest.raises(VerificationError, match="no valid signature by example.com/log"):
        open_checkpoint(sign_note(body, other).format(), log.verifier)
    # same name, another key: refused too
    impostor = Signer.generate("example.com/log")
    with pytest.raises(VerificationError):
        open_checkpoint(sign_note(body, impostor).format(), log.verifier)


def test_cosignature_is_the_c2sp_timestamped_ed25519_form() -> None:
    log = Signer.generate("example.com/log")
    witness = Signer.generate("witness.example/w1", cosigner=True)
    note = sign_note(Checkpoint("example.com/log", 5, bytes(32)).text(), log)
    cosigned = cosign(note, witness, timestamp=1679315147)
    sig = cosigned.signatures[-1]
    assert sig.key_id == witness.verifier.key_id and len(sig.signature) == 8 + 64
    assert struct.unpack(">Q", sig.signature[:8])[0] == 1679315147
    assert cosignature_message(note.text, 1679315147).startswith(b"cosignature/v1\ntime 1679315147\nexample.com/log\n")
    assert open_checkpoint(cosigned.format(), log.verifier, (witness.verifier,))
    # vkey of a cosigner carries algorithm 0x04
    assert base64.b64decode(witness.verifier.to_text().split("+", 2)[2])[0] == 0x04
    with pytest.raises(VerificationError, match="no valid cosignature"):
        open_checkpoint(note.format(), log.verifier, (witness.verifier,))


@pytest.mark.parametrize(
    "bad",
    [
        "no signatures\n",
        "example.com/log\n3\nAAAA\n\nnot a signature line\n",
        "example.com/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n\n\u2014 example.com/log %%%%\n",
    ],
)
def test_malformed_notes_are_user_errors(bad: str) -> None:
    with pytest.raises(NoteFormatError):
        Note.parse(bad)


def test_checkpoint_body_parse_rules() -> None:
    cp = Checkpoint("o", 7, bytes(32), ("ext line",))
    assert Checkpoint.parse(cp.text()) == cp
    for text in ["o\n07\n" + base64.b64encode(bytes(32)).decode() + "\n", "o\n7\nAAAA\n", "\n7\nx\n"]:
        with pytest.raises(NoteFormatError):
            Checkpoint.parse(text)
