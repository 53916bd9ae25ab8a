"""Checks of query arguments: each refuses bad input with the field and the rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mnemolog.domain.errors import ValidationError
from mnemolog.domain.values import check_metadata, check_tags, check_text
from mnemolog.projections.current_state import ORDER_COLUMNS, MetaCondition

WHERE_OPERATORS = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists"}
)
_OPERATOR_LIST = ", ".join(sorted(WHERE_OPERATORS))


def aware(moment: object, field: str) -> datetime:
    if not isinstance(moment, datetime):
        raise ValidationError(field, "must be a datetime")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(field, "must be timezone-aware (for example UTC)")
    return moment


def bounded_int(value: object, field: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ValidationError(field, f"must be an integer in [{low}, {high}]")
    return value


def order_by_rule(order_by: object) -> str:
    if not isinstance(order_by, str) or order_by.lstrip("-") not in ORDER_COLUMNS:
        names = ", ".join(sorted(ORDER_COLUMNS))
        raise ValidationError(
            "order_by", f"must be one of {names}, optionally with '-'"
        )
    return order_by


def tag_filter(tags: Iterable[str] | None, field: str) -> tuple[str, ...]:
    if tags is None:
        return ()
    try:
        checked = check_tags(tags)
    except ValidationError as e:
        raise ValidationError(field, e.rule) from None
    if not checked:
        raise ValidationError(field, "must name at least one tag (or be None)")
    return checked


def where_conditions(where: Mapping[str, Any] | None) -> tuple[MetaCondition, ...]:
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise ValidationError(
            "where", "must be a mapping of metadata path to condition"
        )
    conditions = []
    for path, condition in where.items():
        if not isinstance(path, str) or not path or len(path) > 512:
            raise ValidationError("where", "paths must be strings of 1-512 characters")
        check_text(path, "where")
        field = f"where.{path}"
        if (
            isinstance(condition, Mapping)
            and condition
            and all(isinstance(k, str) and k.startswith("$") for k in condition)
        ):
            for op, operand in condition.items():
                conditions.append(_condition(field, path, op, operand))
        else:
            conditions.append(_condition(field, path, "$eq", condition))
    return tuple(conditions)


def _condition(field: str, path: str, op: str, operand: Any) -> MetaCondition:
    """meta_condition, its errors named after the where path."""
    try:
        return meta_condition(field, path, op, operand)
    except ValidationError as e:
        if e.field.startswith("where"):
            raise
        raise ValidationError(field, e.rule) from None


def meta_condition(field: str, path: str, op: str, operand: Any) -> MetaCondition:
    if not isinstance(op, str) or op not in WHERE_OPERATORS:
        raise ValidationError(
            field,
            f"unknown operator {op!r}; use one of {', '.join(sorted(WHERE_OPERATORS))}",
        )
    if op == "$exists":
        if not isinstance(operand, bool):
            raise ValidationError(field, "$exists takes true or false")
        return MetaCondition(path, op, operand)
    if op == "$in":
        if (
            not isinstance(operand, list | tuple | set | frozenset)
            or len(operand) > 1000
        ):
            raise ValidationError(field, "$in takes a list of at most 1000 values")
        return MetaCondition(
            path, op, tuple(check_metadata({"v": v})["v"] for v in operand)
        )
    if op in ("$eq", "$ne"):
        return MetaCondition(path, op, check_metadata({"v": operand})["v"])
    if isinstance(operand, bool) or not isinstance(operand, int | float | str):
        raise ValidationError(field, f"{op} takes a number or a string")
    checked = check_metadata({"v": operand})["v"]
    return MetaCondition(path, op, checked)
