"""Rule files → RuleSet: the SPEC examples load, and every kind of mistake is reported at its exact spot."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import SHARED_EXAMPLES
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import ScalarString

from orchestrator.rules.durations import format_duration, parse_clock, parse_duration
from orchestrator.rules.errors import RuleError, RuleLoadError, position_in_scalar
from orchestrator.rules.loader import counter_references, load_rules

FIXTURES = Path(__file__).parent / "rules"
EXAMPLE = SHARED_EXAMPLES / "rules.yaml"


def write(folder: Path, text: str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    """The load errors with the folder part of each file name dropped, for readable expectations."""
    with pytest.raises(RuleLoadError) as caught:
        load_rules(path)
    return [f"{Path(e.file).name}:{e.line}:{e.column}: {e.message}" for e in caught.value.errors]


def rule_file(tmp_path: Path, text: str) -> list[str]:
    return errors(write(tmp_path, text))


# -- files that must load ----------------------------------------------------------------------------


def test_shared_example_loads_with_every_field() -> None:
    rules = load_rules(EXAMPLE)
    assert [r.id for r in rules.rules] == ["abandoned-cart", "nearby-store-offer", "chatbot-to-human"]
    assert [r.index for r in rules.rules] == [0, 1, 2]
    assert rules.sources == (str(EXAMPLE),)
    assert str(rules.defaults.timezone) == "Europe/Paris"
    assert rules.defaults.quiet_hours is not None
    assert (rules.defaults.quiet_hours.start_minute, rules.defaults.quiet_hours.end_minute) == (1260, 480)
    assert rules.defaults.profile_ttl_s is None
    assert rules.contact_policy.max_per_day == 3
    assert dict(rules.contact_policy.channel_max_per_day) == {"email": 1}
    (fence,) = rules.geofences
    assert (fence.id, fence.lat, fence.lon, fence.radius_m) == ("montreal-downtown", 45.5017, -73.5673, 400.0)
    (counter,) = rules.counters
    assert (counter.name, counter.on, counter.reset_on) == (
        "failed_intents",
        frozenset({"chat.intent_failed"}),
        frozenset({"chat.resolved"}),
    )

    cart, store, chat = rules.rules
    assert cart.priority == 50
    assert cart.trigger.event == "cart.item_added"
    assert cart.trigger.channels == frozenset({"web", "mobile"})
    assert cart.condition is not None and cart.condition.source == "cart.total >= 20"
    assert cart.wait is not None
    assert cart.wait.for_s == 1800
    assert cart.wait.cancel_on == frozenset({"order.completed", "cart.cleared"})
    assert cart.wait.recheck is not None and cart.wait.recheck.source == "len(cart.items) > 0"
    assert (cart.cooldown_s, cart.holdout, cart.reentry, cart.quiet_hours) == (86400, 0.0, "restart", "defer")
    assert (cart.action.type, cart.action.channel) == ("email.send", "email")
    assert cart.action.category == "marketing"
    assert cart.action.params.raw == {"template": "abandoned_cart", "total": "${cart.total}"}
    assert cart.action.context is False
    assert cart.description == "Remind by email when a cart is left for 30 minutes"

    assert store.trigger == store.trigger.__class__(event="geofence.entered", channels=None)
    assert store.cooldown_s == 12 * 3600 and store.wait is None
    assert store.action.channel == "push"

    assert (chat.priority, chat.action.type, chat.action.category, chat.action.context) == (
        100,
        "chat.handoff",
        "service",
        True,
    )
    assert chat.cooldown_s == 900
    assert chat.condition is not None and "counters" in chat.condition.roots
    assert all(len(r.version) == 12 and int(r.version, 16) >= 0 for r in rules.rules)
    assert len({r.version for r in rules.rules}) == 3
    assert len(rules.version) == 12


def test_spec_full_example_loads() -> None:
    rules = load_rules(FIXTURES / "spec-full.yaml")
    (rule,) = rules.rules
    assert rules.defaults.profile_ttl_s == 400 * 86400
    assert str(rules.defaults.timezone) == "Europe/Paris"
    assert rules.geofences[0].id == "paris-opera"
    assert rule.holdout == pytest.approx(0.10)
    assert (rule.reentry, rule.quiet_hours, rule.action.category, rule.action.context) == (
        "restart",
        "defer",
        "marketing",
        False,
    )


def test_spec_welcome_rule_loads_with_variants_and_goal() -> None:
    rules = load_rules(FIXTURES / "spec-welcome.yaml")
    (rule,) = rules.rules
    assert str(rules.defaults.timezone) == "UTC"
    assert rule.holdout == pytest.approx(0.20)
    assert [(v.id, v.weight) for v in rule.variants] == [("plain", 1.0), ("discount", 1.0)]
    assert rule.variants[0].params is None
    assert rule.variants[1].params is not None
    assert rule.variants[1].params.raw == {"template": "welcome_discount", "discount": 10}
    assert rule.goal is not None
    assert (rule.goal.event, rule.goal.within_s, rule.goal.channels) == (
        "order.completed",
        3 * 86400,
        frozenset({"web", "mobile"}),
    )
    assert rule.action.params.raw == {"template": "welcome"}


def test_folder_loads_as_one_set_in_name_order() -> None:
    rules = load_rules(FIXTURES / "folder")
    assert [Path(s).name for s in rules.sources] == ["10-base.yaml", "20-chat.yml"]
    assert [(r.id, r.index) for r in rules.rules] == [("abandoned-cart", 0), ("chatbot-to-human", 1)]
    assert str(rules.defaults.timezone) == "America/Toronto"
    assert rules.contact_policy.max_per_day == 2
    assert [g.id for g in rules.geofences] == ["downtown"]
    assert [c.name for c in rules.counters] == ["failed_intents"]
    assert rules.rules[1].trigger.channels == frozenset({"chat"})
    assert rules.rules[1].action.params.raw == {}


def test_versions_follow_content_not_layout(tmp_path: Path) -> None:
    single = load_rules(FIXTURES / "folder")
    merged = tmp_path / "merged"
    merged.mkdir()
    shutil.copy(FIXTURES / "folder" / "10-base.yaml", merged / "a.yaml")
    shutil.copy(FIXTURES / "folder" / "20-chat.yml", merged / "b.yaml")
    same = load_rules(merged)
    assert same.version == single.version
    assert [r.version for r in same.rules] == [r.version for r in single.rules]

    text = (merged / "b.yaml").read_text().replace("failed_intents >= 2", "failed_intents >= 3")
    (merged / "b.yaml").write_text(text)
    changed = load_rules(merged)
    assert changed.rules[0].version == single.rules[0].version
    assert changed.rules[1].version != single.rules[1].version
    assert changed.version != single.version


def test_yaml_1_2_keeps_on_yes_no_as_strings(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
            version: 1
            counters:
              n: {on: [yes, no]}
            rules:
              - id: r
                trigger: {event: on}
                action: {type: email.send, params: {answer: yes}}
            """,
        )
    )
    assert rules.counters[0].on == frozenset({"yes", "no"})
    assert rules.rules[0].trigger.event == "on"
    assert rules.rules[0].action.params.raw == {"answer": "yes"}


