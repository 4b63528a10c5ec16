"""Rule files (SPEC §3, §5, §7) → the typed `RuleSet` of `orchestrator.rules.model`.

Loading is all-or-nothing, and a refused set must tell its author everything that is wrong in
one go: the walk never stops at the first problem, it records a `RuleError` with the exact
`file:line:column` and carries on, and only a set with no error at all is built. YAML 1.2 (the
ruamel.yaml round-trip loader) keeps `on`, `yes` and `no` as plain strings and gives the position
of every key, value and list item.

Decisions beyond the SPEC text:
- a percentage is written with `%` (`10%`, `12.5%`, 0–100); a bare number is refused (is `0.1`
  ten percent or a tenth of one?), except `0`;
- every file carries `version: 1`; hidden files (`.name.yaml`) of a folder are skipped;
- lists of event types or channels (`cancel_on`, `reset_on`, counters' `on`, `channel`) also accept
  one bare string;
- a variant's `weight` defaults to 1.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import ScalarString

from orchestrator.rules.durations import parse_clock, parse_duration
from orchestrator.rules.errors import RuleError, RuleLoadError, position_in_scalar
from orchestrator.rules.expr import ExprError, Expression, Template, compile_expression, compile_template
from orchestrator.rules.model import (
    ActionSpec,
    ContactPolicy,
    Counter,
    Defaults,
    Geofence,
    Goal,
    QuietHours,
    Rule,
    RuleSet,
    Trigger,
    Variant,
    Wait,
)

__all__ = ["RuleError", "RuleLoadError", "counter_references", "load_rules", "rule_files"]

SUPPORTED_VERSION = 1

TOP_KEYS = ("version", "defaults", "contact_policy", "geofences", "counters", "rules")
DEFAULTS_KEYS = ("timezone", "quiet_hours", "profile_ttl")
QUIET_HOURS_KEYS = ("start", "end")
POLICY_KEYS = ("max_per_day", "channels")
CHANNEL_POLICY_KEYS = ("max_per_day",)
GEOFENCE_KEYS = ("id", "lat", "lon", "radius_m")
COUNTER_KEYS = ("on", "reset_on")
RULE_KEYS = (
    "id",
    "description",
    "priority",
    "trigger",
    "condition",
    "wait",
    "reentry",
    "cooldown",
    "holdout",
    "quiet_hours",
    "action",
    "variants",
    "goal",
)
TRIGGER_KEYS = ("event", "channel")
WAIT_KEYS = ("for", "cancel_on", "recheck")
ACTION_KEYS = ("type", "category", "params", "context")
VARIANT_KEYS = ("id", "weight", "params")
GOAL_KEYS = ("event", "channel", "within")

REENTRY_MODES = ("restart", "ignore")
QUIET_HOURS_MODES = ("defer", "drop", "ignore")
CATEGORIES = ("marketing", "service")
RESERVED_VARIANT_IDS = ("default", "holdout")

RULE_ID = re.compile(r"^[a-z0-9-]+$")
GEOFENCE_ID = re.compile(r"^[a-z0-9_-]+$")
COUNTER_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
EVENT_TYPE = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)*$")
ACTION_TYPE = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)+$")
CHANNEL = re.compile(r"^[a-z0-9_-]+$")
PERCENTAGE = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*%$")

_COUNTER_REF = re.compile(r"\bcounters\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_STRING_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_TEMPLATE_PART = re.compile(r"\$\{(.*?)\}", re.DOTALL)

T = TypeVar("T")


def counter_references(source: str) -> list[tuple[int, str]]:
    """(offset, name) of every `counters.<name>` an expression reads, string literals left out.

    `Expression` exposes only its roots; which counters it reads is needed to refuse a rule
    that reads a counter nobody declared (it would silently be 0 forever).
    """
    blanked = _STRING_LITERAL.sub(lambda m: " " * len(m.group()), source)
    return [(m.start(1), m.group(1)) for m in _COUNTER_REF.finditer(blanked)]


def template_counter_references(text: str) -> list[tuple[int, str]]:
    """Counter references inside the `${…}` parts of one template string, as offsets in it."""
    return [
        (part.start(1) + offset, name)
        for part in _TEMPLATE_PART.finditer(text)
        for offset, name in counter_references(part.group(1))
    ]


def rule_files(path: Path) -> list[Path]:
    """The files a path stands for: itself, or a folder's `*.yaml`/`*.yml` sorted by name."""
    if path.is_dir():
        return sorted(
            (p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
            key=lambda p: p.name,
        )
    return [path]


def load_rules(path: str | Path) -> RuleSet:
    """Load a rule file or a folder of them as one set; raises `RuleLoadError` listing every error."""
    root = Path(path)
    if not root.exists():
        raise RuleLoadError([RuleError(str(root), 1, 1, "no such file or directory")])
    files = [p for p in rule_files(root) if not p.name.startswith(".")]
    if not files:
        raise RuleLoadError([RuleError(str(root), 1, 1, "no rule files (*.yaml, *.yml) in this folder")])
    builder = _SetBuilder(str(root))
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            builder.errors.append(RuleError(str(file), 1, 1, f"cannot read file: {exc}"))
            continue
        builder.add_file(str(file), text)
    return builder.finish()


@dataclass(frozen=True, slots=True)
class _Node:
    """A YAML value and where it starts (0-based, as ruamel gives it)."""

    value: Any
    line: int
    col: int
    style: str | None = None


@dataclass(frozen=True, slots=True)
class _Where:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line + 1}:{self.col + 1}"

    def error(self, message: str) -> RuleError:
        return RuleError(self.file, self.line + 1, self.col + 1, message)


