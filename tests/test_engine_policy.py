"""SPEC §2/§3 decision policy: cooldown, caps, quiet hours, consent, service actions, holdout,
priority arbitration, duplicates, action ids, `${…}` params and the context snapshot."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import at, ev, load, run

from orchestrator.engine import hashing


def _rule(rule_id: str, *, event: str = "go", type_: str = "email.send", extra: str = "") -> str:
    lines = [f"- id: {rule_id}", f"  trigger: {{event: {event}}}"]
    lines += [f"  {line}" for line in extra.strip().splitlines()]
    lines.append(f"  action: {{type: {type_}, params: {{}}}}")
    return "\n".join(lines)


# -- cooldown ---------------------------------------------------------------------------------


def test_cooldown_applies_to_service_actions_too(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        _rule("svc", extra="cooldown: 1h", type_="chat.handoff").replace(
            "params: {}}", "category: service, params: {}}"
        ),
    )
    outcome = run(rules, [ev("go", 0), ev("go", "30m"), ev("go", "1h")])
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z"]
    assert [s.reason for s in outcome.suppressed] == ["cooldown"]


def test_cooldown_is_per_customer(tmp_path: Path) -> None:
    rules = load(tmp_path, _rule("r", extra="cooldown: 1h"))
    outcome = run(rules, [ev("go", 0, cid="a"), ev("go", 60, cid="b")])
    assert [a.customer_id for a in outcome.actions] == ["a", "b"]


def test_suppressed_decisions_do_not_restart_cooldown(tmp_path: Path) -> None:
    """A cooldown-suppressed trigger at 09:50 does not push the next allowed one past 10:00."""
    rules = load(tmp_path, _rule("r", extra="cooldown: 1h"))
    outcome = run(rules, [ev("go", 0), ev("go", "50m"), ev("go", "1h")])
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T09:00:00Z", "2026-05-04T10:00:00Z"]


def test_cap_suppressed_decision_does_not_start_cooldown(tmp_path: Path) -> None:
    header = "contact_policy: {max_per_day: 1}"
    rules = load(
        tmp_path, _rule("first", event="warm") + "\n" + _rule("r", extra="cooldown: 48h"), header=header
    )
    outcome = run(rules, [ev("warm", 0), ev("go", "1h"), ev("go", "25h")])
    assert [(a.rule_id, a.decided_at) for a in outcome.actions] == [
        ("first", "2026-05-04T09:00:00Z"),
        ("r", "2026-05-05T10:00:00Z"),
    ]
    assert [(s.rule_id, s.reason) for s in outcome.suppressed] == [("r", "cap")]


def test_cooldown_runs_from_a_held_out_action(tmp_path: Path) -> None:
    rules = load(tmp_path, _rule("r", extra="cooldown: 1h\nholdout: 100%"))
    outcome = run(rules, [ev("go", 0), ev("go", "30m")])
    assert [a.status for a in outcome.actions] == ["held_out"]
    assert [s.reason for s in outcome.suppressed] == ["cooldown"]


# -- contact-policy caps ----------------------------------------------------------------------

CAPS = "contact_policy:\n  max_per_day: 2\n  channels:\n    email: {max_per_day: 1}"


def test_total_and_per_channel_caps(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "\n".join([_rule("mail"), _rule("push", type_="push.send"), _rule("sms", type_="sms.send")]),
        header=CAPS,
    )
    outcome = run(rules, [ev("go", 0), ev("go", "1m")])
    assert [a.rule_id for a in outcome.actions] == ["mail", "push"]
    assert [(s.rule_id, s.reason) for s in outcome.suppressed] == [
        ("sms", "cap"),
        ("mail", "cap"),
        ("push", "cap"),
        ("sms", "cap"),
    ]


def test_cap_window_is_rolling_24h_open_at_the_start(tmp_path: Path) -> None:
    """(now − 24 h, now]: an email exactly 24 h ago no longer counts; one 24 h − 1 s ago does."""
    rules = load(tmp_path, _rule("mail"), header=CAPS)
    outcome = run(rules, [ev("go", 0), ev("go", 86399), ev("go", 86400)])
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T09:00:00Z", "2026-05-05T09:00:00Z"]


def test_caps_count_marketing_only(tmp_path: Path) -> None:
    service = _rule("svc", type_="email.send").replace("params: {}}", "category: service, params: {}}")
    rules = load(tmp_path, service + "\n" + _rule("mail", event="later"), header=CAPS)
    outcome = run(rules, [ev("go", 0), ev("go", 60), ev("later", 120)])
    assert [a.rule_id for a in outcome.actions] == ["svc", "svc", "mail"]


def test_held_out_actions_count_against_no_cap(tmp_path: Path) -> None:
    rules = load(
        tmp_path, _rule("held", extra="holdout: 100%") + "\n" + _rule("mail", event="later"), header=CAPS
    )
    outcome = run(rules, [ev("go", 0), ev("later", 60)])
    assert [(a.rule_id, a.status) for a in outcome.actions] == [("held", "held_out"), ("mail", "emitted")]


# -- quiet hours ------------------------------------------------------------------------------

QUIET = 'defaults:\n  timezone: Europe/Paris\n  quiet_hours: {start: "21:00", end: "08:00"}'


def _quiet(tmp_path: Path, mode: str, *events, category: str = "marketing"):
    rule = _rule("r", extra=f"quiet_hours: {mode}").replace(
        "params: {}}", f"category: {category}, params: {{}}}}"
    )
    return run(load(tmp_path, rule, header=QUIET), events, until="2d")


def test_quiet_hours_defer_until_end_local_time(tmp_path: Path) -> None:
    """19:00Z is 21:00 in Paris (CEST): inside [start, end); emitted at 08:00 Paris = 06:00Z."""
    outcome = _quiet(tmp_path, "defer", ev("go", "10h"))
    (action,) = outcome.actions
    assert action.decided_at == "2026-05-05T06:00:00Z"
    assert [(d.rule_id, d.at, d.until) for d in outcome.deferred] == [("r", at("10h"), at("21h"))]


def test_quiet_hours_end_is_exclusive_start_inclusive(tmp_path: Path) -> None:
    before = _quiet(tmp_path, "drop", ev("go", 35999))
    assert [a.decided_at for a in before.actions] == ["2026-05-04T18:59:59Z"]
    at_start = _quiet(tmp_path, "drop", ev("go", "10h"))
    assert at_start.actions == [] and [s.reason for s in at_start.suppressed] == ["quiet_hours"]
    at_end = _quiet(tmp_path, "drop", ev("go", "21h"))
    assert [a.decided_at for a in at_end.actions] == ["2026-05-05T06:00:00Z"]


def test_quiet_hours_drop_and_ignore(tmp_path: Path) -> None:
    dropped = _quiet(tmp_path, "drop", ev("go", "12h"))
    assert dropped.actions == [] and [s.reason for s in dropped.suppressed] == ["quiet_hours"]
    ignored = _quiet(tmp_path, "ignore", ev("go", "12h"))
    assert [a.decided_at for a in ignored.actions] == ["2026-05-04T21:00:00Z"]


def test_quiet_hours_use_the_customer_timezone(tmp_path: Path) -> None:
    """12:00Z is 14:00 in Paris but 21:00 in Tokyo: deferred to 08:00 Tokyo = 23:00Z."""
    outcome = _quiet(tmp_path, "defer", ev("identify", 0, traits={"timezone": "Asia/Tokyo"}), ev("go", "3h"))
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T23:00:00Z"]


def test_service_actions_ignore_quiet_hours_caps_and_consent(tmp_path: Path) -> None:
    events = [ev("consent.updated", 0, properties={"channel": "email", "granted": False}), ev("go", "12h")]
    outcome = _quiet(tmp_path, "defer", *events, category="service")
    assert [a.decided_at for a in outcome.actions] == ["2026-05-04T21:00:00Z"]


def test_equal_start_and_end_means_no_quiet_hours(tmp_path: Path) -> None:
    header = 'defaults:\n  quiet_hours: {start: "08:00", end: "08:00"}'
    outcome = run(load(tmp_path, _rule("r"), header=header), [ev("go", "23h")])
    assert len(outcome.actions) == 1


def test_deferred_action_is_judged_for_consent_at_emission(tmp_path: Path) -> None:
    events = [
        ev("go", "12h"),
        ev("consent.updated", "13h", properties={"channel": "email", "granted": False}),
    ]
    outcome = _quiet(tmp_path, "defer", *events)
    assert outcome.actions == []
    assert [s.reason for s in outcome.suppressed] == ["consent"]


# -- consent ----------------------------------------------------------------------------------


def test_consent_opt_out_suppresses_that_channel_only(tmp_path: Path) -> None:
    rules = load(tmp_path, _rule("mail") + "\n" + _rule("push", type_="push.send"))
    outcome = run(
        rules, [ev("consent.updated", 0, properties={"channel": "email", "granted": False}), ev("go", 60)]
    )
    assert [a.rule_id for a in outcome.actions] == ["push"]
    assert [(s.rule_id, s.reason) for s in outcome.suppressed] == [("mail", "consent")]


def test_unknown_consent_allows_and_regranting_allows(tmp_path: Path) -> None:
    rules = load(tmp_path, _rule("mail"))
    outcome = run(
        rules,
        [
            ev("go", 0),
            ev("consent.updated", 60, properties={"channel": "email", "granted": False}),
            ev("consent.updated", 120, properties={"channel": "email", "granted": True}),
            ev("go", 180),
        ],
    )
    assert len(outcome.actions) == 2


# -- holdout ----------------------------------------------------------------------------------


def test_holdout_is_a_stable_hash_with_null_variant(tmp_path: Path) -> None:
    variants = "holdout: 50%\nvariants:\n  - {id: a, weight: 1}\n  - {id: b, weight: 1}"
    rules = load(tmp_path, _rule("r", extra=variants))
    customers = [f"c{i}" for i in range(200)]
    first = run(rules, [ev("go", i, cid=c) for i, c in enumerate(customers)])
    again = run(rules, [ev("go", i, cid=c) for i, c in enumerate(reversed(customers))])
    status = {a.customer_id: (a.status, a.variant) for a in first.actions}
    assert status == {a.customer_id: (a.status, a.variant) for a in again.actions}
    held = [c for c, (s, _) in status.items() if s == "held_out"]
    assert 60 < len(held) < 140
    assert all(status[c][1] is None for c in held)
    assert all(status[c][1] in ("a", "b") for c in customers if c not in held)
    assert all(hashing.in_holdout("r", c, 0.5) == (c in held) for c in customers)


# -- priority ---------------------------------------------------------------------------------


def test_priority_wins_when_the_cap_allows_only_some(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "\n".join(
            [
                _rule("low", type_="push.send", extra="priority: 1"),
                _rule("high", type_="sms.send", extra="priority: 9"),
                _rule("tie-a", type_="push.send", extra="priority: 5"),
                _rule("tie-b", type_="push.send", extra="priority: 5"),
            ]
        ),
        header="contact_policy: {max_per_day: 2}",
    )
    outcome = run(rules, [ev("go", 0)])
    assert [a.rule_id for a in outcome.actions] == ["high", "tie-a"]
    assert [s.rule_id for s in outcome.suppressed] == ["tie-b", "low"]


def test_priority_among_waits_ending_at_the_same_instant(tmp_path: Path) -> None:
    rules = load(
        tmp_path,
        "\n".join(
            [
                _rule("low", extra="priority: 1\nwait: {for: 10m}"),
                _rule("high", extra="priority: 2\nwait: {for: 10m}"),
            ]
        ),
        header="contact_policy: {max_per_day: 1}",
    )
    outcome = run(rules, [ev("go", 0)], until="1h")
    assert [a.rule_id for a in outcome.actions] == ["high"]


# -- duplicates, action ids, params, context --------------------------------------------------


def test_duplicate_event_ids_are_applied_once(tmp_path: Path) -> None:
    rule = (
        "- id: r\n  trigger: {event: chat.intent_failed}\n"
        "  action: {type: chat.note, category: service, params: {n: '${counters.f}'}}"
    )
    rules = load(tmp_path, rule, header="counters:\n  f: {on: chat.intent_failed}")
    first = ev("chat.intent_failed", 0, eid="dup")
    outcome = run(rules, [first, ev("chat.intent_failed", 60, eid="dup"), ev("chat.intent_failed", 120)])
    assert [a.params["n"] for a in outcome.actions] == [1, 2]
    assert sum(s.duplicates for s in outcome.steps) == 1


def test_action_id_is_deterministic(tmp_path: Path) -> None:
    rules = load(tmp_path, _rule("r"))
    events = [ev("go", 0, eid="t1"), ev("go", 60, eid="t2")]
    first = [a.action_id for a in run(rules, events).actions]
    again = [a.action_id for a in run(rules, events).actions]
    assert first == again and len(set(first)) == 2
    assert first[0] == hashing.action_id("r", "c1", "t1")


def test_params_are_typed_when_the_whole_string_is_one_expression(tmp_path: Path) -> None:
    rule = """