def test_optional_forms_and_defaults(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            """
            version: 1
            counters:
              visits: {on: page.viewed, reset_on: order.completed}
            rules:
              - id: r
                trigger: {event: page.viewed, channel: web}
                holdout: 12.5%
                reentry: ignore
                quiet_hours: drop
                wait: {for: 1.5h}
                variants:
                  - {id: a}
                  - {id: b, weight: 3}
                goal: {event: order.completed, within: 45m}
                action: {type: push.send, params: {n: "${counters.visits}"}}
              - id: r2
                trigger: {event: page.viewed}
                holdout: 0
                action: {type: email.send}
            """,
        )
    )
    rule, second = rules.rules
    assert rules.counters[0].reset_on == frozenset({"order.completed"})
    assert rule.trigger.channels == frozenset({"web"})
    assert rule.holdout == pytest.approx(0.125)
    assert (rule.reentry, rule.quiet_hours) == ("ignore", "drop")
    assert rule.wait is not None and rule.wait.for_s == 5400 and rule.wait.cancel_on == frozenset()
    assert [(v.id, v.weight) for v in rule.variants] == [("a", 1.0), ("b", 3.0)]
    assert rule.goal is not None and rule.goal.channels is None and rule.goal.within_s == 2700
    assert (second.priority, second.holdout, second.cooldown_s, second.description) == (0, 0.0, None, "")
    assert str(rules.defaults.timezone) == "UTC"


