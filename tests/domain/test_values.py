"""The value rules of mnemolog.domain.values, and the wire form of values."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemolog.domain.errors import MnemologError, ValidationError
from mnemolog.domain.values import (
    KNOWN_MEMORY_TYPES,
    KNOWN_ROOTS,
    MAX_INT,
    MIN_INT,
    Namespace,
    canonical_json,
    check_key,
    check_memory_type,
    check_metadata,
    check_optional_text,
    check_tags,
    check_tenant,
    check_unit_interval,
    content_hash,
    decode_value,
    encode_value,
)


def refused(field: str, call: Callable[..., Any], /, *args: Any, **kwargs: Any) -> str:
    """Asserts the call raises ValidationError naming ``field``; returns the message."""
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MnemologError)
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    return error.rule


def refused_prefix(field: str, call: Callable[..., Any], /, *args: Any) -> str:
    """Like refused(), for errors whose field is a path under ``field``."""
    with pytest.raises(ValidationError) as info:
        call(*args)
    assert isinstance(info.value, ValueError)
    assert info.value.field.startswith(field)
    return info.value.rule


def nested(depth: int) -> Any:
    """A value whose innermost scalar sits ``depth`` containers below the top."""
    value: Any = 0
    for i in range(depth):
        value = {"d": value} if i % 2 else [value]
    return value


def strictly_equal(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1, 1 from 1.0, 0.0 from -0.0, [] from ()."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return bool(a == b)


def namespace_of_length(length: int) -> str:
    """A valid ``user:...`` namespace of exactly ``length`` characters."""
    text = "user"
    while len(text) < length:
        room = length - len(text) - 1
        assert room >= 1
        text += ":" + "a" * min(room, 128)
    assert len(text) == length
    return text


# ---- the error type ----------------------------------------------------------


def test_validation_error_is_a_value_error_naming_field_and_rule() -> None:
    error = ValidationError("key", "must be short")
    assert isinstance(error, ValueError)
    assert isinstance(error, MnemologError)
    assert (error.field, error.rule) == ("key", "must be short")
    assert str(error) == "key: must be short"


# ---- Namespace ---------------------------------------------------------------


@pytest.mark.parametrize("root", sorted(KNOWN_ROOTS))
def test_each_known_root_is_accepted(root: str) -> None:
    namespace = Namespace.parse(f"{root}:x")
    assert namespace.segments == (root, "x")
    assert namespace.root == root


def test_known_roots_are_the_five_documented_ones() -> None:
    assert {"temp", "session", "user", "app", "project"} == KNOWN_ROOTS


@pytest.mark.parametrize(
    "text",
    [
        "user:alice",
        "user:alice:preferences:ui",
        "project:Repo_1.2@main+x=y-z",
        "app:" + "a" * 128,
    ],
)
def test_valid_namespace_parses_and_prints_back(text: str) -> None:
    namespace = Namespace.parse(text)
    assert str(namespace) == text
    assert namespace.segments == tuple(text.split(":"))


def test_unknown_root_is_refused() -> None:
    rule = refused("namespace", Namespace.parse, "org:acme")
    assert "'org'" in rule


def test_extra_root_is_accepted_when_configured() -> None:
    assert Namespace.parse("org:acme", extra_roots=["org"]).root == "org"


def test_extra_roots_do_not_replace_the_known_ones() -> None:
    assert Namespace.parse("user:alice", extra_roots=["org"]).root == "user"


def test_extra_root_of_one_call_is_not_remembered() -> None:
    Namespace.parse("org:acme", extra_roots=["org"])
    refused("namespace", Namespace.parse, "org:acme")


@pytest.mark.parametrize(
    "text",
    [
        "user:",
        ":alice",
        "user::alice",
        "user:alice:",
        "user:al ice",
        "user:al/ice",
        "user:al#ice",
        "user:al\nice",
        "user:alice\n",
        "user:\u00e9",
        "user:" + "a" * 129,
        "User:alice",
    ],
)
def test_namespace_with_bad_segment_or_root_is_refused(text: str) -> None:
    refused("namespace", Namespace.parse, text)


def test_root_only_namespace_is_refused_by_default() -> None:
    rule = refused("namespace", Namespace.parse, "user")
    assert "at least one segment" in rule


def test_root_only_namespace_is_accepted_as_a_prefix() -> None:
    prefix = Namespace.parse("user", allow_root_only=True)
    assert prefix.segments == ("user",)


def test_root_only_prefix_still_needs_a_known_root() -> None:
    refused("namespace", Namespace.parse, "org", allow_root_only=True)


def test_namespace_of_max_length_is_accepted() -> None:
    text = namespace_of_length(512)
    assert str(Namespace.parse(text)) == text


def test_namespace_one_over_max_length_is_refused() -> None:
    refused("namespace", Namespace.parse, namespace_of_length(513))


def test_empty_namespace_is_refused() -> None:
    refused("namespace", Namespace.parse, "")


@pytest.mark.parametrize("text", [None, 5, b"user:alice", ["user", "alice"]])
def test_non_string_namespace_is_refused(text: object) -> None:
    refused("namespace", Namespace.parse, text)


def test_namespace_error_names_the_given_field() -> None:
    refused("prefix", Namespace.parse, "nope:x", field="prefix")


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        ("user:alice", "user:alice", True),
        ("user:alice:prefs", "user:alice", True),
        ("user:alice", "user", True),
        ("user:alice", "user:al", False),
        ("user:alice", "user:alice:prefs", False),
        ("user:alice", "app", False),
        ("user:al:ice", "user:alice", False),
        ("user:alice", "user:bob", False),
    ],
)
def test_is_within_compares_whole_segments(
    name: str, prefix: str, expected: bool
) -> None:
    namespace = Namespace.parse(name)
    parsed_prefix = Namespace.parse(prefix, allow_root_only=True)
    assert namespace.is_within(parsed_prefix) is expected


# ---- tenant ------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["acme", "a", "A-b_c.9", "t" * 64])
def test_valid_tenant_is_returned(tenant: str) -> None:
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize(
    "tenant",
    ["", "t" * 65, "a b", "a:b", "a/b", "\u00e9", "acme\n", None, 5, b"acme"],
)
def test_bad_tenant_is_refused(tenant: object) -> None:
    refused("tenant", check_tenant, tenant)


# ---- key ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["k", "with spaces: slashes/ and \u2713 unicode", "k" * 1024]
)
def test_valid_key_is_returned(key: str) -> None:
    assert check_key(key) == key


def test_empty_key_is_refused() -> None:
    refused("key", check_key, "")


def test_key_over_1024_characters_is_refused() -> None:
    refused("key", check_key, "k" * 1025)


@pytest.mark.parametrize("key", [None, 5, b"key", ["key"]])
def test_non_string_key_is_refused(key: object) -> None:
    refused("key", check_key, key)


def test_key_with_nul_is_refused() -> None:
    refused("key", check_key, "a\x00b")


@pytest.mark.parametrize("char", ["\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"])
def test_key_with_control_character_is_refused(char: str) -> None:
    refused("key", check_key, f"a{char}b")


def test_key_with_lone_surrogate_is_refused() -> None:
    rule = refused("key", check_key, "a\ud800b")
    assert "surrogate" in rule


@pytest.mark.parametrize(
    ("field", "check"),
    [
        ("key", check_key),
        ("tags", lambda text: check_tags([text])),
        ("actor", lambda text: check_optional_text(text, "actor")),
    ],
    ids=["key", "tags", "optional_text"],
)
@pytest.mark.parametrize("char", ["\x85", "\x9b"], ids=["NEL", "CSI"])
def test_text_with_c1_control_character_is_refused(
    field: str, check: Callable[[str], Any], char: str
) -> None:
    refused(field, check, f"a{char}b")


# ---- tags --------------------------------------------------------------------


def test_tags_are_deduplicated_and_sorted() -> None:
    assert check_tags(["b", "a", "b", "c", "a"]) == ("a", "b", "c")


def test_no_tags_gives_empty_tuple() -> None:
    assert check_tags(None) == ()
    assert check_tags([]) == ()


@pytest.mark.parametrize(
    "tags", [{"x", "y"}, ("y", "x"), (t for t in ["y", "x"]), frozenset({"x", "y"})]
)
def test_any_iterable_of_tags_is_accepted(tags: object) -> None:
    assert check_tags(tags) == ("x", "y")


def test_plain_string_as_tags_is_refused() -> None:
    refused("tags", check_tags, "abc")


@pytest.mark.parametrize("tags", [5, b"ab", 1.5])
def test_tags_that_are_not_a_collection_of_strings_are_refused(tags: object) -> None:
    refused("tags", check_tags, tags)


@pytest.mark.parametrize("tag", [1, None, b"x", ""])
def test_non_string_or_empty_tag_is_refused(tag: object) -> None:
    refused("tags", check_tags, ["ok", tag])


def test_tag_of_128_characters_is_accepted() -> None:
    assert check_tags(["t" * 128]) == ("t" * 128,)


def test_tag_over_128_characters_is_refused() -> None:
    refused("tags", check_tags, ["t" * 129])


@pytest.mark.parametrize("tag", ["a\x00", "a\nb", "\x7f"])
def test_tag_with_control_character_is_refused(tag: str) -> None:
    refused("tags", check_tags, [tag])


def test_tag_with_lone_surrogate_is_refused() -> None:
    refused("tags", check_tags, ["\ud800"])


def test_64_tags_are_accepted() -> None:
    assert len(check_tags([f"t{i}" for i in range(64)])) == 64


def test_65_tags_are_refused() -> None:
    refused("tags", check_tags, [f"t{i}" for i in range(65)])


def test_tag_limit_counts_distinct_tags() -> None:
    tags = [f"t{i}" for i in range(64)] + ["t0"] * 10
    assert len(check_tags(tags)) == 64


# ---- metadata ----------------------------------------------------------------


def test_no_metadata_gives_empty_dict() -> None:
    assert check_metadata(None) == {}


def test_json_metadata_is_returned_as_an_equal_copy() -> None:
    given_metadata = {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}
    checked = check_metadata(given_metadata)
    assert checked == given_metadata
    checked["a"].append("more")
    checked["b"]["c"]["d"] = 1
    assert given_metadata == {"a": [1, 2.5, "x", None, True], "b": {"c": {}}}


def test_metadata_tuples_become_lists() -> None:
    assert check_metadata({"a": (1, 2)}) == {"a": [1, 2]}


@pytest.mark.parametrize("metadata", [[], [("a", 1)], "a=1", 5, b"{}", bytearray()])
def test_metadata_that_is_not_a_mapping_is_refused(metadata: object) -> None:
    refused("metadata", check_metadata, metadata)


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"blob": b"\x00\x01"}, "metadata.blob"),
        ({"blob": bytearray(b"x")}, "metadata.blob"),
        ({"blob": memoryview(b"x")}, "metadata.blob"),
        ({"list": [1, b"x"]}, "metadata.list[1]"),
        ({"a": {"b": b""}}, "metadata.a.b"),
    ],
)
def test_metadata_with_bytes_is_refused(metadata: object, field: str) -> None:
    refused(field, check_metadata, metadata)


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({1: "a"}, "metadata"),
        ({None: "a"}, "metadata"),
        ({"a": {("t",): 1}}, "metadata.a"),
    ],
)
def test_metadata_with_non_string_key_is_refused(metadata: object, field: str) -> None:
    refused(field, check_metadata, metadata)


def test_metadata_key_with_lone_surrogate_is_refused() -> None:
    refused("metadata key", check_metadata, {"\ud800": 1})


def test_metadata_text_with_lone_surrogate_is_refused() -> None:
    refused("metadata.a", check_metadata, {"a": "\udfff"})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_metadata_with_non_finite_number_is_refused(number: float) -> None:
    refused("metadata.x[0]", check_metadata, {"x": [number]})


@pytest.mark.parametrize("number", [MAX_INT + 1, MIN_INT - 1, 2**64, -(2**100)])
def test_metadata_with_integer_beyond_64_bits_is_refused(number: int) -> None:
    refused("metadata.n", check_metadata, {"n": number})


@pytest.mark.parametrize("number", [MAX_INT, MIN_INT, 0, -1])
def test_metadata_with_64_bit_integer_is_accepted(number: int) -> None:
    assert check_metadata({"n": number}) == {"n": number}


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j])
def test_metadata_with_non_json_value_is_refused(value: object) -> None:
    refused("metadata.v", check_metadata, {"v": value})


def test_metadata_nested_64_deep_is_accepted() -> None:
    metadata = {"top": nested(63)}
    assert check_metadata(metadata) == metadata


def test_metadata_nested_65_deep_is_refused() -> None:
    rule = refused_prefix("metadata", check_metadata, {"top": nested(64)})
    assert "64" in rule


# ---- memory type -------------------------------------------------------------


@pytest.mark.parametrize("memory_type", sorted(KNOWN_MEMORY_TYPES))
def test_known_memory_type_is_accepted(memory_type: str) -> None:
    assert check_memory_type(memory_type) == memory_type


def test_known_memory_types_are_the_four_documented_ones() -> None:
    assert {"semantic", "episodic", "procedural", "working"} == KNOWN_MEMORY_TYPES


@pytest.mark.parametrize("memory_type", ["belief", "", "Semantic", None, 1])
def test_unknown_memory_type_is_refused(memory_type: object) -> None:
    refused("memory_type", check_memory_type, memory_type)


def test_extra_memory_type_is_accepted_when_configured() -> None:
    assert check_memory_type("belief", extra_types=["belief"]) == "belief"
    assert check_memory_type("semantic", extra_types=["belief"]) == "semantic"


# ---- unit interval -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (1, 1.0), (0.0, 0.0), (0.25, 0.25), (1.0, 1.0)]
)
def test_number_in_unit_interval_is_returned_as_float(
    value: float, expected: float
) -> None:
    result = check_unit_interval(value, "importance")
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_unit_interval_number(value: bool) -> None:
    refused("importance", check_unit_interval, value, "importance")


@pytest.mark.parametrize(
    "value", [-0.0001, -1, 1.0001, 2, math.nan, math.inf, -math.inf]
)
def test_number_outside_unit_interval_is_refused(value: float) -> None:
    refused("confidence", check_unit_interval, value, "confidence")


@pytest.mark.parametrize("value", [None, "0.5", [0.5], b"1"])
def test_non_number_is_refused_as_unit_interval(value: object) -> None:
    refused("confidence", check_unit_interval, value, "confidence")


# ---- optional text -----------------------------------------------------------


def test_optional_text_may_be_none() -> None:
    assert check_optional_text(None, "actor") is None


@pytest.mark.parametrize("text", ["", "alice", "a" * 256, "caf\u00e9 \u2713"])
def test_short_text_is_returned(text: str) -> None:
    assert check_optional_text(text, "actor") == text


def test_text_over_max_length_is_refused() -> None:
    refused("actor", check_optional_text, "a" * 257, "actor")


def test_text_max_length_is_configurable() -> None:
    assert check_optional_text("r" * 4096, "reason", max_length=4096) == "r" * 4096
    refused("reason", check_optional_text, "r" * 4097, "reason", max_length=4096)


@pytest.mark.parametrize("text", [5, b"alice", ["alice"]])
def test_non_string_text_is_refused(text: object) -> None:
    refused("source", check_optional_text, text, "source")


@pytest.mark.parametrize("text", ["a\x00", "a\nb", "\x1f", "\x7f"])
def test_text_with_control_character_is_refused(text: str) -> None:
    refused("task_id", check_optional_text, text, "task_id")


def test_text_with_lone_surrogate_is_refused() -> None:
    refused("task_id", check_optional_text, "\ud800", "task_id")


# ---- wire form of values -----------------------------------------------------

ROUND_TRIP_CASES = [
    None,
    True,
    False,
    0,
    MAX_INT,
    MIN_INT,
    1.5,
    -0.0,
    1e300,
    5e-324,
    "",
    "plain",
    "caf\u00e9 \u2713 \U0001f600 \u4e2d\u6587",
    b"",
    b"hello",
    b"\xff\xfe\x00\x80",
    bytes(range(256)),
    [],
    {},
    [b"a", [b"b", {"c": b"\x00"}]],
    {"blob": b"\xc3\x28", "list": [b"", None]},
    {"$bytes": "aGk="},
    {"$bytes": b"hi"},
    {"$dict": {"a": 1}},
    {"$dict": {"$bytes": "x"}},
    {"$bytes": "x", "other": 1},
    {"$dict": 5},
    [{"$bytes": ""}, {"$dict": {}}],
    {"_type_": "datetime", "_data_": "2024-01-01T00:00:00"},
    {"_type_": "bytes", "_data_": b"x"},
    {"nested": {"_type_": "uuid", "_data_": "00000000000000000000000000000000"}},
]


@pytest.mark.parametrize("value", ROUND_TRIP_CASES)
def test_value_round_trips_exactly(value: Any) -> None:
    assert strictly_equal(decode_value(encode_value(value)), value)


@pytest.mark.parametrize("value", ROUND_TRIP_CASES)
def test_value_round_trips_exactly_through_json_bytes(value: Any) -> None:
    stored = canonical_json(encode_value(value))
    assert strictly_equal(decode_value(orjson.loads(stored)), value)


def test_bytes_are_sent_as_tagged_base64() -> None:
    assert encode_value(b"\xff\x00") == {
        "$bytes": base64.b64encode(b"\xff\x00").decode()
    }


@pytest.mark.parametrize("value", [bytearray(b"\x01\x02"), memoryview(b"\x01\x02")])
def test_bytes_like_values_come_back_as_bytes(value: Any) -> None:
    assert decode_value(encode_value(value)) == b"\x01\x02"


@pytest.mark.parametrize("value", [{"$bytes": "aGk="}, {"$dict": {"k": "v"}}])
def test_caller_dict_with_only_a_tag_key_comes_back_as_that_dict(value: Any) -> None:
    wire = encode_value(value)
    assert wire == {"$dict": value}
    decoded = decode_value(wire)
    assert decoded == value
    assert isinstance(decoded, dict)


def test_type_data_shaped_dict_is_left_as_is_on_the_wire() -> None:
    value = {"_type_": "datetime", "_data_": "2024-01-01"}
    assert encode_value(value) == value


def test_tuples_come_back_as_lists() -> None:
    assert decode_value(encode_value((1, (b"x",)))) == [1, [b"x"]]


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (math.nan, "value"),
        ([math.inf], "value[0]"),
        ({"n": MAX_INT + 1}, "value.n"),
        ({"s": {1, 2}}, "value.s"),
        (object(), "value"),
        ("\ud800", "value"),
        ({"\ud800": 1}, "value key"),
        ({1: "a"}, "value"),
    ],
)
def test_encode_value_refuses_non_json_values(value: Any, field: str) -> None:
    refused(field, encode_value, value)


def test_encode_value_names_the_given_field() -> None:
    refused("payload[0]", encode_value, [math.nan], field="payload")


class Half(float):
    """A float subclass, like numpy.float64."""


@pytest.mark.parametrize(
    "number", [np.float64(0.25), Half(0.25)], ids=["numpy.float64", "subclass"]
)
def test_float_subclass_value_is_refused_or_stored_as_a_plain_float(
    number: float,
) -> None:
    try:
        wire = encode_value({"score": number})
    except ValidationError:
        return
    assert decode_value(orjson.loads(canonical_json(wire))) == {"score": 0.25}


def test_float_subclass_in_metadata_is_refused_or_stored_as_a_plain_float() -> None:
    try:
        metadata = check_metadata({"score": np.float64(0.25)})
    except ValidationError:
        return
    assert orjson.loads(canonical_json(metadata)) == {"score": 0.25}


def test_value_nested_64_deep_is_accepted() -> None:
    value = nested(64)
    assert decode_value(encode_value(value)) == value


def test_value_nested_65_deep_is_refused() -> None:
    refused_prefix("value", encode_value, nested(65))


TAG_LIKE_KEYS = st.sampled_from(["$bytes", "$dict", "_type_", "_data_", "", "a"])
JSON_PLUS_BYTES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=MIN_INT, max_value=MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(TAG_LIKE_KEYS | st.text(), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(deadline=None, max_examples=300)
@given(JSON_PLUS_BYTES)
def test_every_json_plus_bytes_value_round_trips(value: Any) -> None:
    wire = encode_value(value)
    assert strictly_equal(decode_value(wire), value)
    assert strictly_equal(decode_value(orjson.loads(canonical_json(wire))), value)


@settings(deadline=None)
@given(JSON_PLUS_BYTES)
def test_wire_form_holds_no_bytes(value: Any) -> None:
    # orjson refuses bytes, so a wire form it can write is plain JSON.
    wire = encode_value(value)
    assert orjson.loads(orjson.dumps(wire)) == wire


# ---- hashing -----------------------------------------------------------------


def test_canonical_json_sorts_keys_at_every_level_without_spaces() -> None:
    value = {"b": 1, "a": {"d": [3, {"z": 0, "y": 1}], "c": None}}
    assert canonical_json(value) == b'{"a":{"c":null,"d":[3,{"y":1,"z":0}]},"b":1}'


def test_canonical_json_is_utf8() -> None:
    assert canonical_json("\u00e9") == '"\u00e9"'.encode()


def test_content_hash_is_stable_for_equal_values() -> None:
    first = content_hash(encode_value({"a": 1, "b": [b"x", "y"]}))
    second = content_hash(encode_value({"b": [b"x", "y"], "a": 1}))
    assert first == second
    assert len(first) == 64
    assert int(first, 16) >= 0


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("a", "b"),
        (1, 2),
        (1, "1"),
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"b": 1}),
        ([1, 2], [2, 1]),
        (b"x", "eA=="),
        (b"x", {"$bytes": "eA=="}),
        (None, "null"),
    ],
)
def test_content_hash_differs_for_different_values(one: Any, other: Any) -> None:
    assert content_hash(encode_value(one)) != content_hash(encode_value(other))


@settings(deadline=None)
@given(st.dictionaries(st.text(), JSON_PLUS_BYTES, min_size=2, max_size=6))
def test_content_hash_ignores_key_order(value: dict[str, Any]) -> None:
    reordered = dict(reversed(value.items()))
    assert list(reordered) != list(value)
    assert content_hash(encode_value(reordered)) == content_hash(encode_value(value))
