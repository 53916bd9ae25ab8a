"""Value objects of the memory model and the rules that guard them.

Every rule raises :class:`ValidationError` naming the field and the rule, so a
caller learns what to change before anything is written.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from mnemolog.domain.errors import ValidationError

JSON = Any
"""A JSON-native value: dict, list, str, int, float, bool or None."""

KNOWN_ROOTS = frozenset({"temp", "session", "user", "app", "project"})
KNOWN_MEMORY_TYPES = frozenset({"semantic", "episodic", "procedural", "working"})

MAX_KEY_LENGTH = 1024
MAX_NAMESPACE_LENGTH = 512
MAX_TAGS = 64
MAX_TAG_LENGTH = 128
MAX_DEPTH = 64
MAX_INT = 2**63 - 1
MIN_INT = -(2**63)

_SEGMENT = re.compile(r"[A-Za-z0-9_.@+=-]{1,128}")
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters

# Tags that mark the wire form of values; see encode_value.
_BYTES_TAG = "$bytes"
_DICT_TAG = "$dict"
_RESERVED = frozenset({_BYTES_TAG, _DICT_TAG})


def canonical_json(obj: JSON) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def encode_value(value: Any, *, field: str = "value") -> JSON:
    """Checks a caller's value and returns its JSON wire form.

    ``bytes`` become ``{"$bytes": base64}``. A caller's own dict whose only key
    is one of the two tags is wrapped as ``{"$dict": {...}}``, so every value
    decodes back to exactly what was given.
    """
    return _encode(value, field, 0, plain=False)


def _encode(value: Any, path: str, depth: int, *, plain: bool) -> JSON:
    if depth > MAX_DEPTH:
        raise ValidationError(path, f"nesting deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise ValidationError(path, "integers must fit in 64 bits (signed)")
        return int(value)  # an IntEnum or other subclass is stored as its number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "numbers must be finite (no NaN or infinity)")
        return float(value)  # numpy.float64 and other subclasses become plain floats
    if isinstance(value, str):
        _check_text(value, path)
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        if plain:
            raise ValidationError(path, "must hold JSON values only, not bytes")
        return {_BYTES_TAG: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        encoded: dict[str, JSON] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(path, "object keys must be strings")
            _check_text(k, f"{path} key")
            k = str(k)
            encoded[k] = _encode(v, f"{path}.{k}", depth + 1, plain=plain)
        if not plain and len(encoded) == 1 and next(iter(encoded)) in _RESERVED:
            return {_DICT_TAG: encoded}
        return encoded
    if isinstance(value, list | tuple):
        return [
            _encode(v, f"{path}[{i}]", depth + 1, plain=plain)
            for i, v in enumerate(value)
        ]
    raise ValidationError(
        path, f"{type(value).__name__} is not a JSON value (or bytes)"
    )


def decode_value(wire: JSON) -> Any:
    """Turns the wire form back into the caller's value."""
    if isinstance(wire, dict):
        if len(wire) == 1:
            ((k, v),) = wire.items()
            if k == _BYTES_TAG:
                return base64.b64decode(v)
            if k == _DICT_TAG:
                return {ik: decode_value(iv) for ik, iv in v.items()}
        return {k: decode_value(v) for k, v in wire.items()}
    if isinstance(wire, list):
        return [decode_value(v) for v in wire]
    return wire


def check_text(text: str, field: str) -> None:
    """Refuses text that is not valid Unicode (a lone surrogate)."""
    _check_text(text, field)


def _check_text(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field, "text must be valid Unicode (no lone surrogates)"
        ) from None


def content_hash(wire: JSON) -> str:
    """SHA-256 of the canonical JSON of a value's wire form."""
    return sha256_hex(canonical_json(wire))


@dataclass(frozen=True, slots=True)
class Namespace:
    """A hierarchical namespace written ``root:seg:seg``."""

    segments: tuple[str, ...]

    @classmethod
    def parse(
        cls,
        text: object,
        *,
        extra_roots: Iterable[str] = (),
        field: str = "namespace",
        allow_root_only: bool = False,
    ) -> Namespace:
        """Checks the grammar and the root; ``allow_root_only`` is for prefixes."""
        if not isinstance(text, str):
            raise ValidationError(field, "must be a string like 'user:alice'")
        if not text or len(text) > MAX_NAMESPACE_LENGTH:
            raise ValidationError(
                field, f"must be 1 to {MAX_NAMESPACE_LENGTH} characters"
            )
        segments = tuple(text.split(":"))
        for segment in segments:
            if not _SEGMENT.fullmatch(segment):
                raise ValidationError(
                    field,
                    f"segment {segment!r} must be 1-128 of letters, digits and _.@+=-"
                    " (segments are separated by ':')",
                )
        root = segments[0]
        if root not in KNOWN_ROOTS and root not in set(extra_roots):
            roots = ", ".join(sorted(KNOWN_ROOTS | set(extra_roots)))
            raise ValidationError(field, f"root {root!r} is not one of: {roots}")
        if len(segments) < 2 and not allow_root_only:
            raise ValidationError(
                field, "needs a root and at least one segment, like 'user:alice'"
            )
        return cls(segments)

    @property
    def root(self) -> str:
        """The first segment."""
        return self.segments[0]

    def __str__(self) -> str:
        return ":".join(self.segments)

    def is_within(self, prefix: Namespace) -> bool:
        """True if ``prefix`` names this namespace or an ancestor, on whole segments."""
        return self.segments[: len(prefix.segments)] == prefix.segments