@dataclass(slots=True)
class _PendingWait:
    where: _Where
    seconds: float
    text: str


@dataclass(slots=True)
class _CounterRef:
    """A `counters.<name>` read; checked once every file has declared its counters."""

    where: _Where
    name: str


@dataclass(slots=True)
class _SetBuilder:
    """Everything gathered across the files of one set, and the checks that span files."""

    root: str
    errors: list[RuleError] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    defaults: Defaults | None = None
    defaults_where: _Where | None = None
    defaults_plain: Any = None
    policy: ContactPolicy | None = None
    policy_where: _Where | None = None
    policy_plain: Any = None
    geofences: list[Geofence] = field(default_factory=list)
    geofence_where: dict[str, _Where] = field(default_factory=dict)
    geofences_plain: list[Any] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    counter_where: dict[str, _Where] = field(default_factory=dict)
    counters_plain: dict[str, Any] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    rule_where: dict[str, _Where] = field(default_factory=dict)
    rules_plain: list[Any] = field(default_factory=list)
    rule_count: int = 0
    waits: list[_PendingWait] = field(default_factory=list)
    counter_refs: list[_CounterRef] = field(default_factory=list)

    def add_file(self, file: str, text: str) -> None:
        self.sources.append(file)
        _FileReader(self, file, text).read()

    def finish(self) -> RuleSet:
        if self.rule_count == 0 and not self.errors:
            self.errors.append(RuleError(self.root, 1, 1, "no rules: a rule set needs at least one rule"))
        declared = set(self.counter_where)
        for ref in self.counter_refs:
            if ref.name not in declared:
                message = f"unknown counter '{ref.name}'{_suggestion(ref.name, declared)}"
                self.errors.append(ref.where.error(message))
        ttl = self.defaults.profile_ttl_s if self.defaults else None
        ttl_text = _plain_text(self.defaults_plain, "profile_ttl")
        for wait in self.waits:
            if ttl is not None and wait.seconds >= ttl:
                message = f"wait 'for' ({wait.text}) must be shorter than defaults.profile_ttl ({ttl_text})"
                self.errors.append(wait.where.error(message))
        if self.errors:
            raise RuleLoadError(sorted(self.errors, key=_error_order(self.sources)))
        canonical = [
            self.defaults_plain,
            self.policy_plain,
            self.geofences_plain,
            self.counters_plain,
            self.rules_plain,
        ]
        return RuleSet(
            version=_digest(canonical),
            rules=tuple(self.rules),
            defaults=self.defaults or Defaults(),
            contact_policy=self.policy or ContactPolicy(),
            geofences=tuple(self.geofences),
            counters=tuple(self.counters),
            sources=tuple(self.sources),
        )


