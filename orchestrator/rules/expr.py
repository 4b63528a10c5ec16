"""The safe expression language of rule files (SPEC §3): `condition`, `recheck` and `${…}` params.

Marketing teams write these, so two promises matter more than features: a rule set that loads can
never run anything but the operators and functions listed below, and evaluating a loaded expression
never raises, whatever the customer state looks like. Source is parsed with `ast.parse` (no text is
ever executed), every node is checked against an allow-list, and the tree is compiled once into nested
closures. Dotted names are resolved into tuples and common shapes (a value compared with a constant,
membership in a constant list) get specialised closures, because conditions are evaluated for every
event of every customer.

Value rules, in one place: a missing name or path is `null`; `== null` and `!= null` test for it;
every other comparison involving `null` is false; arithmetic with `null` gives `null`; `len(null)` is
0; values of different types (booleans are not numbers) are never equal and never ordered; division by
zero gives `null`.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import keyword
import math
import operator
import tokenize
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

Scope = Mapping[str, Any]
Evaluator = Callable[[Scope], Any]

ROOTS: frozenset[str] = frozenset(
    {
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
    }
)
FUNCTIONS: frozenset[str] = frozenset({"len", "lower", "contains", "hours_since", "days_since", "distance_m"})

MAX_SOURCE_CHARS = 4096
MAX_DEPTH = 100
EARTH_RADIUS_M = 6371008.8

_ARITY: dict[str, int] = {
    "len": 1,
    "lower": 1,
    "contains": 2,
    "hours_since": 1,
    "days_since": 1,
    "distance_m": 4,
}
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_PYTHON_LITERALS: dict[Any, str] = {True: "true", False: "false", None: "null"}
_FORBIDDEN_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.IfExp: "'x if c else y'",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.Tuple: "tuples (use a list: [a, b])",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Subscript: "subscripts such as a[0]",
    ast.Starred: "'*' unpacking",
    ast.NamedExpr: "':=' assignment",
    ast.JoinedStr: "f-strings",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}
_BIN_SYMBOLS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.MatMult: "@",
}


class ExprError(Exception):
    """A load error inside an expression; `offset` is the 0-based character offset in the source."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression; equal (and hashed) by source, so reloading a rule set compares cleanly.

    `test(scope)` is the truth of `evaluate(scope)`, a closure of its own rather than a method over
    `evaluate`: conditions are tested for every event of every customer, and a call layer (and a
    `bool()`) fewer is measurable there. `paths` are the dotted names it reads (`("cart", "total")`),
    for the engine to leave out what no rule reads. `lengths` are those of them read only as
    `len(path)`: for those the engine may give any value of the same length (the cart's own items
    rather than a dict built for each of them, at every wait's recheck).
    """

    source: str
    roots: frozenset[str] = field(compare=False)
    paths: frozenset[tuple[str, ...]] = field(compare=False)
    evaluate: Evaluator = field(compare=False, repr=False)
    test: Callable[[Scope], bool] = field(compare=False, repr=False)
    lengths: frozenset[tuple[str, ...]] = field(default=frozenset(), compare=False)


class Template:
    """A params tree (dict/list/scalars) whose strings may hold `${expr}`.

    `render(scope)` shares the template's constant parts with its result (that is what makes them
    free), so callers must treat a rendered tree as read-only. Values read from the scope are copied.
    It is the compiled closure itself, not a method over it: one call fewer for every decision.
    `roots` and `paths` are what its `${…}` expressions read, as for `Expression`.
    """

    __slots__ = ("paths", "raw", "render", "roots")

    def __init__(
        self, raw: Any, roots: frozenset[str], render: Evaluator, paths: frozenset[tuple[str, ...]]
    ) -> None:
        self.raw = raw
        self.roots = roots
        self.render = render
        self.paths = paths

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(json.dumps(self.raw, sort_keys=True, default=repr))

    def __repr__(self) -> str:
        return f"Template({self.raw!r})"


# --------------------------------------------------------------------------- value semantics


def _eq(x: Any, y: Any) -> bool:
    if x is None or y is None:
        return x is y
    cx = x.__class__
    cy = y.__class__
    if cx is cy or (cx is int and cy is float) or (cx is float and cy is int):
        return bool(x == y)
    return False


def _ne(x: Any, y: Any) -> bool:
    return not _eq(x, y)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(x: Any, y: Any) -> bool:
        cx = x.__class__
        cy = y.__class__
        if ((cx is int or cx is float) and (cy is int or cy is float)) or (cx is str and cy is str):
            return bool(op(x, y))
        return False

    return compare


def _in(x: Any, y: Any) -> bool:
    if x is None:
        return False
    cy = y.__class__
    if cy is list or cy is tuple:
        if x.__class__ is str:
            return x in y
        # Python's equality accepts everything ours does (and `True == 1` besides), so it can rule out.
        return x in y and any(_eq(x, item) for item in y)
    if cy is str:
        return x.__class__ is str and x in y
    return False


def _not_in(x: Any, y: Any) -> bool:
    if x is None:
        return False
    cy = y.__class__
    if cy is list or cy is tuple:
        return not _in(x, y)
    if cy is str:
        return x.__class__ is str and x not in y
    return False


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _eq,
    ast.NotEq: _ne,
    ast.Lt: _ordered(operator.lt),
    ast.LtE: _ordered(operator.le),
    ast.Gt: _ordered(operator.gt),
    ast.GtE: _ordered(operator.ge),
    ast.In: _in,
    ast.NotIn: _not_in,
}
_MIRRORED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
}


def _add(x: Any, y: Any) -> Any:
    cx = x.__class__
    cy = y.__class__
    if ((cx is int or cx is float) and (cy is int or cy is float)) or (
        cx is cy and (cx is str or cx is list)
    ):
        try:
            return x + y
        except ArithmeticError:
            return None
    return None


def _numeric(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(x: Any, y: Any) -> Any:
        cx = x.__class__
        cy = y.__class__
        if (cx is int or cx is float) and (cy is int or cy is float):
            try:
                return op(x, y)
            except ArithmeticError:
                return None
        return None

    return apply


_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: _add,
    ast.Sub: _numeric(operator.sub),
    ast.Mult: _numeric(operator.mul),
    ast.Div: _numeric(operator.truediv),
}


def _negate(x: Any) -> Any:
    cx = x.__class__
    return -x if cx is int or cx is float else None


def _len_of(arg: Evaluator) -> Evaluator:
    def length(scope: Scope) -> Any:
        v = arg(scope)
        if v is None:
            return 0
        cv = v.__class__
        if cv is list or cv is str or cv is dict or cv is tuple:
            return len(v)
        return None

    return length


def _lower(x: Any) -> Any:
    return x.lower() if x.__class__ is str else None


def _contains(container: Any, item: Any) -> bool:
    return _in(item, container)


@lru_cache(maxsize=4096)
def _parse_rfc3339(text: str) -> float | None:
    if len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.upper())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _seconds(value: Any) -> float | int | None:
    cv = value.__class__
    if cv is int or cv is float:
        return value  # type: ignore[no-any-return]
    if cv is str:
        return _parse_rfc3339(value)
    return None


def _since(ts: Evaluator, unit_s: float) -> Evaluator:
    """`hours_since`/`days_since`: numbers take a fast path, RFC 3339 strings are parsed (and cached)."""

    def since(scope: Scope) -> Any:
        then = ts(scope)
        now = scope.get("now")
        ct = then.__class__
        cn = now.__class__
        if not ((ct is int or ct is float) and (cn is int or cn is float)):
            then = _seconds(then)
            now = _seconds(now)
            if then is None or now is None:
                return None
        try:
            return (now - then) / unit_s
        except ArithmeticError:
            return None

    return since


def _distance_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    for value in (lat1, lon1, lat2, lon2):
        cv = value.__class__
        if cv is not int and cv is not float:
            return None
    try:
        phi1 = math.radians(lat1)
        phi2 = math.radians(lat2)
        half_dphi = (phi2 - phi1) / 2
        half_dlambda = math.radians(lon2 - lon1) / 2
        a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))
    except (ArithmeticError, ValueError):
        return None


_PURE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": _lower,
    "contains": _contains,
    "distance_m": _distance_m,
}
_CLOCK_UNITS_S: dict[str, float] = {"hours_since": 3600.0, "days_since": 86400.0}


# --------------------------------------------------------------------------- compiled nodes


@dataclass(slots=True)
class _Node:
    """One compiled sub-expression, with what parents specialise on.

    `path` is set for dotted names, `length_of` (the name's path) for `len(name)`. `safe` marks a
    node that gives a bool and cannot raise, whatever the scope holds: a condition made of such
    nodes is its own `test`, without the guarding frame (one call fewer per condition and event).
    """

    fn: Evaluator
    const: bool = False
    value: Any = None
    path: tuple[str, ...] | None = None
    length_of: tuple[str, ...] | None = None
    safe: bool = False


def _constant(value: Any) -> _Node:
    return _Node(fn=lambda _scope: value, const=True, value=value, safe=value.__class__ is bool)


def _path_getter(path: tuple[str, ...]) -> Evaluator:
    root = path[0]
    keys = path[1:]
    if not keys:
        return lambda scope: scope.get(root)
    if len(keys) == 1:
        (k1,) = keys

        def get1(scope: Scope) -> Any:
            v = scope.get(root)
            return v.get(k1) if isinstance(v, dict) else None

        return get1
    if len(keys) == 2:
        k1, k2 = keys

        def get2(scope: Scope) -> Any:
            v = scope.get(root)
            if not isinstance(v, dict):
                return None
            v = v.get(k1)
            return v.get(k2) if isinstance(v, dict) else None

        return get2

    def get_n(scope: Scope) -> Any:
        v = scope.get(root)
        for key in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(key)
        return v

    return get_n


def _versus_constant(
    get: Evaluator,
    op: type[ast.cmpop],
    c: Any,
    path: tuple[str, ...] | None = None,
    length_of: tuple[str, ...] | None = None,
) -> Evaluator | None:
    """Closures for `x OP constant`, the shape of nearly every rule condition; None when not special."""
    cc = c.__class__
    number = cc is int or cc is float
    if number and length_of is not None and op in _COMPARE_NUMBERS:
        return _length_number_order(length_of, _COMPARE_NUMBERS[op], c)
    if op is ast.Eq or op is ast.NotEq:
        if c is None or cc is bool:
            test: Evaluator = lambda scope: get(scope) is c  # noqa: E731
        elif cc is str or (number and c != 0 and c != 1):
            test = lambda scope: get(scope) == c  # noqa: E731
        elif number:

            def test(scope: Scope) -> bool:
                v = get(scope)
                return v == c and v.__class__ is not bool

        else:
            return None
        if op is ast.Eq:
            return test
        return lambda scope: not test(scope)
    if op in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
        if number and path is not None and 2 <= len(path) <= 3:
            return _path_number_order(path, _COMPARE_NUMBERS[op], c)
        if number:
            return _number_order(get, _COMPARE_NUMBERS[op], c)
        if cc is str:
            compare = _COMPARE[op]
            return lambda scope: compare(get(scope), c)
        return lambda _scope: False
    if cc is list and c and all(item.__class__ is str for item in c):
        strings = frozenset(c)
        if op is ast.In:
            return lambda scope: (v := get(scope)).__class__ is str and v in strings
        return lambda scope: (v := get(scope)).__class__ is str and v not in strings
    if cc is str:
        if op is ast.In:
            return lambda scope: (v := get(scope)).__class__ is str and v in c
        return lambda scope: (v := get(scope)).__class__ is str and v not in c
    return None


_COMPARE_NUMBERS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def _path_number_order(path: tuple[str, ...], op: Callable[[Any, Any], bool], c: float) -> Evaluator:
    """`root.a >= 20` and `root.a.b <= -0.5` with the path walk inlined: one call per comparison."""
    if len(path) == 2:
        root, k1 = path

        def compare2(scope: Scope) -> bool:
            v = scope.get(root)
            if not isinstance(v, dict):
                return False
            v = v.get(k1)
            t = v.__class__
            return (t is int or t is float) and op(v, c)

        return compare2
    root, k1, k2 = path

    def compare3(scope: Scope) -> bool:
        v = scope.get(root)
        if not isinstance(v, dict):
            return False
        v = v.get(k1)
        if not isinstance(v, dict):
            return False
        v = v.get(k2)
        t = v.__class__
        return (t is int or t is float) and op(v, c)

    return compare3


def _length_number_order(path: tuple[str, ...], op: Callable[[Any, Any], bool], c: float) -> Evaluator:
    """`len(root.a) > 0`: the path walk, `len` and the comparison in one closure instead of three."""
    root = path[0]
    keys = path[1:]
    if len(keys) == 1:  # `len(cart.items)`, `len(recent.viewed)`: the common shape, without the loop
        (k1,) = keys

        def compare1(scope: Scope) -> bool:
            v = scope.get(root)
            if not isinstance(v, dict):
                return op(0, c)
            v = v.get(k1)
            if v is None:
                return op(0, c)
            cv = v.__class__
            return (cv is list or cv is str or cv is dict or cv is tuple) and op(len(v), c)

        return compare1

    def compare(scope: Scope) -> bool:
        v = scope.get(root)
        for key in keys:
            if not isinstance(v, dict):
                return op(0, c)  # a missing path is null, and len(null) is 0
            v = v.get(key)
        if v is None:
            return op(0, c)
        cv = v.__class__
        return (cv is list or cv is str or cv is dict or cv is tuple) and op(len(v), c)

    return compare


def _number_order(get: Evaluator, op: Callable[[Any, Any], bool], c: float) -> Evaluator:
    def compare(scope: Scope) -> bool:
        v = get(scope)
        t = v.__class__
        return (t is int or t is float) and op(v, c)

    return compare


def _guarded(fn: Evaluator) -> Evaluator:
    """The last line of the never-raises promise: hostile scope data (self-referencing lists…) is null."""

    def evaluate(scope: Scope) -> Any:
        try:
            return fn(scope)
        except Exception:
            return None

    return evaluate


def _guarded_test(fn: Evaluator) -> Callable[[Scope], bool]:
    """`bool(_guarded(fn)(scope))` in one frame: whatever raises is null, and null is false."""

    def test(scope: Scope) -> bool:
        try:
            return not not fn(scope)  # noqa: SIM208 - `not not` is cheaper than a call to bool()
        except Exception:
            return False

    return test


# --------------------------------------------------------------------------- compiler


class _Compiler:
    def __init__(self, text: str, base: int, renamed: dict[int, str]) -> None:
        self.base = base
        self.encoded = text.encode("utf-8")
        self.ascii = len(self.encoded) == len(text)
        self.renamed = renamed
        self.roots: set[str] = set()
        self.paths: set[tuple[str, ...]] = set()
        self.value_reads: dict[tuple[str, ...], int] = {}  # path → reads other than `len(path)`

    def offset(self, byte_col: int) -> int:
        if self.ascii:
            return self.base + byte_col
        return self.base + len(self.encoded[:byte_col].decode("utf-8", errors="ignore"))

    def error(self, message: str, node: ast.AST) -> ExprError:
        return ExprError(message, self.offset(getattr(node, "col_offset", 0)))

    def compile(self, node: ast.AST, depth: int = 0) -> _Node:
        if depth > MAX_DEPTH:
            raise self.error("expression is nested too deeply", node)
        return self._dispatch(node, depth + 1)

    def _dispatch(self, node: ast.AST, depth: int) -> _Node:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name | ast.Attribute):
            return self._name(node)
        if isinstance(node, ast.List):
            return self._list(node, depth)
        if isinstance(node, ast.BoolOp):
            return self._bool_op(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self._bin_op(node, depth)
        if isinstance(node, ast.Compare):
            return self._compare(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        label = _FORBIDDEN_NODES.get(type(node), type(node).__name__)
        raise self.error(f"not allowed in expressions: {label}", node)

    def _constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if value is None or value is True or value is False:
            spelled = _PYTHON_LITERALS[value]
            raise self.error(f"'{value}' is not part of the language; write '{spelled}'", node)
        if value.__class__ in (int, float, str):
            return _constant(value)
        raise self.error(f"{type(value).__name__} literals are not allowed; use numbers and strings", node)

    def _name(self, node: ast.Name | ast.Attribute) -> _Node:
        keys: list[str] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            keys.append(self._attribute(current))
            current = current.value
        if not isinstance(current, ast.Name):
            raise self.error(
                "attribute access is only allowed on names that start with "
                f"one of: {', '.join(sorted(ROOTS))}",
                current,
            )
        name = current.id
        if name in _LITERALS:
            if keys:
                raise self.error(f"'{name}' has no attributes", node)
            return _constant(_LITERALS[name])
        if name not in ROOTS:
            raise self.error(_unknown_name(name), current)
        path = (name, *reversed(keys))
        self.roots.add(name)
        self.paths.add(path)
        self.value_reads[path] = self.value_reads.get(path, 0) + 1
        return _Node(fn=_path_getter(path), path=path)

    def _attribute(self, node: ast.Attribute) -> str:
        end = self.offset(node.end_col_offset or 0)
        start = end - len(node.attr)
        name = self.renamed.get(start, node.attr)
        if name.startswith("__"):
            raise ExprError(f"attribute names starting with '__' are not allowed: '{name}'", start)
        return name

    def _list(self, node: ast.List, depth: int) -> _Node:
        items = [self.compile(item, depth) for item in node.elts]
        if all(item.const for item in items):
            return _constant([item.value for item in items])
        fns = tuple(item.fn for item in items)
        return _Node(fn=lambda scope: [fn(scope) for fn in fns])

    def _bool_op(self, node: ast.BoolOp, depth: int) -> _Node:
        parts = [self.compile(value, depth) for value in node.values]
        fns = tuple(part.fn for part in parts)
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                fn: Evaluator = lambda scope: not not (a(scope) and b(scope))  # noqa: E731, SIM208
            else:

                def fn(scope: Scope) -> bool:
                    return all(part(scope) for part in fns)

        elif len(fns) == 2:
            a, b = fns
            fn = lambda scope: not not (a(scope) or b(scope))  # noqa: E731, SIM208
        else:

            def fn(scope: Scope) -> bool:
                return any(part(scope) for part in fns)

        return self._folded(_Node(fn=fn, safe=all(part.safe for part in parts)), parts)

    def _unary(self, node: ast.UnaryOp, depth: int) -> _Node:
        operand = self.compile(node.operand, depth)
        inner = operand.fn
        if isinstance(node.op, ast.Not):
            return self._folded(_Node(fn=lambda scope: not inner(scope), safe=operand.safe), [operand])
        if isinstance(node.op, ast.USub):
            return self._folded(_Node(fn=lambda scope: _negate(inner(scope))), [operand])
        symbol = "+" if isinstance(node.op, ast.UAdd) else "~"
        raise self.error(f"unary '{symbol}' is not allowed", node)

    def _bin_op(self, node: ast.BinOp, depth: int) -> _Node:
        apply = _ARITHMETIC.get(type(node.op))
        if apply is None:
            symbol = _BIN_SYMBOLS.get(type(node.op), "?")
            raise self.error(f"operator '{symbol}' is not allowed; use + - * /", node)
        left = self.compile(node.left, depth)
        right = self.compile(node.right, depth)
        a = left.fn
        b = right.fn
        if right.const:
            c = right.value
            fn: Evaluator = lambda scope: apply(a(scope), c)  # noqa: E731
        else:
            fn = lambda scope: apply(a(scope), b(scope))  # noqa: E731
        return self._folded(_Node(fn=fn), [left, right])

    def _compare(self, node: ast.Compare, depth: int) -> _Node:
        operands = [self.compile(node.left, depth)]
        for op in node.ops:
            if type(op) not in _COMPARE:
                spelled = "is not" if isinstance(op, ast.IsNot) else "is"
                raise self.error(f"'{spelled}' is not allowed; use == or !=", node)
        operands += [self.compile(item, depth) for item in node.comparators]
        ops = [type(op) for op in node.ops]
        safe = False
        if len(ops) == 1:
            fn, safe = self._single_compare(operands[0], ops[0], operands[1])
        else:
            steps = tuple((_COMPARE[op], operands[i].fn, operands[i + 1].fn) for i, op in enumerate(ops))

            def fn(scope: Scope) -> bool:
                right = steps[0][1](scope)
                for compare, _left_fn, right_fn in steps:
                    left, right = right, right_fn(scope)
                    if not compare(left, right):
                        return False
                return True

        return self._folded(_Node(fn=fn, safe=safe), operands)

    @staticmethod
    def _single_compare(left: _Node, op: type[ast.cmpop], right: _Node) -> tuple[Evaluator, bool]:
        """The comparison's closure, and whether it is safe (see `_Node`).

        A specialised closure is safe when it reads a dotted name (path getters cannot raise) or is
        `len(name)` against a number: the others call an arbitrary operand, which may raise.
        """
        special: Evaluator | None = None
        operand, c = left, right.value
        if right.const and not left.const:
            special = _versus_constant(left.fn, op, c, left.path, left.length_of)
        elif left.const and not right.const and op in _MIRRORED:
            operand, c, op = right, left.value, _MIRRORED[op]
            special = _versus_constant(right.fn, op, c, right.path, right.length_of)
        if special is not None:
            number = c.__class__ is int or c.__class__ is float
            length = operand.length_of is not None and number and op in _COMPARE_NUMBERS
            return special, operand.path is not None or length
        compare = _COMPARE[op]
        a = left.fn
        b = right.fn
        return (lambda scope: compare(a(scope), b(scope))), False

    def _call(self, node: ast.Call, depth: int) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.error(f"only these functions can be called: {', '.join(sorted(FUNCTIONS))}", node)
        name = func.id
        if name not in FUNCTIONS:
            raise self.error(_unknown_function(name), func)
        if node.keywords:
            raise self.error(f"{name}() takes no keyword arguments", node.keywords[0].value)
        if len(node.args) != _ARITY[name]:
            expected = _ARITY[name]
            plural = "" if expected == 1 else "s"
            raise self.error(f"{name}() takes {expected} argument{plural} ({len(node.args)} given)", node)
        args = [self.compile(arg, depth) for arg in node.args]
        fns = tuple(arg.fn for arg in args)
        if name in _CLOCK_UNITS_S:
            self.roots.add("now")
            return _Node(fn=_since(fns[0], _CLOCK_UNITS_S[name]))
        if name == "len":
            if args[0].path is not None:  # read for its length only (unless also read elsewhere)
                self.value_reads[args[0].path] -= 1
            return self._folded(_Node(fn=_len_of(fns[0]), length_of=args[0].path), args)
        function = _PURE_FUNCTIONS[name]
        if len(fns) == 1:
            (only,) = fns
            fn: Evaluator = lambda scope: function(only(scope))  # noqa: E731
        elif len(fns) == 2:
            first, second = fns
            fn = lambda scope: function(first(scope), second(scope))  # noqa: E731
        else:
            fn = lambda scope: function(*[arg(scope) for arg in fns])  # noqa: E731
        return self._folded(_Node(fn=fn), args)

    @staticmethod
    def _folded(node: _Node, children: list[_Node]) -> _Node:
        """Constant sub-expressions are computed once here; evaluation cannot fail, so this is safe."""
        if all(child.const for child in children):
            return _constant(_guarded(node.fn)({}))
        return node


def _unknown_name(name: str) -> str:
    if name in FUNCTIONS:
        return f"'{name}' is a function; call it as {name}(…)"
    hint = difflib.get_close_matches(name, sorted(ROOTS | _LITERALS.keys()), n=1)
    suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"unknown name '{name}'{suggestion}; names start with one of: {', '.join(sorted(ROOTS))}"


def _unknown_function(name: str) -> str:
    hint = difflib.get_close_matches(name, sorted(FUNCTIONS), n=1)
    suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
    return f"unknown function '{name}'{suggestion}; available: {', '.join(sorted(FUNCTIONS))}"


def _rename_keyword_attributes(text: str) -> tuple[str, dict[int, str]]:
    """Let `event.properties.from` through: Python keywords after a dot become same-length names.

    Also refuses `#` comments, which Python would silently accept. Positions are character offsets.
    """
    renamed: dict[int, str] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return text, renamed
    chars = list(text)
    previous: tokenize.TokenInfo | None = None
    for token in tokens:
        if token.type == tokenize.COMMENT:
            raise ExprError("'#' comments are not allowed in expressions", token.start[1])
        if (
            token.type == tokenize.NAME
            and keyword.iskeyword(token.string)
            and previous is not None
            and previous.type == tokenize.OP
            and previous.string == "."
        ):
            start = token.start[1]
            renamed[start] = token.string
            chars[start : start + len(token.string)] = "_" * len(token.string)
        previous = token
    return ("".join(chars), renamed) if renamed else (text, renamed)


def _parse(source: str) -> tuple[ast.expr, _Compiler]:
    if len(source) > MAX_SOURCE_CHARS:
        raise ExprError(f"expression is too long ({len(source)} characters, at most {MAX_SOURCE_CHARS})")
    flat = source.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    text = flat.lstrip(" ")
    base = len(flat) - len(text)
    if not text.strip():
        raise ExprError("empty expression", 0)
    if "\0" in text:
        raise ExprError("NUL character in expression", base + text.index("\0"))
    try:
        shifted, renamed = _rename_keyword_attributes(text)
    except ExprError as error:
        raise ExprError(error.message, base + error.offset) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # `1and x`, "\d": Python's own style advice, not ours
            tree = ast.parse(shifted, mode="eval")
    except SyntaxError as error:
        message = (error.msg or "invalid syntax").split(" (<unknown>")[0]
        if not error.offset or (error.lineno or 1) > 1:
            # Python reports a premature end of input at column 0: point at the end instead.
            end = len(text.rstrip())
            raise ExprError(f"syntax error: unexpected end of expression ({message})", base + end) from None
        raise ExprError(f"syntax error: {message}", base + min(error.offset - 1, len(text))) from None
    except (RecursionError, MemoryError):
        raise ExprError("expression is nested too deeply", base) from None
    return tree.body, _Compiler(shifted, base, {base + k: v for k, v in renamed.items()})


def compile_expression(source: str) -> Expression:
    """Compile one expression; raises ExprError (the first error found, with its character offset)."""
    if not isinstance(source, str):
        raise ExprError(f"an expression must be a string, not {type(source).__name__}")
    body, compiler = _parse(source)
    try:
        root = compiler.compile(body)
    except RecursionError:
        raise ExprError("expression is nested too deeply", compiler.base) from None
    return Expression(
        source=source,
        roots=frozenset(compiler.roots),
        paths=frozenset(compiler.paths),
        evaluate=_guarded(root.fn),
        test=root.fn if root.safe else _guarded_test(root.fn),
        lengths=frozenset(path for path, reads in compiler.value_reads.items() if not reads),
    )


# --------------------------------------------------------------------------- templates

_INT64 = 2**63
_EXACT_FLOAT_INT = 2**53


def _json_value(value: Any, depth: int = 0) -> Any:
    """Typed `${…}` values as JSON wants them: 240 not 240.0, no NaN, no unbounded ints, own copies."""
    if depth > MAX_DEPTH:
        return None
    cv = value.__class__
    if cv is float:
        if value != value or value in (math.inf, -math.inf):
            return None
        if value.is_integer() and -_EXACT_FLOAT_INT <= value <= _EXACT_FLOAT_INT:
            return int(value)
        return value
    if cv is int:
        if -_INT64 <= value < _INT64:
            return value
        try:
            return float(value)
        except OverflowError:
            return None
    if cv is list or cv is tuple:
        return [_json_value(item, depth + 1) for item in value]
    if cv is dict:
        return {str(key): _json_value(item, depth + 1) for key, item in value.items()}
    if value is None or cv is str or cv is bool:
        return value
    return None


def _text(value: Any) -> str:
    value = _json_value(value)
    if value is None:
        return ""
    cv = value.__class__
    if cv is str:
        return value  # type: ignore[no-any-return]
    if cv is bool:
        return "true" if value else "false"
    if cv is int or cv is float:
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _split_template(text: str) -> list[str | tuple[int, str]]:
    """Text pieces and `(offset, expression)` pieces; a `}` inside a quoted string does not close."""
    pieces: list[str | tuple[int, str]] = []
    position = 0
    while True:
        start = text.find("${", position)
        if start < 0:
            break
        if start > position:
            pieces.append(text[position:start])
        end = _closing_brace(text, start + 2)
        if end < 0:
            raise ExprError("unterminated '${': missing '}'", start)
        body = text[start + 2 : end]
        if not body.strip():
            raise ExprError("empty '${}'", start)
        pieces.append((start + 2, body))
        position = end + 1
    if position < len(text):
        pieces.append(text[position:])
    return pieces


def _closing_brace(text: str, index: int) -> int:
    depth = 0
    quote = ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            if char == "}" and depth == 0:
                return index
            depth -= 1
        index += 1
    return -1


def _compile_string(text: str, roots: set[str], paths: set[tuple[str, ...]]) -> tuple[bool, Any]:
    if "${" not in text:
        return True, text
    pieces: list[str | Evaluator] = []
    for piece in _split_template(text):
        if isinstance(piece, str):
            pieces.append(piece)
            continue
        offset, body = piece
        try:
            expression = compile_expression(body)
        except ExprError as error:
            raise ExprError(error.message, offset + error.offset) from None
        roots.update(expression.roots)
        paths.update(expression.paths)
        pieces.append(expression.evaluate)
    if len(pieces) == 1:
        evaluate = pieces[0]
        assert not isinstance(evaluate, str)
        return False, lambda scope: _json_value(evaluate(scope))
    parts = tuple(pieces)

    def interpolate(scope: Scope) -> str:
        return "".join([part if isinstance(part, str) else _text(part(scope)) for part in parts])

    return False, interpolate


def _compile_value(value: Any, roots: set[str], paths: set[tuple[str, ...]]) -> tuple[bool, Any]:
    """(True, value) for a constant subtree, shared as is; (False, render) when anything is dynamic."""
    if isinstance(value, str):
        return _compile_string(value, roots, paths)
    if isinstance(value, dict):
        dynamic = []
        for key, item in value.items():
            const, compiled = _compile_value(item, roots, paths)
            if not const:
                dynamic.append((key, compiled))
        if not dynamic:
            return True, value
        fields = tuple(dynamic)

        def render_dict(scope: Scope) -> dict[Any, Any]:
            out = value.copy()
            for key, render in fields:
                out[key] = render(scope)
            return out

        return False, render_dict
    if isinstance(value, list | tuple):
        slots = []
        for index, item in enumerate(value):
            const, compiled = _compile_value(item, roots, paths)
            if not const:
                slots.append((index, compiled))
        if not slots:
            return True, value
        positions = tuple(slots)

        def render_list(scope: Scope) -> list[Any]:
            out = list(value)
            for index, render in positions:
                out[index] = render(scope)
            return out

        return False, render_list
    return True, value


def compile_template(value: Any) -> Template:
    """Compile a params tree; raises ExprError with the offset inside the string that holds the error."""
    roots: set[str] = set()
    paths: set[tuple[str, ...]] = set()
    const, compiled = _compile_value(value, roots, paths)
    render: Evaluator = (lambda _scope: value) if const else compiled
    return Template(raw=value, roots=frozenset(roots), render=render, paths=frozenset(paths))
