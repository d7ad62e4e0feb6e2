"""Line protocol: escaping, types, precision, comments, malformed lines with their numbers,
duplicates, huge lines, type conflicts, and a formatter round trip."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sunarchive.lineprotocol import (
    ParseResult,
    PrecisionError,
    normalize_precision,
    parse_lines,
    to_line,
)

pytestmark = pytest.mark.unit

NOW = 1_782_036_000_000_000_000


def one(body: str, **kw: object) -> tuple[dict[str, object], dict[str, str], int]:
    """Fields, tags and time of the single good point in ``body``."""
    result = parse_lines(body, now_ns=NOW, **kw)  # type: ignore[arg-type]
    assert result.errors == [], result.errors
    (m,) = result.measurements.values()
    assert len(m.time_ns) == 1
    tags = dict(zip(m.tag_keys, m.tag_sets[int(m.tag_index[0])], strict=True))
    fields = {k: f.values[0] for k, f in m.fields.items()}
    return fields, tags, int(m.time_ns[0])


def test_typical_line_fast_path() -> None:
    fields, tags, t = one("ps100,panel_id=p3 voltage=23.41,current=3.12,n=7i,ok=t 1700000000")
    assert tags == {"panel_id": "p3"}
    assert fields == {"voltage": 23.41, "current": 3.12, "n": 7.0, "ok": 1.0}
    assert t == 1700000000


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("1", "float", 1.0), ("1.5", "float", 1.5), ("-1.5E-2", "float", -0.015),
    (".5", "float", 0.5), ("12i", "int", 12.0), ("-12i", "int", -12.0), ("12u", "uint", 12.0),
    *[(b, "bool", 1.0) for b in ("t", "T", "true", "True", "TRUE")],
    *[(b, "bool", 0.0) for b in ("f", "F", "false", "False", "FALSE")],
])
def test_value_types(text: str, kind: str, value: float) -> None:
    result = parse_lines(f"m x={text} 1", now_ns=NOW)
    field = result.measurements["m"].fields["x"]
    assert field.kind == kind and field.values[0] == value


def test_escapes_and_quoted_strings() -> None:
    body = (r'my\ meas\,ure,tag\ key=va\,l\=ue field\=k="say \"hi\", a=b \\ c",n=1 5')
    result = parse_lines(body, now_ns=NOW)
    assert result.errors == []
    m = result.measurements["my meas,ure"]
    assert m.tag_keys == ("tag key",) and m.tag_sets == [("va,l=ue",)]
    assert m.fields["field=k"].kind == "string"
    assert m.fields["field=k"].values[0] == 'say "hi", a=b \\ c'
    assert m.fields["n"].values[0] == 1.0 and m.time_ns[0] == 5


@pytest.mark.parametrize(("precision", "stamp", "ns"), [
    ("ns", "1700000000123456789", 1700000000123456789), ("us", "1700000000123456",
                                                         1700000000123456000),
    ("ms", "1700000000123", 1700000000123000000), ("s", "1700000000", 1700000000000000000),
    ("second", "1700000000", 1700000000000000000), ("millisecond", "-5", -5_000_000),
    ("auto", "1700000000", 1700000000 * 10**9), ("auto", "1700000000123", 1700000000123 * 10**6),
    ("auto", "1700000000123456", 1700000000123456 * 10**3),
    ("auto", "1700000000123456789", 1700000000123456789),
])
def test_precision(precision: str, stamp: str, ns: int) -> None:
    assert one(f"m x=1 {stamp}", precision=precision)[2] == ns


def test_missing_timestamp_is_now_and_bad_precision_named() -> None:
    assert one("m x=1")[2] == NOW
    with pytest.raises(PrecisionError, match="precision 'hours'"):
        parse_lines("m x=1", precision="hours")
    assert normalize_precision("n") == "ns" and normalize_precision("u") == "us"


def test_comments_blank_lines_crlf_and_leading_space() -> None:
    body = " \n# a comment\n  # another\r\nm x=1 1\r\n\nm x=2 2\n"
    result = parse_lines(body, now_ns=NOW)
    assert result.errors == [] and result.lines == 2 and result.points == 2
    assert list(result.measurements["m"].fields["x"].values) == [1.0, 2.0]


@pytest.mark.parametrize(("bad", "says"), [
    ("m", "no fields"), ("m,t=1", "no fields"), ("m x=", "has no value"),
    ("m x=7a3 1", "invalid value '7a3'"), ("m x=NaN 1", "invalid value 'NaN'"),
    ("m x=inf 1", "invalid value 'inf'"), ('m s="open 1', "unterminated string"),
    ("m x 1", "not key=value"), ("m x=1 12a", "timestamp '12a' is not an integer"),
    ("m x=1,x=2i 1", "field 'x' is int here but float earlier in the line"),
    ("m,t=a,t=b x=1 1", "duplicate tag 't'"),
    ("m x=1 1 extra", "after the timestamp"), ("m,t= x=1", "tag 't' has no value"),
    ("m x=1_0 1", "invalid value '1_0'"),
])
def test_malformed_lines_named_and_neighbours_kept(bad: str, says: str) -> None:
    result = parse_lines(f"m x=1 1\n{bad}\nm x=3 3\n", now_ns=NOW)
    assert [e.line_number for e in result.errors] == [2]
    assert says in result.errors[0].message and result.errors[0].message.startswith("line 2:")
    assert result.errors[0].line == bad
    assert list(result.measurements["m"].fields["x"].values) == [1.0, 3.0]


def test_huge_line_rejected_alone() -> None:
    huge = "m x=" + "1" * (2**20 + 1)   # 1 MiB is the most
    result = parse_lines(f"m x=1 1\n{huge}\nm x=2 2", now_ns=NOW)
    assert [e.line_number for e in result.errors] == [2]
    assert "longer than 1048576 bytes" in result.errors[0].message
    assert len(result.errors[0].line) < 300 and result.points == 2


def test_type_conflict_keeps_the_first_type() -> None:
    result = parse_lines("m x=1 1\nm x=2i 2\nm x=3 3", now_ns=NOW)
    assert [e.line_number for e in result.errors] == [2]
    assert "'x' is int here but float earlier" in result.errors[0].message
    assert result.measurements["m"].fields["x"].kind == "float"


def test_points_with_different_fields_and_tags_align() -> None:
    result = parse_lines("m,a=1 x=1 1\nm,b=2 y=2 2\nm,a=1 x=3,y=4 3", now_ns=NOW)
    m = result.measurements["m"]
    assert m.tag_keys == ("a", "b")
    assert [m.tag_sets[i] for i in m.tag_index] == [("1", ""), ("", "2"), ("1", "")]
    x, y = m.fields["x"].values, m.fields["y"].values
    assert x[0] == 1.0 and math.isnan(x[1]) and x[2] == 3.0
    assert math.isnan(y[0]) and y[1] == 2.0 and y[2] == 4.0


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
                ).filter(lambda s: not s.startswith("#") and s.strip() == s and s != "")
values = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                   st.integers(-(2**53), 2**53), st.booleans(),
                   st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20))


@settings(max_examples=200, deadline=None)
@given(measurement=names, tags=st.dictionaries(names, names, max_size=3),
       fields=st.dictionaries(names, values, min_size=1, max_size=4),
       stamp=st.integers(-(2**62), 2**62))
def test_format_then_parse_round_trips(measurement: str, tags: dict[str, str],
                                       fields: dict[str, object], stamp: int) -> None:
    line = to_line(measurement, tags, fields, stamp)  # type: ignore[arg-type]
    result = parse_lines(line, now_ns=NOW)
    assert result.errors == [], (line, result.errors)
    m = result.measurements[measurement]
    assert int(m.time_ns[0]) == stamp
    assert dict(zip(m.tag_keys, m.tag_sets[0], strict=True)) == tags
    for key, value in fields.items():
        got = m.fields[key].values[0]
        if isinstance(value, str):
            assert got == value
        else:
            assert np.float64(got) == np.float64(float(value))  # type: ignore[arg-type]


# -- the columnar fast path gives exactly what the per-line parser gives -----------------------
_names = st.sampled_from(["m", "power", "ps100_readings"])
_tags = st.lists(st.tuples(st.sampled_from(["a", "b", "panel_id"]),
                           st.sampled_from(["1", "x", "panel_2", ""])), max_size=3)
_values = st.sampled_from(["1.5", "-2", "3e2", ".5", "7i", "-8i", "9u", "true", "F", "abc",
                           "1e999", "", "2.", "12345678901234567890i", "nan", '"text"',
                           "inf", "-Infinity", "NaN", "1.e5", "+.5e-3", "1e0001", "1e-400",
                           "+7i", "+8u"])
_fields = st.lists(st.tuples(st.sampled_from(["x", "y", "voltage", ""]), _values),
                   min_size=0, max_size=4)
_stamps = st.sampled_from(["", " 1782036000", " 1782036000000000000", " 9999999999999999999",
                           " -5", " x1", " 1782036000000 7", "  1782036000",
                           " +1782036000", " 0001782036000", " 00000000000000000001782036000"])


@st.composite
def _bodies(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        head = draw(_names) + "".join(f",{k}={v}" for k, v in draw(_tags))
        fields = ",".join(f"{k}={v}" for k, v in draw(_fields))
        lines.append(f"{head} {fields}{draw(_stamps)}")
    return "\n".join(lines)


def _plain(result: ParseResult) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": [(e.line_number, e.message) for e in result.errors],
                           "lines": result.lines, "points": result.points}
    for name, m in result.measurements.items():
        tags = [dict(zip(m.tag_keys, m.tag_sets[i], strict=True)) for i in m.tag_index]
        out[name] = (tags, m.time_ns.tolist(),
                     {k: (f.kind, [None if v is None or v != v else v for v in f.values])
                      for k, f in sorted(m.fields.items())})
    return out


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(body=_bodies(), precision=st.sampled_from(["ns", "s", "auto", "m", "h"]))
def test_columnar_path_equals_the_per_line_parser(body: str, precision: str) -> None:
    fast = parse_lines(body, precision, now_ns=NOW)
    slow = parse_lines(body, precision, now_ns=NOW, columnar=False)
    assert _plain(fast) == _plain(slow)


@pytest.mark.parametrize(("value", "kind"), [
    ("9223372036854775808i", "int64"), ("-9223372036854775809i", "int64"),
    ("9" * 400 + "i", "int64"), ("18446744073709551616u", "uint64"), ("9" * 5000 + "u", "uint64"),
])
def test_integers_beyond_their_type_are_refused_by_line_and_field(value: str, kind: str) -> None:
    for body in (f"m x=1 1\nm x={value} 2\nm x=3 3", f"m x=1 1\nm,t=a\\ b x={value} 2\nm x=3 3"):
        result = parse_lines(body, now_ns=NOW)
        (error,) = result.errors
        assert error.line_number == 2
        assert "field 'x'" in error.message and kind in error.message
        assert list(result.measurements["m"].time_ns) == [1, 3]


def test_integers_at_the_edges_of_their_type_are_kept() -> None:
    result = parse_lines("m a=9223372036854775807i,b=-9223372036854775808i,"
                         "c=18446744073709551615u 1", now_ns=NOW)
    assert result.errors == []
    assert result.measurements["m"].fields["c"].values[0] == float(2**64 - 1)


def test_a_refused_line_leaves_no_empty_measurement() -> None:
    result = parse_lines("new x=1 99999999999999999999\nother x=1e999 1\nm x=1 1", now_ns=NOW)
    assert [e.line_number for e in result.errors] == [1, 2]
    assert list(result.measurements) == ["m"]


def test_a_plus_signed_timestamp_or_integer_is_parsed_not_crashed() -> None:
    """Arrow's int64 cast refuses a leading '+' that line protocol allows: such lines once
    raised ArrowInvalid from the fast path (the whole body lost)."""
    result = parse_lines("m x=1i 1\nm x=+7i +2\nm x=3i 3", now_ns=NOW)
    assert result.errors == []
    m = result.measurements["m"]
    assert m.time_ns.tolist() == [1, 2, 3]
    assert (m.fields["x"].kind, m.fields["x"].values.tolist()) == ("int", [1.0, 7.0, 3.0])