# -- one test per kind of error, with the exact position ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a.b
                action: {type: email.send}
            """,
            ["r.yaml:5:11: invalid YAML: while parsing a flow mapping expected ',' or '}', but got ':'"],
            id="yaml-syntax",
        ),
        pytest.param(
            """
            version: 1
            version: 1
            """,
            [
                "r.yaml:2:1: invalid YAML: while constructing a mapping found duplicate key"
                ' "version" with value "1" (original value: "1")'
            ],
            id="yaml-duplicate-key",
        ),
        pytest.param("", ["r.yaml:1:1: empty rule file: expected a mapping starting with 'version: 1'"]),
        pytest.param("- a\n", ["r.yaml:1:1: the rule file must be a mapping, got a list"]),
        pytest.param(
            """
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            ["r.yaml:1:1: missing required key 'version' in the rule file"],
            id="missing-version",
        ),
        pytest.param(
            """
            version: 2
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            ["r.yaml:1:10: unsupported version 2: this orchestrator reads version 1"],
            id="version-2",
        ),
        pytest.param(
            """
            version: 1
            rule:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            ["r.yaml:2:1: unknown key 'rule' (did you mean 'rules'?)"],
            id="unknown-top-key",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigers: {event: a}
                action: {type: email.send}
            """,
            [
                "r.yaml:3:5: missing required key 'trigger' in a rule",
                "r.yaml:4:5: unknown key 'trigers' (did you mean 'trigger'?)",
            ],
            id="unknown-rule-key",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                action: {type: email.send, colour: red}
            """,
            ["r.yaml:5:32: unknown key 'colour' (expected one of: type, category, params, context)"],
            id="unknown-nested-key-without-suggestion",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: Abandoned_Cart
                trigger: {event: a}
                action: {type: email.send}
            """,
            ["r.yaml:3:9: 'id' must be lowercase letters, digits and '-' ([a-z0-9-]+), got 'Abandoned_Cart'"],
            id="rule-id-pattern",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
              - {id: r, trigger: {event: b}, action: {type: email.send}}
            """,
            ["r.yaml:4:10: duplicate rule id 'r' (first defined at {dir}/r.yaml:3:10)"],
            id="duplicate-rule-id",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                cooldown: 30 minutes
                action: {type: email.send}
              - id: s
                trigger: {event: a}
                cooldown: 0s
                action: {type: email.send}
              - id: t
                trigger: {event: a}
                cooldown: 30
                action: {type: email.send}
            """,
            [
                "r.yaml:5:15: 'cooldown': invalid duration '30 minutes': expected a number and a unit"
                " s, m, h or d (e.g. 30m)",
                "r.yaml:9:15: 'cooldown': invalid duration '0s': must be greater than 0",
                "r.yaml:13:15: 'cooldown' must be a duration such as 30m, got an integer 30",
            ],
            id="durations",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                holdout: 150%
                action: {type: email.send}
              - id: s
                trigger: {event: a}
                holdout: 10
                action: {type: email.send}
            """,
            [
                "r.yaml:5:14: 'holdout' must be between 0% and 100%, got 150%",
                "r.yaml:9:14: 'holdout' must be a percentage such as 10%, got 10",
            ],
            id="percentages",
        ),
        pytest.param(
            """
            version: 1
            defaults:
              timezone: Europe/Pariss
              quiet_hours: {start: "25:00", end: 8}
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            [
                "r.yaml:3:13: 'timezone': unknown time zone 'Europe/Pariss' (IANA names only, e.g."
                " Europe/Paris)",
                "r.yaml:4:24: 'start': invalid time '25:00': hours must be 00-23 and minutes 00-59",
                "r.yaml:4:38: 'end' must be a time written \"HH:MM\", got an integer 8",
            ],
            id="timezone-and-quiet-hours",
        ),
        pytest.param(
            """
            version: 1
            defaults: {quiet_hours: {start: "21:00"}, ttl: 3d}
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            [
                "r.yaml:2:25: missing required key 'end' in quiet_hours",
                "r.yaml:2:43: unknown key 'ttl' (expected one of: timezone, quiet_hours, profile_ttl)",
            ],
            id="defaults-keys",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                priority: high
                trigger: {event: a}
                action: {type: email.send}
              - id: s
                priority: true
                trigger: {event: a}
                action: {type: email.send}
            """,
            [
                "r.yaml:4:15: 'priority' must be an integer, got a string 'high'",
                "r.yaml:8:15: 'priority' must be an integer, got a boolean true",
            ],
            id="priority",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                reentry: restrat
                quiet_hours: defered
                action: {type: email.send, category: promo}
            """,
            [
                "r.yaml:5:14: 'reentry' must be one of restart, ignore, got 'restrat' (did you mean"
                " 'restart'?)",
                "r.yaml:6:18: 'quiet_hours' must be one of defer, drop, ignore, got 'defered' (did you mean"
                " 'defer'?)",
                "r.yaml:7:42: 'category' must be one of marketing, service, got 'promo'",
            ],
            id="choices",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                action:
                  type: email
                  params: [a, b]
                  context: "true"
            """,
            [
                "r.yaml:6:13: 'type' must be an action type <channel>.<verb>, e.g. email.send, got 'email'",
                "r.yaml:7:15: 'params' must be a mapping, got a list",
                "r.yaml:8:16: 'context' must be true or false, got a string 'true'",
            ],
            id="action-fields",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: Cart.Item_Added, channel: [web, 7]}
                action: {type: email.send}
              - id: s
                trigger: {channel: web}
                action: {type: email.send}
            """,
            [
                "r.yaml:4:22: 'event' must be an event type (dotted lowercase, e.g. cart.item_added), got"
                " 'Cart.Item_Added'",
                "r.yaml:4:54: 'channel' must be a channel name (lowercase, e.g. web), got an integer 7",
                "r.yaml:7:14: missing required key 'event' in trigger",
            ],
            id="trigger",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                wait: {cancel_on: order.completed}
                action: {type: email.send}
              - id: s
                trigger: {event: a}
                wait: {for: 1h, cancel_on: [], recheck: 5}
                action: {type: email.send}
            """,
            [
                "r.yaml:5:11: missing required key 'for' in wait",
                "r.yaml:9:32: 'cancel_on' must not be an empty list",
                "r.yaml:9:45: 'recheck' must be a string, got an integer 5",
            ],
            id="wait",
        ),
        pytest.param(
            """
            version: 1
            geofences:
              - {id: opera, lat: 91, lon: 2.3, radius_m: 0}
              - {id: opera, lat: 48.8, lon: 2.3, radius_m: 10}
              - {id: bourse, lat: 48.8, lon: 2.3}
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            [
                "r.yaml:3:22: 'lat' must be between -90 and 90, got 91",
                "r.yaml:3:46: 'radius_m' must be greater than 0, got 0",
                "r.yaml:4:10: duplicate geofence id 'opera' (first defined at {dir}/r.yaml:3:10)",
                "r.yaml:5:5: missing required key 'radius_m' in a geofence",
            ],
            id="geofences",
        ),
        pytest.param(
            """
            version: 1
            counters:
              Failed-Intents: {on: chat.intent_failed}
              resets: {reset_on: [chat.resolved]}
              odd: {on: [chat.x], reset_on: chat.resolved, every: 2}
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            [
                "r.yaml:3:3: 'counters' must be a name like failed_intents, got 'Failed-Intents'",
                "r.yaml:4:11: missing required key 'on' in counter 'resets'",
                "r.yaml:5:48: unknown key 'every' (expected one of: on, reset_on)",
            ],
            id="counters",
        ),
        pytest.param(
            """
            version: 1
            contact_policy:
              max_per_day: -1
              channels:
                email: {max_per_day: 1.5}
                sms: {max: 1}
            rules:
              - {id: r, trigger: {event: a}, action: {type: email.send}}
            """,
            [
                "r.yaml:3:16: 'max_per_day' must be at least 0, got -1",
                "r.yaml:5:26: 'max_per_day' must be an integer, got a number 1.5",
                "r.yaml:6:10: missing required key 'max_per_day' in channel 'sms'",
                "r.yaml:6:11: unknown key 'max' (expected one of: max_per_day)",
            ],
            id="contact-policy",
        ),
        pytest.param(
            """
            version: 1
            defaults: {profile_ttl: 7d}
            rules:
              - id: r
                trigger: {event: a}
                wait: {for: 7d}
                action: {type: email.send}
              - id: s
                trigger: {event: a}
                wait: {for: 6d}
                action: {type: email.send}
            """,
            ["r.yaml:6:17: wait 'for' (7d) must be shorter than defaults.profile_ttl (7d)"],
            id="wait-longer-than-profile-ttl",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                variants:
                  - {id: holdout}
                  - {id: a, weight: 0}
                  - {id: b, params: {x: "${nope}"}}
                  - {id: b}
                  - {id: B}
                action: {type: email.send}
              - id: s
                trigger: {event: a}
                variants: []
                action: {type: email.send}
            """,
            [
                "r.yaml:6:14: variant id 'holdout' is reserved (KPI rows use it)",
                "r.yaml:7:25: 'weight' must be greater than 0, got 0",
                "r.yaml:8:32: invalid template in 'params': unknown name 'nope'…",
                "r.yaml:9:14: duplicate variant id 'b' (first defined at {dir}/r.yaml:8:14)",
                "r.yaml:10:14: 'id' must be lowercase letters, digits and '-', got 'B'",
                "r.yaml:14:15: 'variants' must not be an empty list",
            ],
            id="variants",
        ),
        pytest.param(
            """
            version: 1
            rules:
              - id: r
                trigger: {event: a}
                goal: {event: order.completed, channel: [], in: 3d}
                action: {type: email.send}
            """,
            [
                "r.yaml:5:11: missing required key 'within' in goal",
                "r.yaml:5:45: 'channel' must not be an empty list",
                "r.yaml:5:49: unknown key 'in' (expected one of: event, channel, within)",
            ],
            id="goal",
        ),
        pytest.param(
            """
            version: 1
            counters:
              visits: {on: page.viewed}
            rules:
              - id: r
                trigger: {event: a}
                condition: "counters.visits > 1 and counters.visitz > 2 and lower('counters.x') == ''"
                action: {type: email.send, params: {n: "${counters.clicks} / ${counters.visits}"}}
            """,
            [
                "r.yaml:7:50: unknown counter 'visitz' (did you mean 'visits'?)",
                "r.yaml:8:56: unknown counter 'clicks'",
            ],
            id="unknown-counter",
        ),
    ],
)
def test_error_is_reported_at_its_position(tmp_path: Path, text: str, expected: list[str]) -> None:
    """Expected messages are exact; one ending in `…` is a prefix (the expression language words the rest)."""
    got = rule_file(tmp_path, text)
    wanted = [e.replace("{dir}", str(tmp_path)) for e in expected]
    assert [g[: len(w) - 1] if w.endswith("…") else g for g, w in zip(got, wanted, strict=False)] == [
        w.removesuffix("…") for w in wanted
    ]
    assert len(got) == len(wanted), got


