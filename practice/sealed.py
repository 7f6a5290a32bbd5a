"""Secrets at rest: outbox text sealed with AES-GCM under a key derived from SECRET_KEY.

Every email Portico sends carries a link (sign-in, join, reschedule) and sign-in mail a code.
SQLite keeps page images in its WAL after an UPDATE, and PostgreSQL keeps dead tuples until
VACUUM, so erasing a body after sending does not erase it from disk: it is never written in
plaintext in the first place. SealedTextField seals on the way in and opens on the way out,
so composing, sending and the dev mailbox see plain text and the files only ciphertext.
"""
import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from peewee import TextField

from . import runtime

PREFIX = "aesgcm1:"  # a version, so the scheme can change; text without it is from before sealing
UNREADABLE = "(This message cannot be read: it was sealed under another SECRET_KEY.)"


@functools.lru_cache(maxsize=4)
def _cipher(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"portico outbox v1").derive(secret_key.encode())
    return AESGCM(key)


def seal(text: str, context: bytes) -> str:
    """`text` encrypted and authenticated; `context` (the column) is bound to it, so a sealed
    value cannot be moved to another column and read there."""
    nonce = os.urandom(12)  # random 96-bit nonces: far below the birthday bound for an outbox
    sealed = _cipher(runtime.settings().secret_key).encrypt(nonce, text.encode(), context)
    return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(value: str, context: bytes) -> str:
    if not value.startswith(PREFIX):
        return value  # written before sealing (an upgraded database), or a scrubbed body
    raw = base64.b64decode(value[len(PREFIX):])
    try:
        return _cipher(runtime.settings().secret_key).decrypt(raw[:12], raw[12:], context).decode()
    except InvalidTag:
        return UNREADABLE


class SealedTextField(TextField):
    """A text column stored sealed (see the module's docstring)."""

    def db_value(self, value):
        if value is None:
            return None
        return seal(value, self.context)

    def python_value(self, value):
        if value is None:
            return None
        return unseal(value, self.context)

    @property
    def context(self) -> bytes:
        return self.column_name.encode()
