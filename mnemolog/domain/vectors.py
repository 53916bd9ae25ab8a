"""Embeddings as values: checked, normalised for cosine, and stored as float32
bytes (base64 inside the event), never as JSON floats."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mnemolog.domain.errors import ValidationError
from mnemolog.domain.values import JSON, decode_value

Vector = npt.NDArray[np.float32]

MAX_DIMS = 65_536
WHOLE_VALUE = "$"
"""The field path that means the whole value."""


def check_vector(vector: object, dims: int, field: str = "embedding") -> Vector:
    """A caller's vector of ``dims`` finite numbers with a direction, as the
    float32 unit vector pointing the same way (similarity is cosine, so only
    the direction counts; it is normalised in float64, so no length that is
    finite underflows or overflows)."""
    if (
        isinstance(vector, np.ndarray)
        and vector.dtype == np.float32
        and vector.shape == (dims,)
    ):
        # The common case (an embedder's output), on a short path: float32
        # squares cannot overflow float64, so a finite sum means finite entries.
        as64 = vector.astype(np.float64)
        total = float(as64 @ as64)
        if 0.0 < total < float("inf"):
            fast: Vector = (as64 / np.sqrt(total)).astype(np.float32)
            return fast
    if isinstance(vector, str | bytes | bytearray | memoryview) or vector is None:
        raise ValidationError(field, "must be a sequence of numbers")
    try:
        array = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(field, "must be a sequence of numbers") from None
    if array.ndim != 1:
        raise ValidationError(field, f"must be one-dimensional, not {array.ndim}-D")
    if array.shape[0] != dims:
        raise ValidationError(
            field, f"must have {dims} dimensions (the index's), not {array.shape[0]}"
        )
    if not np.isfinite(array).all():
        raise ValidationError(field, "must hold finite numbers (no NaN or infinity)")
    unit = unit_vector(array)
    if unit is None:
        raise ValidationError(field, "must not be all zeros (it has no direction)")
    return unit


def unit_vector(array: npt.NDArray[Any]) -> Vector | None:
    """The float32 unit vector in the direction of ``array``, or None if it
    has none (all zeros). Scaled first, so huge and tiny lengths are exact."""
    as64 = np.asarray(array, dtype=np.float64)
    peak = float(np.max(np.abs(as64))) if as64.size else 0.0
    if peak == 0.0 or not np.isfinite(peak):
        return None
    scaled = as64 / peak
    norm = float(np.linalg.norm(scaled))
    unit = (scaled / norm).astype(np.float32)
    if not unit.any():  # pragma: no cover - a scaled vector has a 1.0 in it
        return None
    return unit


def encode_vector(vector: Vector) -> str:
    """Base64 of the little-endian float32 bytes: the form events carry."""
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


def decode_vector(encoded: str) -> Vector:
    """The inverse of :func:`encode_vector`."""
    return np.frombuffer(base64.b64decode(encoded), dtype="<f4").astype(np.float32)


def check_fields(fields: object) -> tuple[str, ...] | None:
    """Paths into values whose text is embedded: ``"$"`` or dotted keys."""
    if fields is None:
        return None
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        raise ValidationError("embed_fields", "must be a list of field paths")
    checked = []
    for path in fields:
        if not isinstance(path, str) or not path or path.startswith("."):
            raise ValidationError("embed_fields", f"{path!r} is not a field path")
        if path != WHOLE_VALUE and any(not part for part in path.split(".")):
            raise ValidationError("embed_fields", f"{path!r} has an empty segment")
        checked.append(path)
    if not checked:
        raise ValidationError("embed_fields", "must name at least one field")
    return tuple(checked)


def text_leaves(value: Any) -> Iterator[str]:
    """The strings of a decoded value, depth first: a string, or the string
    leaves of objects and lists (keys, numbers and bytes are not text)."""
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from text_leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from text_leaves(item)


def text_of(wire: JSON, fields: tuple[str, ...] | None = None) -> str:
    """The text of a stored value (its wire form), from the given fields or the
    whole value; empty when it holds none."""
    value = decode_value(wire)
    if fields is None:
        return "\n".join(text_leaves(value))
    parts: list[str] = []
    for path in fields:
        if path == WHOLE_VALUE:
            parts.extend(text_leaves(value))
            continue
        found: Any = value
        for segment in path.split("."):
            if not isinstance(found, dict) or segment not in found:
                found = None
                break
            found = found[segment]
        parts.extend(text_leaves(found))
    return "\n".join(parts)