def check_tenant(tenant: object) -> str:
    """A tenant id: 1-64 of letters, digits and ``_.-``."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise ValidationError("tenant", "must be 1-64 of letters, digits and _.-")
    return tenant


def check_key(key: object) -> str:
    """A key: any text of 1 to 1024 characters without control characters."""
    if not isinstance(key, str) or not key:
        raise ValidationError("key", "must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError("key", f"must be at most {MAX_KEY_LENGTH} characters")
    if _CONTROL.search(key):
        raise ValidationError("key", "must not contain control characters")
    _check_text(key, "key")
    return key


def check_tags(tags: object) -> tuple[str, ...]:
    """Tags: a set of short strings, returned sorted and unique."""
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise ValidationError("tags", "must be a list or set of strings")
    unique = set()
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(
                "tags", f"each tag must be a string of 1-{MAX_TAG_LENGTH} characters"
            )
        if _CONTROL.search(tag):
            raise ValidationError("tags", "tags must not contain control characters")
        _check_text(tag, "tags")
        unique.add(tag)
    if len(unique) > MAX_TAGS:
        raise ValidationError("tags", f"at most {MAX_TAGS} tags")
    return tuple(sorted(unique))


def check_metadata(metadata: object) -> dict[str, JSON]:
    """Metadata: a JSON object of JSON values (no bytes), returned as a copy."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata", "must be a JSON object (a dict)")
    plain = _encode(metadata, "metadata", 0, plain=True)
    assert isinstance(plain, dict)
    _check_metadata_keys(plain, "metadata")
    return plain


MAX_METADATA_PATH = 512
"""Characters of a metadata path (``a.b.c``), as queries address it."""


def _check_metadata_keys(obj: Mapping[str, JSON], path: str) -> None:
    # Queries address nested keys as "a.b", so a key may not hold a dot itself.
    for key, value in obj.items():
        if not key or "." in key:
            raise ValidationError(
                f"{path}.{key}",
                "metadata keys must be non-empty and hold no '.': nest objects "
                "instead ({'a': {'b': 1}} is queried as 'a.b')",
            )
        full = f"{path}.{key}"
        if len(full) - len("metadata.") > MAX_METADATA_PATH:
            raise ValidationError(
                full[:80] + "...",
                f"metadata paths (a.b.c) are at most {MAX_METADATA_PATH} characters",
            )
        if isinstance(value, Mapping):
            _check_metadata_keys(value, f"{path}.{key}")


def check_memory_type(memory_type: object, *, extra_types: Iterable[str] = ()) -> str:
    """One of the known memory types or a configured extra."""
    allowed = KNOWN_MEMORY_TYPES | set(extra_types)
    if not isinstance(memory_type, str) or memory_type not in allowed:
        raise ValidationError(
            "memory_type", f"must be one of: {', '.join(sorted(allowed))}"
        )
    return memory_type


def check_unit_interval(value: object, field: str) -> float:
    """A number in [0, 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, int) and not 0 <= value <= 1)  # 10**400: no float
    ):
        raise ValidationError(field, "must be a number in [0, 1]")
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValidationError(field, "must be a number in [0, 1]")
    return number


def check_subject(value: object) -> str | None:
    """A data subject's id: None, or 1 to 256 characters without controls."""
    if value is None:
        return None
    if isinstance(value, str) and not value:
        raise ValidationError("subject", "must not be empty (None: the tenant's)")
    return check_optional_text(value, "subject")


def check_optional_text(
    value: object, field: str, *, max_length: int = 256
) -> str | None:
    """Provenance text: None or a short string without control characters."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise ValidationError(field, f"must be a string of at most {max_length} chars")
    if _CONTROL.search(value):
        raise ValidationError(field, "must not contain control characters")
    _check_text(value, field)
    return value
