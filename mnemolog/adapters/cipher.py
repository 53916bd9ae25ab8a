"""Encryption at rest: the whole log, the keys beside it, and the read models.

With a cipher key configured:

- every stored event and snapshot is compressed (if asked) and then encrypted
  by :class:`RotatingCipher` (AES-256-GCM, eventsourcing's Cipher interface);
- subject keys in the key table are stored wrapped by it;
- the read models' value and metadata columns hold AES-SIV ciphertext, and
  the full-text index holds keyed hashes of words instead of words.

Key rotation: the first key encrypts; every key given decrypts. A new key
goes first and the old ones stay listed for the events they encrypted (the log
is immutable: its bytes are never rewritten). ``mnemolog rebuild`` then writes
the read models again under the new key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
import zlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Cipher, Compressor
from eventsourcing.utils import Environment

from mnemolog.domain.errors import ValidationError

CIPHER_KEYS = "MNEMOLOG_CIPHER_KEYS"
"""The eventsourcing environment variable holding the keys, comma-separated."""

NONCE = 12
_WORD = re.compile(r"\w+", re.UNICODE)  # as the full-text index splits words


def new_key() -> str:
    """A fresh AES-256 key, in the base64 form the settings take."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


def parse_keys(keys: Sequence[str], field: str = "cipher_key") -> list[bytes]:
    """Base64 AES-256 keys, refused by name when malformed."""
    parsed = []
    for key in keys:
        try:
            raw = base64.b64decode(key, validate=True)
        except (ValueError, TypeError):
            raise ValidationError(
                field, "must be base64 (see mnemolog.new_key)"
            ) from None
        if len(raw) != 32:
            raise ValidationError(field, "must be 32 bytes (AES-256) in base64")
        parsed.append(raw)
    return parsed


class RotatingCipher(Cipher):
    """AES-256-GCM with the first key; decrypts with any key given.

    Ciphertext starts with a marker byte, so that events written before
    encryption was turned on (JSON, or zlib) still read as they are.
    """

    MARK = b"\xe5"

    def __init__(self, environment: Environment) -> None:
        keys = environment.get(CIPHER_KEYS) or ""
        self.keys = parse_keys([k for k in keys.split(",") if k])
        if not self.keys:
            msg = f"{CIPHER_KEYS} holds no key"
            raise ValueError(msg)
        self._aeads = [AESGCM(k) for k in self.keys]

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return self.MARK + nonce + self._aeads[0].encrypt(nonce, plaintext, None)

    def decrypt(self, ciphertext: bytes) -> bytes:
        if not ciphertext.startswith(self.MARK):
            return ciphertext  # written before encryption at rest was configured
        nonce, data = ciphertext[1 : 1 + NONCE], ciphertext[1 + NONCE :]
        for aead in self._aeads:
            try:
                return aead.decrypt(nonce, data, None)
            except InvalidTag:
                continue
        msg = "no configured cipher key decrypts this (a key missing, or altered)"
        raise ValueError(msg)


class ZlibWhenAsked(Compressor):
    """zlib when compression is configured; reads compressed and plain events
    alike (a store can turn compression on or off at any time)."""

    def __init__(self, *, compress: bool) -> None:
        self._compress = compress

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data) if self._compress else data

    def decompress(self, data: bytes) -> bytes:
        if data[:1] == b"{":  # JSON: stored without compression
            return data
        if data[:1] == RotatingCipher.MARK:
            msg = "the store is encrypted at rest: open it with its cipher_keys"
            raise ValueError(msg)
        return zlib.decompress(data)


class ColumnCipher:
    """Read-model columns under the store's keys: deterministic AES-SIV (so a
    rebuild writes the same bytes and can be compared), and keyed word hashes
    for the full-text index. Values written before encryption was turned on
    (plain JSON) read as they are."""

    PREFIX = "~"
    """Marks a sealed column: no JSON text starts with it."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        derived = [_derive(k, b"mnemolog read models", 64) for k in keys]
        self._sivs = [AESSIV(k) for k in derived]
        self._word_key = _derive(keys[0], b"mnemolog words", 32)

    def seal(self, text: str) -> str:
        """The sealed form of a column's text."""
        data = self._sivs[0].encrypt(text.encode("utf-8"), None)
        return self.PREFIX + base64.b64encode(data).decode("ascii")

    def open(self, text: str) -> str:
        """A column's text, opened if sealed."""
        if not text.startswith(self.PREFIX):
            return text
        data = base64.b64decode(text[1:])
        for siv in self._sivs:
            try:
                return siv.decrypt(data, None).decode("utf-8")
            except InvalidTag:
                continue
        msg = "no configured cipher key opens this read-model column"
        raise ValueError(msg)

    def words(self, text: str) -> str:
        """The text as keyed hashes of its words, for the full-text index."""
        return " ".join(self.word(w) for w in _words(text))

    def word(self, word: str) -> str:
        """One word's keyed hash (words fold case and diacritics first)."""
        folded = _fold(word)
        digest = hmac.new(self._word_key, folded.encode("utf-8"), hashlib.sha256)
        return "w" + digest.hexdigest()[:20]


def _derive(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(
        key
    )


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return _WORD.findall(text)
