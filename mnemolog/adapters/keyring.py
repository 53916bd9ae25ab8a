"""The keys that seal personal data in the log, kept apart from it.

Two levels, both AES-256-GCM:

- a *subject key* per (tenant, data subject): the tenant's own key has the
  subject ``""``; a user's is named by the id the caller gave;
- a *stream key* per memory or session stream, stored wrapped by its
  subject's key. Every sealed event names the stream key it was sealed with.

Erasure deletes rows here: one stream's keys (one memory), a subject's key
and every stream key under it, or all of a tenant's. The ciphertext in the log
then stays what it is, unreadable by anyone, and the mapper reads such an
event as *redacted*. Each erasure bumps ``key_epoch``; every process compares
the epoch before it trusts its cached keys, and writers compare it inside the
transaction that writes, so no write sealed with a destroyed key can land.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Cipher, IntegrityError
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from mnemolog.adapters.log import Log
from mnemolog.projections.sql import DbCursor, compile_sql

NONCE = 12
READ_CACHE = 65_536
"""Unwrapped stream keys kept per process (a key is 32 bytes)."""

metadata_obj = MetaData()

subject_keys = Table(
    "subject_keys",
    metadata_obj,
    Column("kek_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("material", LargeBinary, nullable=False),
    Column("created", BigInteger, nullable=False),
    UniqueConstraint("tenant", "subject", name="uq_subject_keys"),
)

stream_keys = Table(
    "stream_keys",
    metadata_obj,
    Column("key_id", String(32), primary_key=True),
    Column("stream_id", String(32), nullable=False),
    Column("kek_id", String(32), nullable=False),
    Column("material", LargeBinary, nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ix_stream_keys_stream", "stream_id", "created"),
    Index("ix_stream_keys_kek", "kek_id"),
)

key_epoch = Table(
    "key_epoch",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("epoch", BigInteger, nullable=False),
)

erased_streams = Table(
    "erased_streams",
    metadata_obj,
    Column("stream_id", String(32), primary_key=True),
    Column("erasure_id", String(32), nullable=False),
    Column("erasure_digest", String(64), nullable=False),
)
"""Every stream an erasure covered, with the digest of the Erased event that
did (verify checks it): events of such a stream that are not sealed (written
before sealing existed) read as erased too."""

TABLES = (subject_keys, stream_keys, key_epoch, erased_streams)


class KeysChanged(IntegrityError):
    """An erasure destroyed keys after this write was sealed; nothing was
    written. Writers retry on the new state (it is a lost race)."""


@dataclass(frozen=True)
class ErasurePlan:
    """What one erasure destroys: one stream's keys, a subject's, or a tenant's."""

    tenant: str
    scope: str
    subject: str | None = None
    stream: UUID | None = None
    streams: tuple[str, ...] = ()
    """The stream ids (hex) found when planned; checked again when done."""
    keys: int = 0
    """How many stream keys were found when planned."""
    erasure_id: str = ""
    erasure_digest: str = ""
    """The Erased event's id and digest, recorded beside the streams."""


def _now() -> int:
    return time.time_ns() // 1000


