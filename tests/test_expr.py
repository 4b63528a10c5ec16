"""The expression language of SPEC §3: operators, null semantics, functions, templates, load errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from orchestrator.rules.expr import (
    FUNCTIONS,
    ROOTS,
    ExprError,
    Expression,
    Template,
    compile_expression,
    compile_template,
)

NOW = 1_777_900_000.0  # 2026-05-04T13:06:40Z

SCOPE: dict[str, Any] = {
    "event": {
        "type": "chat.message",
        "channel": "chat",
        "occurred_at": "2026-05-04T13:00:00Z",
        "properties": {"sentiment": -0.7, "text": "Hello", "from": "bot", "tags": ["a", "b"], "flag": True},
    },
    "customer": {"id": "c-100", "traits": {"tier": "gold", "name": "Ann"}, "consent": {"email": False}},
    "cart": {"total": 240, "items": [{"sku": "CHAIR-9", "qty": 2, "price": 120}]},
    "orders": {"count": 0, "total_spent": 0.0, "last_at": None},
    "recent": {"viewed": ["CHAIR-9"], "events": []},
    "last_seen": {"web": NOW - 3600, "mobile": "2026-05-01T13:06:40Z"},
    "channels_seen": ["web", "mobile", "chat"],
    "location": {"lat": 45.5017, "lon": -73.5673},
    "counters": {"failed_intents": 2},
    "now": NOW,
}


def ev(source: str, scope: dict[str, Any] | None = None) -> Any:
    return compile_expression(source).evaluate(SCOPE if scope is None else scope)


def error_of(source: str) -> ExprError:
    with pytest.raises(ExprError) as caught:
        compile_expression(source)
    return caught.value


# --------------------------------------------------------------------------- public surface


def test_roots_and_functions_are_exactly_the_spec_lists() -> None:
    assert {
        "event",
        "customer",
        "cart",
        "orders",
        "recent",
        "last_seen",
        "channels_seen",
        "location",
        "counters",
        "now",
    } == ROOTS
    assert {"len", "lower", "contains", "hours_since", "days_since", "distance_m"} == FUNCTIONS


def test_expression_records_source_roots_and_tests_truthiness() -> None:
    expression = compile_expression("cart.total >= 20 and event.channel == 'chat'")
    assert isinstance(expression, Expression)
    assert expression.source == "cart.total >= 20 and event.channel == 'chat'"
    assert expression.roots == {"cart", "event"}
    assert expression.test(SCOPE) is True
    assert compile_expression("orders.last_at").test(SCOPE) is False
    assert compile_expression("days_since(last_seen.web) > 1").roots == {"last_seen", "now"}


def test_expressions_compare_by_source() -> None:
    assert compile_expression("cart.total > 1") == compile_expression("cart.total > 1")
    assert hash(compile_expression("cart.total > 1")) == hash(compile_expression("cart.total > 1"))
    assert compile_expression("cart.total > 1") != compile_expression("cart.total > 2")


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("1.5 + 2", 3.5),
        ("'a' + 'b'", "ab"),
        ("[1] + [2]", [1, 2]),
        ("7 - 10", -3),
        ("3 * 4", 12),
        ("7 / 2", 3.5),
        ("-cart.total", -240),
        ("-(1 + 2) * 2", -6),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("cart.total / 2", 120.0),
        ("cart.total * 0.5 + 1", 121.0),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    assert ev(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("'a' == 'a'", True),
        ("'a' != 'b'", True),
        ("[1, 'a'] == [1, 'a']", True),
        ("1 < 2", True),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2 >= 3", False),
        ("'abc' < 'abd'", True),
        ("cart.total >= 20", True),
        ("20 <= cart.total", True),
        ("cart.total < 20", False),
        ("counters.failed_intents == 2", True),
        ("event.properties.sentiment <= -0.5", True),
        ("event.channel == 'chat'", True),
        ("event.channel != 'chat'", False),
        ("'chat' == event.channel", True),
        ("event.properties.flag == true", True),
        ("event.properties.flag != false", True),
    ],
)
def test_comparisons(source: str, expected: bool) -> None:
    assert ev(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("0 < cart.total <= 240", True),
        ("0 < cart.total < 240", False),
        ("1 == 1 != 2", True),
        ("1 < null < 3", False),
    ],
)
def test_chained_comparisons(source: str, expected: bool) -> None:
    assert ev(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'web' in channels_seen", True),
        ("'store' in channels_seen", False),
        ("'store' not in channels_seen", True),
        ("event.channel in ['web', 'chat']", True),
        ("event.channel not in ['web', 'chat']", False),
        ("'ell' in event.properties.text", True),
        ("'xyz' not in event.properties.text", True),
        ("2 in [1, 2.0]", True),
        ("counters.failed_intents in [1, 2, 3]", True),
        ("cart.total in [1, cart.total]", True),
        ("1 in [true]", False),
        ("true in [1]", False),
        ("[1] in [[1], [2]]", True),
        ("1 in 'abc'", False),
        ("1 not in 'abc'", False),
        ("'a' in 5", False),
        ("'a' not in 5", False),
        ("'a' in customer.traits", False),
    ],
)
def test_membership(source: str, expected: bool) -> None:
    assert ev(source) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true and true", True),
        ("true and false", False),
        ("false or true", True),
        ("false or false", False),
        ("not false", True),
        ("not cart.total", False),
        ("not orders.count", True),
        ("cart.total and 'x'", True),
        ("0 or ''", False),
        ("1 and 2 and 3", True),
        ("1 and 0 and 3", False),
        ("0 or 0 or 'x'", True),
        ("counters.failed_intents >= 2 or event.properties.sentiment <= -0.5", True),
    ],
)
def test_boolean_operators_yield_booleans(source: str, expected: bool) -> None:
    assert ev(source) is expected


def test_and_or_short_circuit() -> None:
    calls: list[str] = []

    class Spy(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            calls.append(key)
            return super().get(key, default)

    scope = Spy(cart={"total": 5}, event={"channel": "web"})
    assert compile_expression("cart.total > 10 and event.channel == 'web'").evaluate(scope) is False
    assert calls == ["cart"]
    calls.clear()
    assert compile_expression("cart.total < 10 or event.channel == 'web'").evaluate(scope) is True
    assert calls == ["cart"]


def test_literals_and_lists() -> None:
    assert ev("true") is True
    assert ev("false") is False
    assert ev("null") is None
    assert ev("'it''s'") == "its"
    assert ev('"double"') == "double"
    assert ev("1_000") == 1000
    assert ev("2.5e3") == 2500.0
    assert ev("[1, 'two', null, true, [3]]") == [1, "two", None, True, [3]]
    assert ev("[cart.total, event.channel]") == [240, "chat"]
    assert ev("[]") == []


def test_dotted_names_read_nested_dicts() -> None:
    assert ev("event.properties.text") == "Hello"
    assert ev("customer.traits.tier") == "gold"
    assert ev("cart") == SCOPE["cart"]
    assert ev("now") == NOW
    assert ev("event.properties.from") == "bot"  # a Python keyword is fine as a key
    assert ev("event.properties.tags") == ["a", "b"]


def test_multiline_source_is_accepted() -> None:
    assert ev("cart.total >= 20\n  and event.channel == 'chat'") is True


# ------------------------------------------------------------- null semantics, sentence by sentence


def test_a_missing_name_or_path_is_null() -> None:
    assert ev("customer.traits.missing") is None
    assert ev("customer.nothing.deeper.still") is None
    assert ev("cart.total.deeper") is None  # not a dict: null
    assert ev("channels_seen.first") is None  # a list has no keys
    assert ev("cart.total", {}) is None
    assert ev("event.properties.sentiment", {"event": None}) is None


def test_equality_with_null_tests_for_it() -> None:
    assert ev("customer.traits.missing == null") is True
    assert ev("customer.traits.missing != null") is False
    assert ev("null == customer.traits.missing") is True
    assert ev("customer.traits.tier == null") is False
    assert ev("customer.traits.tier != null") is True
    assert ev("orders.last_at == null") is True
    assert ev("null == null") is True
    assert ev("0 == null") is False
    assert ev("'' != null") is True
    assert ev("customer.traits.a == customer.traits.b") is True


@pytest.mark.parametrize(
    "source",
    [
        "customer.traits.missing < 1",
        "customer.traits.missing <= 1",
        "customer.traits.missing > 1",
        "customer.traits.missing >= 1",
        "1 > customer.traits.missing",
        "null < null",
        "null <= null",
        "customer.traits.missing in [null, 1]",
        "customer.traits.missing not in [1]",
        "'a' in customer.traits.missing",
        "'a' not in customer.traits.missing",
        "customer.traits.missing < 'a'",
    ],
)
def test_every_other_comparison_with_null_is_false(source: str) -> None:
    assert ev(source) is False


@pytest.mark.parametrize(
    "source",
    ["null + 1", "1 + null", "null - 1", "2 * null", "null / 2", "-null", "customer.traits.missing * 3"],
)
def test_arithmetic_with_null_is_null(source: str) -> None:
    assert ev(source) is None


def test_len_of_null_is_zero() -> None:
    assert ev("len(null)") == 0
    assert ev("len(customer.traits.missing)") == 0
    assert ev("len(recent.viewed) > 0") is True


@pytest.mark.parametrize(
    "source",
    [
        "'10' > 5",
        "true > false",
        "1 < true",
        "[1] < [2]",
        "cart < 3",
        "'a' >= 1",
        "1 == '1'",
        "true == 1",
        "false == 0",
        "event.properties.flag == 1",
        "[1] == 1",
    ],
)
def test_comparisons_of_incompatible_types_are_false(source: str) -> None:
    assert ev(source) is False


def test_inequality_of_incompatible_types_is_true() -> None:
    assert ev("1 != '1'") is True
    assert ev("true != 1") is True


@pytest.mark.parametrize("source", ["1 / 0", "cart.total / 0", "1 / 0.0", "cart.total / orders.count"])
def test_division_by_zero_is_null(source: str) -> None:
    assert ev(source) is None


@pytest.mark.parametrize(
    "source", ["'a' - 1", "'a' * 3", "[1] * 2", "'a' + 1", "[1] + 'a'", "true + 1", "-'a'", "cart + cart"]
)
def test_arithmetic_on_incompatible_types_is_null(source: str) -> None:
    assert ev(source) is None


def test_null_is_false_in_boolean_context() -> None:
    assert ev("customer.traits.missing and true") is False
    assert ev("customer.traits.missing or false") is False
    assert ev("not customer.traits.missing") is True
    assert compile_expression("customer.traits.missing").test(SCOPE) is False


def test_evaluation_never_raises_on_odd_scopes() -> None:
    loop: list[Any] = []
    loop.append(loop)
    odd_scopes: list[Any] = [
        {},
        {"cart": None},
        {"cart": 5},
        {"cart": {"total": "lots"}},
        {"cart": {"total": float("nan")}},
        {"cart": {"total": 10**400}},
        {"cart": {"total": float("inf"), "items": loop}},
        {"now": "not a time", "last_seen": {"web": "yesterday"}},
    ]
    sources = [
        "cart.total >= 20",
        "cart.total / 3 + 1.5",
        "len(cart.items) > 0 and cart.items == cart.items",
        "cart.items in [cart.items]",
        "hours_since(last_seen.web) > 1",
        "distance_m(cart.total, 0, 0, 0)",
        "lower(cart.total)",
        "contains(cart.items, cart.items)",
    ]
    for scope in odd_scopes:
        for source in sources:
            compile_expression(source).evaluate(scope)


# --------------------------------------------------------------------------- functions


def test_len() -> None:
    assert ev("len(channels_seen)") == 3
    assert ev("len('hello')") == 5
    assert ev("len(customer.traits)") == 2
    assert ev("len(cart.items)") == 1
    assert ev("len(cart.total)") is None


def test_lower() -> None:
    assert ev("lower(event.properties.text)") == "hello"
    assert ev("lower('ÉTÉ')") == "été"
    assert ev("lower(cart.total)") is None
    assert ev("lower(null)") is None


def test_contains() -> None:
    assert ev("contains(channels_seen, 'web')") is True
    assert ev("contains(channels_seen, 'store')") is False
    assert ev("contains(event.properties.text, 'ell')") is True
    assert ev("contains(customer.traits, 'tier')") is False
    assert ev("contains(null, 'a')") is False
    assert ev("contains(channels_seen, null)") is False
    assert ev("contains([1, 2], 2.0)") is True


def test_hours_and_days_since_read_now_from_the_scope() -> None:
    assert ev("hours_since(last_seen.web)") == pytest.approx(1.0)
    assert ev("days_since(last_seen.mobile)") == pytest.approx(3.0)
    assert ev("hours_since(event.occurred_at)") == pytest.approx(6 / 60 + 40 / 3600)
    assert ev("hours_since('2026-05-04T15:06:40+02:00')") == pytest.approx(0.0)
    assert ev("hours_since('2026-05-04t13:06:40z')") == pytest.approx(0.0)
    assert ev("days_since(now - 86400 * 2)") == pytest.approx(2.0)
    assert ev("days_since(last_seen.store)") is None
    assert ev("days_since(last_seen.store) > 7") is False
    assert ev("hours_since('not a date')") is None
    assert ev("hours_since(true)") is None
    assert ev("hours_since(last_seen.web)", {"last_seen": {"web": 0}}) is None  # no `now`
    assert ev("hours_since(0)", {"now": "1970-01-01T02:00:00Z"}) == pytest.approx(2.0)


def test_distance_is_haversine_in_metres() -> None:
    assert ev("distance_m(0, 0, 0, 1)") == pytest.approx(2 * math.pi * 6371008.8 / 360)
    assert ev("distance_m(location.lat, location.lon, 45.5017, -73.5673)") == pytest.approx(0.0)
    paris_to_montreal = ev("distance_m(48.8719, 2.3316, location.lat, location.lon)")
    assert paris_to_montreal == pytest.approx(5_503_000, rel=1e-3)
    assert ev("distance_m(location.lat, location.lon, 45.5017, -73.5673) < 400") is True
    assert ev("distance_m(null, 0, 0, 0)") is None
    assert ev("distance_m('1', 0, 0, 0)") is None


def test_the_example_rule_conditions() -> None:
    scope = dict(SCOPE, last_seen={"web": NOW})
    assert ev("cart.total >= 20", scope) is True
    assert ev("len(cart.items) > 0", scope) is True
    assert ev(
        "len(recent.viewed) > 0 and (last_seen.store == null or days_since(last_seen.store) > 7)", scope
    )
    scope["last_seen"] = {"store": NOW - 86400}
    assert not ev(
        "len(recent.viewed) > 0 and (last_seen.store == null or days_since(last_seen.store) > 7)", scope
    )
    assert ev("counters.failed_intents >= 2 or event.properties.sentiment <= -0.5", scope) is True
    calm = {"counters": {"failed_intents": 1}, "event": {"properties": {"sentiment": 0.2}}}
    assert ev("counters.failed_intents >= 2 or event.properties.sentiment <= -0.5", calm) is False


# --------------------------------------------------------------------------- load errors


@pytest.mark.parametrize(
    ("source", "offset", "fragment"),
    [
        ("foo.bar > 1", 0, "unknown name 'foo'"),
        ("cart.total > 1 and evnt.type == 'x'", 19, "did you mean 'event'"),
        ("len", 0, "'len' is a function"),
        ("True", 0, "write 'true'"),
        ("None == cart.total", 0, "write 'null'"),
        ("null.x", 0, "'null' has no attributes"),
    ],
)
def test_unknown_names_are_load_errors(source: str, offset: int, fragment: str) -> None:
    error = error_of(source)
    assert fragment in error.message
    assert error.offset == offset


@pytest.mark.parametrize(
    ("source", "offset", "fragment"),
    [
        ("open('f')", 0, "unknown function 'open'"),
        ("cart.total > 1 or lenn(cart.items) > 0", 18, "did you mean 'len'"),
        ("__import__('os')", 0, "unknown function '__import__'"),
        ("getattr(cart, 'total')", 0, "unknown function 'getattr'"),
        ("cart.items.count(1)", 0, "only these functions can be called"),
        ("len(cart.items)(1)", 0, "only these functions can be called"),
        ("len(a=cart.items)", 6, "takes no keyword arguments"),
        ("len(cart.items, 1)", 0, "len() takes 1 argument (2 given)"),
        ("distance_m(1, 2)", 0, "distance_m() takes 4 arguments (2 given)"),
        ("len(*cart.items)", 4, "'*' unpacking"),
    ],
)
def test_unknown_or_misused_functions_are_load_errors(source: str, offset: int, fragment: str) -> None:
    error = error_of(source)
    assert fragment in error.message
    assert error.offset == offset


@pytest.mark.parametrize(
    ("source", "offset"),
    [
        ("cart.total >=", 13),
        ("cart.total >= ", 13),
        ("cart.total 20", 11),
        ("(cart.total", 0),
        ("cart.total >= 20)", 16),
        ("'unterminated", 0),
        ("cart..total", 5),
        ("a +* 2", 3),
    ],
)
def test_syntax_errors_have_offsets(source: str, offset: int) -> None:
    error = error_of(source)
    assert error.message.startswith("syntax error")
    assert error.offset == offset


@pytest.mark.parametrize(
    ("source", "offset", "fragment"),
    [
        ("cart.items[0]", 0, "subscripts"),
        ("lambda: 1", 0, "lambda"),
        ("[x for x in cart.items]", 0, "comprehensions"),
        ("cart.total if true else 0", 0, "'x if c else y'"),
        ("{'a': 1}", 0, "dict literals"),
        ("(1, 2)", 0, "tuples"),
        ("f'{cart.total}'", 0, "f-strings"),
        ("b'x'", 0, "bytes literals"),
        ("1j", 0, "complex literals"),
        ("cart.total ** 2", 0, "operator '**'"),
        ("cart.total % 2", 0, "operator '%'"),
        ("cart.total // 2", 0, "operator '//'"),
        ("~cart.total", 0, "unary '~'"),
        ("+cart.total", 0, "unary '+'"),
        ("cart.total is null", 0, "'is' is not allowed"),
        ("cart.total is not null", 0, "'is not' is not allowed"),
        ("(x := 1)", 1, "':=' assignment"),
        ("event.__class__", 6, "'__class__'"),
        ("event.properties.__dict__.x", 17, "'__dict__'"),
        ("().__class__", 3, "'__class__'"),
        ("'abc'.upper", 0, "attribute access is only allowed"),
        ("len(cart.items).real", 0, "attribute access is only allowed"),
        ("cart.total > 1 # comment", 15, "comments"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("cart.total\0", 10, "NUL"),
        ("not " * 150 + "true", 404, "nested too deeply"),
        ("x" * 5000, 0, "too long"),
    ],
)
def test_forbidden_constructs_are_load_errors(source: str, offset: int, fragment: str) -> None:
    error = error_of(source)
    assert fragment in error.message
    assert error.offset == offset


def test_offsets_count_characters_not_bytes() -> None:
    error = error_of("'héllo wörld' == cart.x and foo")
    assert error.offset == 28
    assert error_of("  bar").offset == 2
    assert error_of("cart.x == 'é'\n  and baz").offset == 20


def test_first_error_in_source_order_wins() -> None:
    assert "foo" in error_of("foo + bar").message
    assert error_of("cart.total + bar(1)").offset == 13


def test_expr_error_shape() -> None:
    error = ExprError("boom", 7)
    assert (error.message, error.offset, str(error)) == ("boom", 7, "boom")
    assert ExprError("boom").offset == 0
    with pytest.raises(ExprError):
        compile_expression(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- templates


def test_a_lone_expression_keeps_its_type() -> None:
    template = compile_template({"template": "abandoned_cart", "total": "${cart.total}"})
    assert isinstance(template, Template)
    assert template.render(SCOPE) == {"template": "abandoned_cart", "total": 240}
    assert compile_template("${cart.total / 2}").render(SCOPE) == 120
    assert isinstance(compile_template("${cart.total / 2}").render(SCOPE), int)
    assert compile_template("${cart.total / 7}").render(SCOPE) == pytest.approx(240 / 7)
    assert compile_template("${ event.properties.flag }").render(SCOPE) is True
    assert compile_template("${channels_seen}").render(SCOPE) == ["web", "mobile", "chat"]
    assert compile_template("${customer.nothing}").render(SCOPE) is None
    assert compile_template("${1 / 0}").render(SCOPE) is None


def test_rendered_values_from_the_scope_are_copies() -> None:
    rendered = compile_template({"items": "${cart.items}"}).render(SCOPE)
    rendered["items"][0]["qty"] = 99
    assert SCOPE["cart"]["items"][0]["qty"] == 2


def test_mixed_strings_interpolate() -> None:
    template = compile_template(
        "Hi ${customer.traits.name}, ${cart.total * 1.0} € in ${len(cart.items)} item(s)"
    )
    assert template.render(SCOPE) == "Hi Ann, 240 € in 1 item(s)"
    assert compile_template("[${customer.nothing}]").render(SCOPE) == "[]"
    assert compile_template("${event.properties.flag}/${0.5}").render(SCOPE) == "true/0.5"
    assert compile_template("tags=${event.properties.tags}").render(SCOPE) == 'tags=["a","b"]'
    assert compile_template("${'}'} and ${\"${\"}").render(SCOPE) == "} and ${"


def test_constant_parts_are_shared_and_free() -> None:
    raw = {"queue": "tier1", "nested": {"a": [1, 2, {"b": "c"}]}, "price": "$5 {not an expr}"}
    template = compile_template(raw)
    assert template.render(SCOPE) is raw
    assert template.roots == frozenset()
    mixed = {"static": {"a": [1, 2]}, "dynamic": ["x", "${cart.total}"]}
    rendered = compile_template(mixed).render(SCOPE)
    assert rendered == {"static": {"a": [1, 2]}, "dynamic": ["x", 240]}
    assert rendered["static"] is mixed["static"]
    assert mixed["dynamic"] == ["x", "${cart.total}"]
    assert list(rendered) == ["static", "dynamic"]


def test_template_roots_raw_and_equality() -> None:
    raw = {"a": "${cart.total}", "b": ["${event.channel} ${hours_since(0)}"]}
    template = compile_template(raw)
    assert template.raw is raw
    assert template.roots == {"cart", "event", "now"}
    assert template == compile_template({"a": "${cart.total}", "b": ["${event.channel} ${hours_since(0)}"]})
    assert hash(template) == hash(compile_template(dict(raw)))
    assert compile_template(5).render(SCOPE) == 5


@pytest.mark.parametrize(
    ("value", "offset", "fragment"),
    [
        ("${foo}", 2, "unknown name 'foo'"),
        ("Total: ${cart.total + bar}", 22, "unknown name 'bar'"),
        ("a ${cart.total", 2, "unterminated"),
        ("a ${ }", 2, "empty"),
        ("${cart.total >= }", 15, "syntax error"),
        ("x ${ open('f') }", 5, "unknown function 'open'"),
    ],
)
def test_template_errors_have_offsets_in_their_string(value: str, offset: int, fragment: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_template({"params": [value]})
    assert fragment in caught.value.message
    assert caught.value.offset == offset
    assert value[caught.value.offset :]


def test_template_json_normalisation() -> None:
    scope = {"event": {"properties": {"big": 10**30, "nan": float("nan"), "f": 1e20}}}
    assert compile_template("${event.properties.big}").render(scope) == float(10**30)
    assert compile_template("${event.properties.nan}").render(scope) is None
    assert compile_template("${event.properties.f}").render(scope) == 1e20
    loop: list[Any] = []
    loop.append(loop)
    deep = compile_template({"a": "${event.loop}", "b": "x${event.loop}"}).render({"event": {"loop": loop}})
    assert deep["a"][0][0][0] is not loop