- id: r
  trigger: {event: cart.item_added}
  action:
    type: email.send
    params:
      total: "${cart.total}"
      text: "Total: ${cart.total} for ${customer.id}"
      flag: "${cart.total > 10}"
      items: "${len(cart.items)}"
      nested: {skus: ["${event.properties.sku}", "fixed"]}
      plain: 3
"""
    (action,) = run(load(tmp_path, rule), [ev("cart.item_added", 0, sku="A", qty=2, price=12)]).actions
    assert action.params == {
        "total": 24,
        "text": "Total: 24 for c1",
        "flag": True,
        "items": 1,
        "nested": {"skus": ["A", "fixed"]},
        "plain": 3,
    }


def test_context_snapshot_only_when_asked(tmp_path: Path) -> None:
    """Reading: without `context: true` the field is null (present in the JSON, empty)."""
    asked = _rule("asked", type_="chat.handoff").replace(
        "params: {}}", "category: service, context: true, params: {}}"
    )
    rules = load(tmp_path, asked + "\n" + _rule("plain"))
    outcome = run(
        rules, [ev("cart.item_added", 0, sku="A", price=5, channel="mobile"), ev("go", 60, channel="chat")]
    )
    by_rule = {a.rule_id: a for a in outcome.actions}
    assert by_rule["plain"].context is None
    context = by_rule["asked"].context
    assert context is not None
    assert context["cart"]["total"] == 5
    assert context["last_channel"] == "chat"
    assert [e["type"] for e in context["recent_events"]] == ["cart.item_added", "go"]
    assert "traits" in context
