"""C2SP signed notes, checkpoints and cosignatures, with Ed25519 keys.

Formats (docs/audit.md has the details and test vectors):

* signed note (c2sp.org/signed-note): the text (ending in a newline), a blank
  line, then one line per signature: ``— <key name> base64(key id || signature)``;
  key id = SHA-256(name || 0x0A || alg || public key)[:4], alg 0x01 for Ed25519.
  Verifiers ignore signatures by keys they do not know.
* verifier key: ``<name>+<hex key id>+base64(alg || public key)``; signing key:
  ``PRIVATE+KEY+<name>+<hex key id>+base64(alg || 32-byte seed)``.
* checkpoint (c2sp.org/tlog-checkpoint): the note text is the origin line, the
  decimal tree size, the base64 root hash, then optional extension lines.
* cosignature (c2sp.org/tlog-cosignature, Ed25519, alg 0x04): a note signature
  whose bytes are u64be(timestamp) || Ed25519 signature over
  ``"cosignature/v1\\ntime <timestamp>\\n" || checkpoint text``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import (
    NoteFormatError,  # noqa: F401  (defined in eventstore.errors, the one hierarchy)
    UserError,
    VerificationError,
)

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
DASH = "\u2014"


def _check_key_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteFormatError(f"key name {name!r} must be non-empty, without spaces or '+'")
    try:
        name.encode()
    except UnicodeEncodeError:
        raise NoteFormatError(f"key name {name!r} is not valid UTF-8 text") from None
    return name


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteFormatError(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Verifier:
    """A public key that can check note signatures (or cosignatures when alg is 0x04)."""

    name: str
    alg: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public_key)

    def to_text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([self.alg]) + self.public_key).decode()}"

    @classmethod
    def from_text(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteFormatError("a verifier key has the form <name>+<hex key id>+<base64 key>")
        name, hid, b64 = parts
        _check_key_name(name)
        raw = _b64decode(b64, "the verifier key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteFormatError("the verifier key is not an Ed25519 key (algorithm 0x01 or 0x04, 32 bytes)")
        v = cls(name, raw[0], raw[1:])
        if v.key_id.hex() != hid.lower():
            raise NoteFormatError("the verifier key's key id does not match its name and key")
        return v

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
            return True
        except InvalidSignature:
            return False


@dataclass(frozen=True)
class Signer:
    """A private Ed25519 key with its name; ``alg`` 0x04 makes it a cosigner (witness)."""

    name: str
    alg: int
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str, *, cosigner: bool = False) -> Signer:
        _check_key_name(name)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, ALG_COSIGNATURE_V1 if cosigner else ALG_ED25519, seed)

    @property
    def _key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.alg, self._key.public_key().public_bytes_raw())

    def to_text(self) -> str:
        b64 = base64.b64encode(bytes([self.alg]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{b64}"

    @classmethod
    def from_text(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteFormatError("a signing key has the form PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
        name, hid, b64 = parts[2:]
        _check_key_name(name)
        raw = _b64decode(b64, "the signing key")
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteFormatError("the signing key is not an Ed25519 key")
        s = cls(name, raw[0], raw[1:])
        if s.verifier.key_id.hex() != hid.lower():
            raise NoteFormatError("the signing key's key id does not match its name and key")
        return s

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{DASH} {self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True)
class Note:
    """A signed note: its text and signature lines (unverified until ``verify``)."""

    text: str
    signatures: tuple[NoteSignature, ...]

    @classmethod
    def parse(cls, raw: str) -> Note:
        sep = raw.rfind("\n\n")
        if sep < 0 or not raw.endswith("\n"):
            raise NoteFormatError("a signed note is text, a blank line, and signature lines, ending in a newline")
        text, block = raw[: sep + 1], raw[sep + 2 :]
        sigs = []
        for line in block.splitlines():
            if not line.startswith(DASH + " "):
                raise NoteFormatError(f"not a signature line: {line[:40]!r}")
            parts = line[2:].split(" ")
            if len(parts) != 2:
                raise NoteFormatError(f"a signature line is '{DASH} <name> <base64>': {line[:40]!r}")
            raw_sig = _b64decode(parts[1], "a note signature")
            if len(raw_sig) < 5:
                raise NoteFormatError("a note signature is too short")
            sigs.append(NoteSignature(parts[0], raw_sig[:4], raw_sig[4:]))
        if not sigs:
            raise NoteFormatError("the note has no signatures")
        return cls(text, tuple(sigs))

    def format(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def signed_by(self, verifier: Verifier) -> bool:
        """True if a valid signature (or cosignature) by ``verifier`` is on the note."""
        for s in self.signatures:
            if s.name != verifier.name or s.key_id != verifier.key_id:
                continue
            if verifier.alg == ALG_COSIGNATURE_V1:
                if len(s.signature) != 72:
                    return False
                ts = struct.unpack(">Q", s.signature[:8])[0]
                if ts >= 1 << 63:  # tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1
                    return False
                return verifier.verify(cosignature_message(self.text, ts), s.signature[8:])
            return verifier.verify(self.text.encode(), s.signature)
        return False

    def add(self, signature: NoteSignature) -> Note:
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (signature.name, signature.key_id))
        return Note(self.text, kept + (signature,))


def sign_note(text: str, signer: Signer) -> Note:
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteFormatError("note text must end with a newline and contain no blank line")
    sig = signer.sign(text.encode())
    return Note(text, (NoteSignature(signer.name, signer.verifier.key_id, sig),))


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign(note: Note, cosigner: Signer, timestamp: int | None = None) -> Note:
    """Add a C2SP tlog-cosignature by ``cosigner`` (a witness key, alg 0x04)."""
    if cosigner.alg != ALG_COSIGNATURE_V1:
        raise UserError("cosigning needs a cosigner key (eventstore keygen --cosigner)")
    ts = int(time.time()) if timestamp is None else timestamp
    sig = struct.pack(">Q", ts) + cosigner.sign(cosignature_message(note.text, ts))
    return note.add(NoteSignature(cosigner.name, cosigner.verifier.key_id, sig))


@dataclass(frozen=True)
class Checkpoint:
    """The body of a C2SP tlog-checkpoint."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteFormatError("a checkpoint has an origin line, a size line and a root hash line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteFormatError("the checkpoint's origin line is empty")
        if not size.isascii() or not size.isdigit() or (size.startswith("0") and size != "0"):
            raise NoteFormatError(f"the checkpoint's size line {size!r} is not a decimal number")
        raw_root = _b64decode(root, "the checkpoint's root hash")
        if len(raw_root) != 32:
            raise NoteFormatError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), raw_root, tuple(lines[3:-1]))


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: Note

    def format(self) -> str:
        return self.note.format()


def open_checkpoint(raw: str, verifier: Verifier, witnesses: tuple[Verifier, ...] = ()) -> SignedCheckpoint:
    """Parse a signed checkpoint and check the log's signature (and each given witness's)."""
    note = Note.parse(raw)
    if not note.signed_by(verifier):
        raise VerificationError(
            f"the checkpoint carries no valid signature by {verifier.name} (key id {verifier.key_id.hex()})"
        )
    for w in witnesses:
        if not note.signed_by(w):
            raise VerificationError(f"the checkpoint carries no valid cosignature by witness {w.name}")
    cp = Checkpoint.parse(note.text)
    if cp.origin != verifier.name:
        raise VerificationError(f"the checkpoint's origin {cp.origin!r} is not the key's name {verifier.name!r}")
    return SignedCheckpoint(cp, note)