@pytest.mark.parametrize(
    "condition_line",
    [
        pytest.param('    condition: "cart.total >= 20 and bogus > 1"', id="double-quoted"),
        pytest.param("    condition: 'cart.total >= ''20'' and bogus > 1'", id="single-quoted-escapes"),
        pytest.param("    condition: cart.total >= 20 and bogus > 1", id="plain"),
        pytest.param('    condition: "cart.total >= \\"20\\" and \\x62ogus > 1"', id="double-quoted-escapes"),
        pytest.param('    condition: {"cart.total >= 20 and bogus > 1": 1}', id="not-a-string"),
    ],
)
def test_expression_error_position_accounts_for_quoting(tmp_path: Path, condition_line: str) -> None:
    text = "version: 1\nrules:\n  - id: r\n    trigger: {event: a}\n" + condition_line + "\n"
    text += "    action: {type: email.send}\n"
    path = tmp_path / "r.yaml"
    path.write_text(text)
    (message,) = errors(path)
    if "{" in condition_line:
        assert message == "r.yaml:5:16: 'condition' must be a string, got a mapping"
        return
    column = max(condition_line.find("bogus"), condition_line.find("\\x62ogus")) + 1
    assert message.startswith(f"r.yaml:5:{column}: invalid condition: unknown name 'bogus'")