class _FileReader:
    """Walks one file's YAML, recording errors on the builder and results into it."""

    def __init__(self, builder: _SetBuilder, file: str, text: str) -> None:
        self.builder = builder
        self.file = file
        self.text = text
        self.lines = text.splitlines()

    # -- reporting -------------------------------------------------------------------------------

    def error_count(self) -> int:
        return len(self.builder.errors)

    def error(self, node: _Node, message: str) -> None:
        self.builder.errors.append(RuleError(self.file, node.line + 1, node.col + 1, message))

    def error_at_offset(self, node: _Node, offset: int, message: str) -> None:
        line, col = self.offset_position(node, offset)
        self.builder.errors.append(RuleError(self.file, line + 1, col + 1, message))

    def offset_position(self, node: _Node, offset: int) -> tuple[int, int]:
        return position_in_scalar(self.lines, node.line, node.col, node.style, str(node.value), offset)

    def where(self, node: _Node) -> _Where:
        return _Where(self.file, node.line, node.col)

    # -- structure -------------------------------------------------------------------------------

    def read(self) -> None:
        try:
            data = YAML(typ="rt", pure=True)
            data.preserve_quotes = True
            document = data.load(self.text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line, mark.column) if mark is not None else (0, 0)
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            self.error(_Node(None, line, col), f"invalid YAML: {problem}")
            return
        except YAMLError as exc:
            self.error(_Node(None, 0, 0), f"invalid YAML: {exc}")
            return
        root = _Node(document, 0, 0)
        if document is None:
            self.error(root, "empty rule file: expected a mapping starting with 'version: 1'")
            return
        fields = self.fields(root, "the rule file", TOP_KEYS, required=("version",))
        if fields is None:
            return
        if "version" in fields:
            self.version(fields["version"])
        if "defaults" in fields:
            self.defaults(fields["defaults"], self.key_node(root, "defaults"))
        if "contact_policy" in fields:
            self.contact_policy(fields["contact_policy"], self.key_node(root, "contact_policy"))
        if "geofences" in fields:
            for item in self.items(fields["geofences"], "geofences"):
                self.geofence(item)
        if "counters" in fields:
            self.counters(fields["counters"])
        if "rules" in fields:
            for item in self.items(fields["rules"], "rules"):
                self.rule(item)

    def fields(
        self, node: _Node, what: str, allowed: Sequence[str], required: Sequence[str] = ()
    ) -> dict[str, _Node] | None:
        """The known keys of a mapping as nodes; unknown keys and missing required ones are errors."""
        mapping = node.value
        if not isinstance(mapping, CommentedMap):
            self.error(node, f"{what} must be a mapping, got {_type_name(mapping)}")
            return None
        found: dict[str, _Node] = {}
        for key in mapping:
            if isinstance(key, str) and key in allowed:
                found[key] = self.child(node, key)
            else:
                hint = _suggestion(str(key), allowed) or f" (expected one of: {', '.join(allowed)})"
                self.error(self.key_node(node, key), f"unknown key '{key}'{hint}")
        for key in required:
            if key not in mapping:
                self.error(node, f"missing required key '{key}' in {what}")
        return found

    def child(self, node: _Node, key: Any) -> _Node:
        mapping: CommentedMap = node.value
        value = mapping[key]
        try:
            line, col = mapping.lc.value(key) if value is not None else mapping.lc.key(key)
        except (KeyError, TypeError):
            line, col = node.line, node.col
        return _Node(value, line, col, _style(value))

    def key_node(self, node: _Node, key: Any) -> _Node:
        try:
            line, col = node.value.lc.key(key)
        except (KeyError, TypeError, AttributeError):
            line, col = node.line, node.col
        return _Node(key, line, col)

    def items(self, node: _Node, what: str) -> list[_Node]:
        seq = node.value
        if not isinstance(seq, CommentedSeq):
            self.error(node, f"'{what}' must be a list, got {_type_name(seq)}")
            return []
        out = []
        for index, value in enumerate(seq):
            try:
                line, col = seq.lc.item(index)
            except (KeyError, TypeError):
                line, col = node.line, node.col
            out.append(_Node(value, line, col, _style(value)))
        return out

    # -- scalars ---------------------------------------------------------------------------------

    def check(self, node: _Node, key: str, parse: Callable[[Any], T]) -> T | None:
        """Run a parser that raises ValueError with the author-facing message; record it as an error."""
        try:
            return parse(node.value)
        except ValueError as exc:
            self.error(node, f"'{key}': {exc}")
            return None

    def string(self, node: _Node, key: str) -> str | None:
        if not isinstance(node.value, str):
            self.error(node, f"'{key}' must be a string, got {_type_name(node.value)}")
            return None
        return str(node.value)

    def matching(self, node: _Node, key: str, pattern: re.Pattern[str], shape: str) -> str | None:
        if not isinstance(node.value, str):
            self.error(node, f"'{key}' must be {shape}, got {_type_name(node.value)}")
            return None
        text = str(node.value)
        if not pattern.fullmatch(text):
            self.error(node, f"'{key}' must be {shape}, got {text!r}")
            return None
        return text

    def integer(self, node: _Node, key: str, minimum: int | None = None) -> int | None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node, f"'{key}' must be an integer, got {_type_name(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node, f"'{key}' must be at least {minimum}, got {value}")
            return None
        return int(value)

    def number(self, node: _Node, key: str, low: float, high: float, low_open: bool = False) -> float | None:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(node, f"'{key}' must be a number, got {_type_name(value)}")
            return None
        number = float(value)
        if number < low or number > high or (low_open and number == low):
            open_ended = low_open and high == math.inf
            bounds = f"greater than {low:g}" if open_ended else f"between {low:g} and {high:g}"
            self.error(node, f"'{key}' must be {bounds}, got {number:g}")
            return None
        return number

    def positive(self, node: _Node, key: str) -> float | None:
        return self.number(node, key, 0, math.inf, low_open=True)

    def optional(self, fields: dict[str, _Node], key: str, parse: Callable[[_Node, str], T], default: T) -> T:
        """`parse` the key if present (None on error), else the default."""
        return parse(fields[key], key) if key in fields else default

    def boolean(self, node: _Node, key: str) -> bool | None:
        if not isinstance(node.value, bool):
            self.error(node, f"'{key}' must be true or false, got {_type_name(node.value)}")
            return None
        return node.value

    def choice(self, node: _Node, key: str, options: Sequence[str]) -> str | None:
        text = self.string(node, key)
        if text is not None and text not in options:
            hint = _suggestion(text, options)
            self.error(node, f"'{key}' must be one of {', '.join(options)}, got {text!r}{hint}")
            return None
        return text

    def duration(self, node: _Node, key: str) -> float | None:
        if not isinstance(node.value, str):
            self.error(node, f"'{key}' must be a duration such as 30m, got {_type_name(node.value)}")
            return None
        return self.check(node, key, parse_duration)

    def percentage(self, node: _Node, key: str) -> float | None:
        value = node.value
        if value == 0 and isinstance(value, int) and not isinstance(value, bool):
            return 0.0
        match = PERCENTAGE.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            self.error(node, f"'{key}' must be a percentage such as 10%, got {value!r}")
            return None
        percent = float(match.group(1))
        if percent > 100:
            self.error(node, f"'{key}' must be between 0% and 100%, got {value}")
            return None
        return percent / 100

    def names(self, node: _Node, key: str, pattern: re.Pattern[str], shape: str) -> frozenset[str] | None:
        """A string or a non-empty list of strings matching `pattern`."""
        if isinstance(node.value, CommentedSeq):
            items = self.items(node, key)
            if not items:
                self.error(node, f"'{key}' must not be an empty list")
                return None
        elif isinstance(node.value, str):
            items = [node]
        else:
            self.error(node, f"'{key}' must be {shape} or a list of them, got {_type_name(node.value)}")
            return None
        values = [self.matching(item, key, pattern, shape) for item in items]
        if any(v is None for v in values):
            return None
        return frozenset(v for v in values if v is not None)

    def event_types(self, node: _Node, key: str) -> frozenset[str] | None:
        return self.names(node, key, EVENT_TYPE, "an event type (dotted lowercase, e.g. cart.item_added)")

    def event_type(self, node: _Node, key: str) -> str | None:
        return self.matching(node, key, EVENT_TYPE, "an event type (dotted lowercase, e.g. cart.item_added)")

    def channels(self, node: _Node, key: str) -> frozenset[str] | None:
        return self.names(node, key, CHANNEL, "a channel name (lowercase, e.g. web)")

    def expression(self, node: _Node, key: str) -> Expression | None:
        source = self.string(node, key)
        if source is None:
            return None
        try:
            expression = compile_expression(source)
        except ExprError as exc:
            self.error_at_offset(node, exc.offset, f"invalid {key}: {exc.message}")
            return None
        if "counters" in expression.roots:
            self.note_counters(node, counter_references(source))
        return expression

    def template(self, node: _Node, key: str) -> Template | None:
        """Compile a params mapping; each string in it is checked alone so errors point into it."""
        if not isinstance(node.value, CommentedMap):
            self.error(node, f"'{key}' must be a mapping, got {_type_name(node.value)}")
            return None
        before = self.error_count()
        for leaf in self.string_leaves(node):
            try:
                compiled = compile_template(str(leaf.value))
            except ExprError as exc:
                self.error_at_offset(leaf, exc.offset, f"invalid template in '{key}': {exc.message}")
                continue
            if "counters" in compiled.roots:
                self.note_counters(leaf, template_counter_references(str(leaf.value)))
        if self.error_count() > before:
            return None
        try:
            return compile_template(_plain(node.value))
        except ExprError as exc:
            self.error(node, f"invalid template in '{key}': {exc.message}")
            return None

    def string_leaves(self, node: _Node) -> Iterable[_Node]:
        if isinstance(node.value, CommentedMap):
            for key in node.value:
                yield from self.string_leaves(self.child(node, key))
        elif isinstance(node.value, CommentedSeq):
            for item in self.items(node, "params"):
                yield from self.string_leaves(item)
        elif isinstance(node.value, str):
            yield node

    def note_counters(self, node: _Node, refs: list[tuple[int, str]]) -> None:
        for offset, name in refs:
            line, col = self.offset_position(node, offset)
            self.builder.counter_refs.append(_CounterRef(_Where(self.file, line, col), name))

    # -- sections --------------------------------------------------------------------------------

    def version(self, node: _Node) -> None:
        if isinstance(node.value, bool) or node.value != SUPPORTED_VERSION:
            self.error(node, f"unsupported version {node.value!r}: this orchestrator reads version 1")

    def single_section(self, key_node: _Node, where: _Where | None) -> bool:
        """`defaults` and `contact_policy` may be set by one file of a set only."""
        if where is None:
            return True
        self.error(key_node, f"'{key_node.value}' is already set at {where} (only one file of a set may)")
        return False

    def defaults(self, node: _Node, key_node: _Node) -> None:
        builder = self.builder
        if not self.single_section(key_node, builder.defaults_where):
            return
        builder.defaults_where = self.where(key_node)
        fields = self.fields(node, "defaults", DEFAULTS_KEYS)
        if fields is None:
            return
        before = self.error_count()
        timezone = ZoneInfo("UTC")
        if "timezone" in fields:
            timezone = self.timezone(fields["timezone"]) or timezone
        quiet_hours = None
        if "quiet_hours" in fields:
            quiet_hours = self.quiet_hours(fields["quiet_hours"])
        ttl = None
        if "profile_ttl" in fields:
            ttl = self.duration(fields["profile_ttl"], "profile_ttl")
        if self.error_count() == before:
            builder.defaults = Defaults(timezone=timezone, quiet_hours=quiet_hours, profile_ttl_s=ttl)
            builder.defaults_plain = _plain(node.value)

    def timezone(self, node: _Node) -> ZoneInfo | None:
        name = self.string(node, "timezone")
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(node, f"'timezone': unknown time zone {name!r} (IANA names only, e.g. Europe/Paris)")
            return None

    def quiet_hours(self, node: _Node) -> QuietHours | None:
        before = self.error_count()
        fields = self.fields(node, "quiet_hours", QUIET_HOURS_KEYS, required=QUIET_HOURS_KEYS)
        if fields is None:
            return None
        start = self.optional(fields, "start", self.clock, None)
        end = self.optional(fields, "end", self.clock, None)
        if self.error_count() > before or start is None or end is None:
            return None
        return QuietHours(start_minute=start, end_minute=end)

    def clock(self, node: _Node, key: str) -> int | None:
        if not isinstance(node.value, str):
            self.error(node, f"'{key}' must be a time written \"HH:MM\", got {_type_name(node.value)}")
            return None
        return self.check(node, key, parse_clock)

    def contact_policy(self, node: _Node, key_node: _Node) -> None:
        builder = self.builder
        if not self.single_section(key_node, builder.policy_where):
            return
        builder.policy_where = self.where(key_node)
        fields = self.fields(node, "contact_policy", POLICY_KEYS)
        if fields is None:
            return
        before = self.error_count()
        max_per_day = None
        if "max_per_day" in fields:
            max_per_day = self.integer(fields["max_per_day"], "max_per_day", minimum=0)
        per_channel: dict[str, int] = {}
        if "channels" in fields:
            per_channel = self.channel_caps(fields["channels"])
        if self.error_count() == before:
            builder.policy = ContactPolicy(
                max_per_day=max_per_day, channel_max_per_day=MappingProxyType(per_channel)
            )
            builder.policy_plain = _plain(node.value)

    def channel_caps(self, node: _Node) -> dict[str, int]:
        if not isinstance(node.value, CommentedMap):
            self.error(node, f"'channels' must be a mapping of channel to caps, got {_type_name(node.value)}")
            return {}
        caps: dict[str, int] = {}
        for name in node.value:
            channel = self.matching(self.key_node(node, name), "channels", CHANNEL, "a channel name")
            fields = self.fields(
                self.child(node, name), f"channel '{name}'", CHANNEL_POLICY_KEYS, required=CHANNEL_POLICY_KEYS
            )
            if channel is None or not fields or "max_per_day" not in fields:
                continue
            cap = self.integer(fields["max_per_day"], "max_per_day", minimum=0)
            if cap is not None:
                caps[channel] = cap
        return caps

    def geofence(self, node: _Node) -> None:
        builder = self.builder
        before = self.error_count()
        fields = self.fields(node, "a geofence", GEOFENCE_KEYS, required=GEOFENCE_KEYS)
        if fields is None:
            return
        fence_id = self.optional(fields, "id", self.geofence_id, None)
        lat = self.optional(fields, "lat", lambda n, k: self.number(n, k, -90, 90), None)
        lon = self.optional(fields, "lon", lambda n, k: self.number(n, k, -180, 180), None)
        radius = self.optional(fields, "radius_m", self.positive, None)
        if self.error_count() > before or fence_id is None or lat is None or lon is None or radius is None:
            return
        builder.geofences.append(Geofence(id=fence_id, lat=lat, lon=lon, radius_m=radius))
        builder.geofences_plain.append(_plain(node.value))

    def geofence_id(self, node: _Node, key: str) -> str | None:
        fence_id = self.matching(node, key, GEOFENCE_ID, "lowercase letters, digits, '-' or '_'")
        if fence_id is None:
            return None
        first = self.builder.geofence_where.get(fence_id)
        if first is not None:
            self.error(node, f"duplicate geofence id '{fence_id}' (first defined at {first})")
            return None
        self.builder.geofence_where[fence_id] = self.where(node)
        return fence_id

    def counters(self, node: _Node) -> None:
        builder = self.builder
        if not isinstance(node.value, CommentedMap):
            self.error(node, f"'counters' must be a mapping, got {_type_name(node.value)}")
            return
        for name in node.value:
            key_node = self.key_node(node, name)
            valid_name = self.matching(key_node, "counters", COUNTER_NAME, "a name like failed_intents")
            if valid_name is not None and valid_name in builder.counter_where:
                first = builder.counter_where[valid_name]
                self.error(key_node, f"duplicate counter '{name}' (first declared at {first})")
                continue
            if valid_name is not None:
                builder.counter_where[valid_name] = self.where(key_node)
            value = self.child(node, name)
            before = self.error_count()
            fields = self.fields(value, f"counter '{name}'", COUNTER_KEYS, required=("on",))
            if fields is None:
                continue
            on = self.optional(fields, "on", self.event_types, None)
            reset_on = self.optional(fields, "reset_on", self.event_types, frozenset())
            if self.error_count() > before or valid_name is None or on is None or reset_on is None:
                continue
            builder.counters.append(Counter(name=valid_name, on=on, reset_on=reset_on))
            builder.counters_plain[valid_name] = _plain(value.value)

    # -- rules -----------------------------------------------------------------------------------

    def rule(self, node: _Node) -> None:
        builder = self.builder
        index = builder.rule_count
        builder.rule_count += 1
        before = self.error_count()
        fields = self.fields(node, "a rule", RULE_KEYS, required=("id", "trigger", "action"))
        if fields is None:
            return
        rule_id = self.rule_id(fields["id"]) if "id" in fields else None
        trigger = self.trigger(fields["trigger"]) if "trigger" in fields else None
        action = self.action(fields["action"]) if "action" in fields else None
        options: dict[str, Any] = {}
        if "description" in fields:
            options["description"] = self.string(fields["description"], "description")
        if "priority" in fields:
            options["priority"] = self.integer(fields["priority"], "priority")
        if "condition" in fields:
            options["condition"] = self.expression(fields["condition"], "condition")
        if "wait" in fields:
            options["wait"] = self.wait(fields["wait"])
        if "reentry" in fields:
            options["reentry"] = self.choice(fields["reentry"], "reentry", REENTRY_MODES)
        if "cooldown" in fields:
            options["cooldown_s"] = self.duration(fields["cooldown"], "cooldown")
        if "holdout" in fields:
            options["holdout"] = self.percentage(fields["holdout"], "holdout")
        if "quiet_hours" in fields:
            options["quiet_hours"] = self.choice(fields["quiet_hours"], "quiet_hours", QUIET_HOURS_MODES)
        if "variants" in fields:
            options["variants"] = self.variants(fields["variants"])
        if "goal" in fields:
            options["goal"] = self.goal(fields["goal"])
        if self.error_count() > before or rule_id is None or trigger is None or action is None:
            return
        plain = _plain(node.value)
        builder.rules.append(
            Rule(id=rule_id, index=index, version=_digest(plain), trigger=trigger, action=action, **options)
        )
        builder.rules_plain.append(plain)

    def rule_id(self, node: _Node) -> str | None:
        rule_id = self.matching(node, "id", RULE_ID, "lowercase letters, digits and '-' ([a-z0-9-]+)")
        if rule_id is None:
            return None
        first = self.builder.rule_where.get(rule_id)
        if first is not None:
            self.error(node, f"duplicate rule id '{rule_id}' (first defined at {first})")
            return None
        self.builder.rule_where[rule_id] = self.where(node)
        return rule_id

    def trigger(self, node: _Node) -> Trigger | None:
        before = self.error_count()
        fields = self.fields(node, "trigger", TRIGGER_KEYS, required=("event",))
        if fields is None:
            return None
        event = self.optional(fields, "event", self.event_type, None)
        channels = self.optional(fields, "channel", self.channels, None)
        if self.error_count() > before or event is None:
            return None
        return Trigger(event=event, channels=channels)

    def wait(self, node: _Node) -> Wait | None:
        before = self.error_count()
        fields = self.fields(node, "wait", WAIT_KEYS, required=("for",))
        if fields is None:
            return None
        seconds = self.optional(fields, "for", self.duration, None)
        cancel_on = self.optional(fields, "cancel_on", self.event_types, frozenset())
        recheck = self.optional(fields, "recheck", self.expression, None)
        if self.error_count() > before or seconds is None or cancel_on is None:
            return None
        self.builder.waits.append(_PendingWait(self.where(fields["for"]), seconds, str(fields["for"].value)))
        return Wait(for_s=seconds, cancel_on=cancel_on, recheck=recheck)

    def action(self, node: _Node) -> ActionSpec | None:
        before = self.error_count()
        fields = self.fields(node, "action", ACTION_KEYS, required=("type",))
        if fields is None:
            return None
        action_type = self.optional(
            fields,
            "type",
            lambda n, k: self.matching(n, k, ACTION_TYPE, "an action type <channel>.<verb>, e.g. email.send"),
            None,
        )
        category = self.optional(fields, "category", lambda n, k: self.choice(n, k, CATEGORIES), "marketing")
        params = self.template(fields["params"], "params") if "params" in fields else compile_template({})
        context = self.optional(fields, "context", self.boolean, False)
        if self.error_count() > before or action_type is None or params is None:
            return None
        return ActionSpec(
            type=action_type,
            category="service" if category == "service" else "marketing",
            params=params,
            context=bool(context),
        )

    def variants(self, node: _Node) -> tuple[Variant, ...] | None:
        items = self.items(node, "variants")
        if isinstance(node.value, CommentedSeq) and not items:
            self.error(node, "'variants' must not be an empty list")
        variants: list[Variant] = []
        seen: dict[str, _Where] = {}
        for item in items:
            before = self.error_count()
            fields = self.fields(item, "a variant", VARIANT_KEYS, required=("id",))
            if fields is None:
                continue
            variant_id = self.optional(fields, "id", lambda n, k: self.variant_id(n, k, seen), None)
            weight = self.optional(fields, "weight", self.positive, 1.0)
            params = self.optional(fields, "params", self.template, None)
            if self.error_count() > before or variant_id is None or weight is None:
                continue
            variants.append(Variant(id=variant_id, weight=weight, params=params))
        return tuple(variants)

    def variant_id(self, node: _Node, key: str, seen: dict[str, _Where]) -> str | None:
        variant_id = self.matching(node, key, RULE_ID, "lowercase letters, digits and '-'")
        if variant_id is None:
            return None
        if variant_id in RESERVED_VARIANT_IDS:
            self.error(node, f"variant id '{variant_id}' is reserved (KPI rows use it)")
            return None
        if variant_id in seen:
            self.error(node, f"duplicate variant id '{variant_id}' (first defined at {seen[variant_id]})")
            return None
        seen[variant_id] = self.where(node)
        return variant_id

    def goal(self, node: _Node) -> Goal | None:
        before = self.error_count()
        fields = self.fields(node, "goal", GOAL_KEYS, required=("event", "within"))
        if fields is None:
            return None
        event = self.optional(fields, "event", self.event_type, None)
        within = self.optional(fields, "within", self.duration, None)
        channels = self.optional(fields, "channel", self.channels, None)
        if self.error_count() > before or event is None or within is None:
            return None
        return Goal(event=event, within_s=within, channels=channels)


def _style(value: Any) -> str | None:
    return value.style if isinstance(value, ScalarString) else None


def _type_name(value: Any) -> str:
    """What the author wrote, in YAML words: `a string 'yes'`, `an integer 5`, `a mapping`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"an integer {int(value)}"
    if isinstance(value, float):
        return f"a number {float(value):g}"
    if isinstance(value, str):
        return f"a string {str(value)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__} {value}"


def _suggestion(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _plain(value: Any) -> Any:
    """The YAML data without ruamel's position-carrying types: what a rule's version hashes."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return str(value)


def _plain_text(plain: Any, key: str) -> str:
    return str(plain.get(key)) if isinstance(plain, dict) else ""


def _digest(plain: Any) -> str:
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _error_order(sources: list[str]) -> Callable[[RuleError], tuple[int, int, int]]:
    rank = {name: i for i, name in enumerate(sources)}
    return lambda e: (rank.get(e.file, -1), e.line, e.column)