class Keyring:
    """Creates, caches, unwraps and destroys the keys of one store."""

    def __init__(self, log: Log, cipher: Cipher | None = None) -> None:
        self._log = log
        self._cipher = cipher
        """The store's cipher at rest, if any: subject keys are kept wrapped."""
        dialect = log.sql_dialect
        self._dialect = dialect
        self._lock = threading.Lock()
        self._local = threading.local()
        self._subjects: dict[tuple[str, str], tuple[str, AESGCM]] = {}
        self._writing: dict[UUID, tuple[str, AESGCM]] = {}
        self._reading: dict[str, AESGCM] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._erased: frozenset[str] | None = None
        self.on_erasure: list[Callable[[], None]] = []
        """Called when this process learns of an erasure (to drop caches)."""
        upsert: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert
        self._insert_subject = upsert(subject_keys).on_conflict_do_nothing()
        self._insert_erased = compile_sql(
            upsert(erased_streams).on_conflict_do_nothing(), dialect
        )
        self._insert_stream = compile_sql(
            upsert(stream_keys).on_conflict_do_nothing(), dialect
        )
        self._select_epoch = compile_sql(select(key_epoch.c.epoch), dialect)
        self._bump_epoch = (
            "INSERT INTO key_epoch (id, epoch) VALUES (1, 1) "
            "ON CONFLICT (id) DO UPDATE SET epoch = key_epoch.epoch + 1"
        )
        self.epoch = self._read_epoch()

    # ---- sealing -------------------------------------------------------------

    def seal(
        self,
        stream: UUID,
        tenant: str | None,
        subject: str | None,
        plaintext: bytes,
        *,
        fresh: bool,
    ) -> dict[str, str]:
        """The sealed form of a stream's personal fields: the stream key's id
        and base64 of nonce + ciphertext. ``fresh`` (a stream's first event,
        or its first after an erasure) takes a new stream key."""
        key_id, aead = self._key_for_writing(stream, tenant, subject, fresh=fresh)
        nonce = os.urandom(NONCE)
        data = nonce + aead.encrypt(nonce, plaintext, stream.bytes)
        return {"key": key_id, "data": base64.b64encode(data).decode("ascii")}

    def unseal(self, stream: UUID, sealed: dict[str, Any]) -> bytes | None:
        """The plaintext of a sealed part, or None when its key was destroyed.

        A part altered in the log fails its authentication tag: ValueError.
        """
        key_id = sealed["key"]
        aead = self._reading.get(key_id) or self._load_stream_key(key_id)
        if aead is None:
            return None
        data = base64.b64decode(sealed["data"])
        try:
            return aead.decrypt(data[:NONCE], data[NONCE:], stream.bytes)
        except InvalidTag:
            msg = f"sealed data of stream {stream} fails authentication: altered"
            raise ValueError(msg) from None

    def _key_for_writing(
        self, stream: UUID, tenant: str | None, subject: str | None, *, fresh: bool
    ) -> tuple[str, AESGCM]:
        self._local.epoch = self.epoch
        if not fresh:
            cached = self._writing.get(stream)
            if cached is not None:
                return cached
            found = self._latest_stream_key(stream)
            if found is not None:
                return found
        if tenant is None:  # a stream written before sealing: the tenant's key
            tenant = self._tenant_of(stream)
        kek_id, kek = self._subject_key(tenant, subject or "")
        key_id = uuid4().hex
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE)
        wrapped = nonce + kek.encrypt(nonce, dek, key_id.encode())
        aead = AESGCM(dek)
        with self._lock:
            self._pending[key_id] = {
                "key_id": key_id,
                "stream_id": stream.hex,
                "kek_id": kek_id,
                "material": wrapped,
                "created": _now(),
            }
            self._writing[stream] = (key_id, aead)
            self._remember(key_id, aead)
        return key_id, aead

    def _tenant_of(self, stream: UUID) -> str:
        row = self._log.fetch_one(
            "SELECT tenant FROM memories WHERE id = ? "
            "UNION ALL SELECT tenant FROM sessions WHERE id = ?",
            (stream.hex, stream.hex),
        )
        if row is None:
            msg = f"stream {stream} has no key and no tenant in the read models"
            raise LookupError(msg)
        return str(row[0])

    def _latest_stream_key(self, stream: UUID) -> tuple[str, AESGCM] | None:
        epoch = self.epoch
        row = self._log.fetch_one(
            "SELECT s.key_id, s.material, k.material FROM stream_keys AS s "
            "JOIN subject_keys AS k ON k.kek_id = s.kek_id "
            "WHERE s.stream_id = ? ORDER BY s.created DESC LIMIT 1",
            (stream.hex,),
        )
        if row is None:
            return None
        key_id, wrapped, kek = row
        aead = _unwrap(self._unwrap_subject(bytes(kek)), bytes(wrapped), key_id)
        with self._lock:
            if self.epoch == epoch:  # not read across an erasure: cache it
                self._writing[stream] = (key_id, aead)
                self._remember(key_id, aead)
        return key_id, aead

    def _load_stream_key(self, key_id: str) -> AESGCM | None:
        epoch = self.epoch
        row = self._log.fetch_one(
            "SELECT s.material, k.material FROM stream_keys AS s "
            "JOIN subject_keys AS k ON k.kek_id = s.kek_id WHERE s.key_id = ?",
            (key_id,),
        )
        if row is None:
            return None
        aead = _unwrap(self._unwrap_subject(bytes(row[1])), bytes(row[0]), key_id)
        with self._lock:
            if self.epoch == epoch:
                self._remember(key_id, aead)
        return aead

    def _wrap(self, material: bytes) -> bytes:
        return self._cipher.encrypt(material) if self._cipher is not None else material

    def _unwrap_subject(self, stored: bytes) -> bytes:
        """A subject key as stored: raw (32 bytes) or wrapped by the cipher at
        rest (a store encrypted after its first keys were made has both)."""
        if self._cipher is None or len(stored) == 32:
            return stored
        return bytes(self._cipher.decrypt(stored))

    def _remember(self, key_id: str, aead: AESGCM) -> None:
        if len(self._reading) >= READ_CACHE:
            self._reading.clear()
        self._reading[key_id] = aead

    def _subject_key(self, tenant: str, subject: str) -> tuple[str, AESGCM]:
        """The subject's key, created (in its own transaction, once, whichever
        process gets there first) when it has none."""
        cached = self._subjects.get((tenant, subject))
        if cached is not None:
            return cached
        query = (
            "SELECT kek_id, material FROM subject_keys WHERE tenant = ? AND subject = ?"
        )
        row = self._log.fetch_one(query, (tenant, subject))
        if row is None:
            statement = compile_sql(self._insert_subject, self._dialect)
            with self._log.write_transaction() as cursor:
                cursor.execute(
                    statement,
                    {
                        "kek_id": uuid4().hex,
                        "tenant": tenant,
                        "subject": subject,
                        "material": self._wrap(AESGCM.generate_key(bit_length=256)),
                        "created": _now(),
                    },
                )
            row = self._log.fetch_one(query, (tenant, subject))
            assert row is not None
        found = (str(row[0]), AESGCM(self._unwrap_subject(bytes(row[1]))))
        with self._lock:
            self._subjects[(tenant, subject)] = found
        return found

    # ---- inside the writing transaction --------------------------------------

    def before_insert(self, cursor: DbCursor) -> list[dict[str, Any]]:
        """Checks that no erasure came between sealing and this transaction,
        and writes the stream keys made since the last commit; returns them,
        for :meth:`committed` once the transaction is."""
        expected = getattr(self._local, "epoch", None)
        self._local.epoch = None
        if expected is not None:
            cursor.execute(self._select_epoch)
            row = cursor.fetchone()
            self._check_epoch(int(row[0]) if row else 0, expected)
        return self.write_pending(cursor)

    def write_pending(self, cursor: DbCursor) -> list[dict[str, Any]]:
        """Writes the stream keys made since the last commit."""
        with self._lock:
            rows = list(self._pending.values())
        # One statement a row (usually one).
        for row in rows:
            cursor.execute(self._insert_stream, row)
        return rows

    def _check_epoch(self, epoch: int, expected: int) -> None:
        if epoch != expected:
            self.forget(epoch)
            msg = "keys were erased while this write was sealed; retry"
            raise KeysChanged(msg)

    def committed(self, rows: Sequence[dict[str, Any]]) -> None:
        """The stream keys in ``rows`` are durable."""
        with self._lock:
            for row in rows:
                self._pending.pop(row["key_id"], None)

    # ---- erasure ---------------------------------------------------------------

    def plan(
        self,
        tenant: str,
        scope: str,
        *,
        subject: str | None = None,
        stream: UUID | None = None,
    ) -> ErasurePlan:
        """What an erasure would destroy now."""
        plan = ErasurePlan(tenant, scope, subject, stream)
        streams, keys = self._found(plan, self._log.fetch_all)
        return ErasurePlan(tenant, scope, subject, stream, streams, len(keys))

    def _found(
        self, plan: ErasurePlan, fetch: Callable[[str, Any], list[Any]]
    ) -> tuple[tuple[str, ...], list[str]]:
        """The streams and the stream keys an erasure covers (a tenant's
        streams written before sealing too: they have no key)."""
        rows = fetch(*self._keys_query(plan))
        keys = [str(r[0]) for r in rows]
        if plan.scope == "memory":
            assert plan.stream is not None
            return (plan.stream.hex,), keys
        streams = {str(r[1]) for r in rows}
        if plan.scope == "tenant":
            streams.update(
                str(r[0])
                for r in fetch(
                    "SELECT id FROM memories WHERE tenant = ? "
                    "UNION SELECT id FROM sessions WHERE tenant = ?",
                    (plan.tenant, plan.tenant),
                )
            )
        return tuple(sorted(streams)), keys

    def _keys_query(self, plan: ErasurePlan) -> tuple[str, tuple[Any, ...]]:
        if plan.scope == "memory":
            assert plan.stream is not None
            return (
                "SELECT key_id, stream_id FROM stream_keys WHERE stream_id = ?",
                (plan.stream.hex,),
            )
        where = "k.tenant = ?"
        params: tuple[Any, ...] = (plan.tenant,)
        if plan.scope == "subject":
            where += " AND k.subject = ?"
            params += (plan.subject or "",)
        return (
            "SELECT s.key_id, s.stream_id FROM stream_keys AS s "
            f"JOIN subject_keys AS k ON k.kek_id = s.kek_id WHERE {where}",
            params,
        )

    def destroy(self, cursor: DbCursor, plan: ErasurePlan, placeholder: str) -> int:
        """Inside the erasure's transaction: deletes the planned keys and bumps
        the epoch; returns how many stream keys were destroyed. Raises
        KeysChanged (the erasure is planned again) when a stream joined the
        subject since it was planned."""

        def fetch(sql: str, params: Any) -> list[Any]:
            cursor.execute(sql.replace("?", placeholder), params)
            return list(cursor.fetchall())

        streams, key_ids = self._found(plan, fetch)
        if streams != plan.streams or len(key_ids) != plan.keys:
            msg = "the streams changed while the erasure was planned"
            raise KeysChanged(msg)
        forget_key = compile_sql(
            delete(stream_keys).where(stream_keys.c.key_id == bindparam("k")),
            self._dialect,
        )
        for key_id in key_ids:
            cursor.execute(forget_key, {"k": key_id})
        if plan.scope != "memory":
            condition = subject_keys.c.tenant == bindparam("tenant")
            values: dict[str, Any] = {"tenant": plan.tenant}
            if plan.scope == "subject":
                condition &= subject_keys.c.subject == bindparam("subject")
                values["subject"] = plan.subject or ""
            cursor.execute(
                compile_sql(delete(subject_keys).where(condition), self._dialect),
                values,
            )
        self.record(cursor, [(plan.erasure_id, plan.erasure_digest, plan.streams)])
        cursor.execute(self._bump_epoch)
        return len(key_ids)

    def record(
        self, cursor: DbCursor, erasures: Sequence[tuple[str, str, Sequence[str]]]
    ) -> None:
        """Records (erasure id, Erased event's digest, streams) beside the log:
        in the erasure's transaction, or an import's that copies one."""
        for erasure_id, digest, streams in erasures:
            for stream in streams:
                cursor.execute(
                    self._insert_erased,
                    {
                        "stream_id": stream,
                        "erasure_id": erasure_id,
                        "erasure_digest": digest,
                    },
                )

    def is_erased(self, stream: UUID) -> bool:
        """True when an erasure covered the stream."""
        erased = self._erased
        if erased is None:
            rows = self._log.fetch_all("SELECT stream_id FROM erased_streams", ())
            erased = self._erased = frozenset(str(r[0]) for r in rows)
        return stream.hex in erased

    # ---- caches ----------------------------------------------------------------

    def sync(self) -> None:
        """Drops cached keys if another process erased since they were read."""
        epoch = self._read_epoch()
        if epoch != self.epoch:
            self.forget(epoch)

    def forget(self, epoch: int | None = None) -> None:
        """Drops every cached key (after an erasure, here or elsewhere)."""
        with self._lock:
            self._subjects.clear()
            self._writing.clear()
            self._reading.clear()
            self._erased = None
            self.epoch = self._read_epoch() if epoch is None else epoch
        for hook in self.on_erasure:
            hook()

    def _read_epoch(self) -> int:
        row = self._log.fetch_one("SELECT epoch FROM key_epoch", ())
        return int(row[0]) if row is not None else 0


def _unwrap(kek: bytes, wrapped: bytes, key_id: str) -> AESGCM:
    dek = AESGCM(kek).decrypt(wrapped[:NONCE], wrapped[NONCE:], key_id.encode())
    return AESGCM(dek)