def test_expression_error_in_block_scalar(tmp_path: Path) -> None:
    text = """
        version: 1
        rules:
          - id: r
            trigger: {event: a}
            condition: |
              cart.total >= 20
                and bogus > 1
            action: {type: email.send}
        """
    (message,) = rule_file(tmp_path, text)
    assert message.startswith("r.yaml:7:13: invalid condition: unknown name 'bogus'")


def test_every_error_of_a_file_is_reported() -> None:
    got = errors(FIXTURES / "many-errors.yaml")
    positions = [":".join(e.split(":")[1:3]) for e in got]
    assert positions == [
        "3:13",
        "5:9",
        "6:5",
        "8:17",
        "9:15",
        "10:14",
        "11:20",
        "11:58",
        "14:26",
        "15:14",
        "16:43",
    ]
    assert "many-errors.yaml:6:5: unknown key 'trigers' (did you mean 'trigger'?)" in got
    assert "many-errors.yaml:14:26: unknown counter 'missing'" in got
    assert "many-errors.yaml:16:43: 'context' must be true or false, got a string 'yes'" in got


def test_duplicate_ids_and_sections_across_files() -> None:
    folder = FIXTURES / "duplicate-ids"
    with pytest.raises(RuleLoadError) as caught:
        load_rules(folder)
    assert [str(e) for e in caught.value.errors] == [
        f"{folder}/b.yaml:7:9: duplicate rule id 'welcome' (first defined at {folder}/a.yaml:3:9)",
        f"{folder}/c.yaml:2:1: 'defaults' is already set at {folder}/b.yaml:2:1 (only one file of a set may)",
    ]


def test_profile_ttl_from_another_file_applies_to_waits(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\ndefaults: {profile_ttl: 2h}\n", "a.yaml")
    write(
        tmp_path,
        """
        version: 1
        rules:
          - id: r
            trigger: {event: a}
            wait:
              for: 3h
            action: {type: email.send}
        """,
        "b.yaml",
    )
    assert errors(tmp_path) == ["b.yaml:6:12: wait 'for' (3h) must be shorter than defaults.profile_ttl (2h)"]


def test_counters_declared_in_another_file_are_known(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\ncounters:\n  visits: {on: page.viewed}\n", "b.yaml")
    write(
        tmp_path,
        """
        version: 1
        rules:
          - {id: r, trigger: {event: a}, condition: "counters.visits > 2", action: {type: email.send}}
        """,
        "a.yaml",
    )
    assert [r.id for r in load_rules(tmp_path).rules] == ["r"]


def test_missing_path_empty_folder_and_no_rules(tmp_path: Path) -> None:
    assert errors(tmp_path / "nope.yaml") == ["nope.yaml:1:1: no such file or directory"]
    assert errors(tmp_path) == [f"{tmp_path.name}:1:1: no rule files (*.yaml, *.yml) in this folder"]
    write(tmp_path, "version: 1\nrules: []\n")
    assert errors(tmp_path) == [f"{tmp_path.name}:1:1: no rules: a rule set needs at least one rule"]


def test_rule_load_error_formats_every_error() -> None:
    error = RuleLoadError([RuleError("a.yaml", 3, 7, "boom"), RuleError("b.yaml", 1, 1, "bang")])
    assert str(error) == "a.yaml:3:7: boom\nb.yaml:1:1: bang"
    assert str(error.errors[0]) == "a.yaml:3:7: boom"


def test_counter_references_skip_string_literals() -> None:
    assert counter_references("counters.a > 1 and 'counters.b' != counters . c") == [(9, "a"), (46, "c")]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("30m", 1800), ("1.5h", 5400), ("400d", 400 * 86400), (".5m", 30)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "-5m", "0m", "5 weeks", "1e3s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_format_duration_and_clock() -> None:
    seconds = (30, 90, 1800, 5400, 86400, 1.5)
    assert [format_duration(s) for s in seconds] == ["30s", "90s", "30m", "90m", "1d", "1.5s"]
    assert (parse_clock("00:00"), parse_clock("21:00"), parse_clock("23:59")) == (0, 1260, 1439)
    for bad in ("24:00", "9:00", "12:60", "noon"):
        with pytest.raises(ValueError, match="invalid time"):
            parse_clock(bad)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("k: >\n  cart.total >= 20\n  and bogus > 1\n", id="folded"),
        pytest.param("k: |+\n    cart.total >= 20\n\n    and bogus > 1\n", id="literal-keep"),
        pytest.param("k: cart.total >= 20\n  and bogus > 1\n", id="plain-multiline"),
        pytest.param('k: "cart.total >= 20\n  and bogus > 1"\n', id="double-quoted-multiline"),
        pytest.param('k: "cart.total >= 20 \\\n  and bogus > 1"\n', id="double-quoted-escaped-newline"),
        pytest.param("k: 'cart.total >= 20\n\n  and bogus > 1'\n", id="single-quoted-blank-line"),
    ],
)
def test_position_in_multiline_scalars(source: str) -> None:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    document = yaml.load(source)
    value = document["k"]
    line, column = document.lc.value("k")
    style = value.style if isinstance(value, ScalarString) else None
    lines = source.splitlines()
    bogus = str(value).index("bogus")
    found_line, found_col = position_in_scalar(lines, line, column, style, str(value), bogus)
    assert lines[found_line][found_col : found_col + 5] == "bogus"
    for offset in range(len(value) + 2):
        position_in_scalar(lines, line, column, style, str(value), offset)


def test_hidden_and_non_yaml_files_of_a_folder_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nrules:\n  - {id: r, trigger: {event: a}, action: {type: email.send}}\n")
    write(tmp_path, "this: [is not valid", ".#r.yaml")
    write(tmp_path, "this: [is not valid", "notes.txt")
    rules = load_rules(tmp_path)
    assert [Path(s).name for s in rules.sources] == ["r.yaml"]
