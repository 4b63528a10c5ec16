"""SPEC §7: erasure and idle expiry in the engine and the replay driver."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import at, ev, load, run

from orchestrator.engine import Engine

RULES = """
- id: cart
  trigger: {event: cart.item_added}
  wait: {for: 30m}
  action: {type: chat.note, category: service, params: {}}
- id: mail
  trigger: {event: go}
  cooldown: 7d
  goal: {event: privacy.erasure_requested, within: 1d}
  action: {type: email.send, params: {}}
- id: push
  trigger: {event: go}
  action: {type: push.send, params: {}}
- id: on-erasure
  trigger: {event: privacy.erasure_requested}
  action: {type: chat.note, category: service, params: {}}
- id: probe
  trigger: {event: probe}
  action:
    type: chat.note
    category: service
    params: {total: "${cart.total}", n: "${counters.seen}", traits: "${customer.traits}",
             consent: "${customer.consent}", events: "${len(recent.events)}"}
"""
HEADER = """
defaults: {profile_ttl: 2d}
counters:
  seen: {on: privacy.erasure_requested}
"""
QUIET_ALL_DAY = 'defaults: {timezone: UTC, quiet_hours: {start: "00:00", end: "23:00"}}'
OPT_OUT = {"channel": "email", "granted": False}
OPT_IN = {"channel": "push", "granted": True}


def _erase(when: str | float, **ids: str | None):
    return ev("privacy.erasure_requested", when, **ids)  # type: ignore[arg-type]


def test_erasure_deletes_everything_but_consent_opt_outs(tmp_path: Path) -> None:
    events = [
        ev("cart.item_added", 0, cid=None, anon="a1", sku="A", price=5),
        ev("identify", 60, anon="a1", traits={"name": "Ada"}),
        ev("consent.updated", 120, properties=OPT_OUT),
        ev("consent.updated", 150, properties=OPT_IN),
        ev("go", 180),
        _erase(240),
        ev("probe", 300),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events, until="1h")
    assert [a.rule_id for a in outcome.actions] == ["push", "probe"]
    assert outcome.of("probe")[0].params == {
        "total": 0,
        "n": 0,
        "traits": {},
        "consent": {"email": False},
        "events": 1,
    }
    assert outcome.conversions == []
    assert [s.reason for s in outcome.suppressed] == ["consent"]
    assert "anon:a1" not in outcome.replay.aliases


def test_erasure_cancels_waits_and_deferred_actions(tmp_path: Path) -> None:
    header = HEADER.replace("defaults: {profile_ttl: 2d}", QUIET_ALL_DAY)
    events = [ev("cart.item_added", 0, sku="A", price=5), ev("go", 60), _erase(120)]
    outcome = run(load(tmp_path, RULES, header=header), events, until="2d")
    assert [d.rule_id for d in outcome.deferred] == ["mail", "push"]
    assert outcome.actions == []
    assert outcome.replay.states == {}


def test_no_trigger_goal_or_counter_sees_the_erasure(tmp_path: Path) -> None:
    events = [ev("go", 0), _erase(60), ev("probe", 120)]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    assert outcome.of("on-erasure") == []
    assert outcome.conversions == []
    assert outcome.of("probe")[0].params["n"] == 0


def test_later_event_with_the_same_ids_starts_an_empty_profile(tmp_path: Path) -> None:
    """The merged anonymous id no longer resolves to the customer: it is a fresh `anon:` profile."""
    events = [
        ev("cart.item_added", 0, sku="A", price=5),
        ev("identify", 30, anon="a1"),
        ev("go", 60),
        _erase(90),
        ev("probe", 120, cid=None, anon="a1"),
        ev("go", 150),
        ev("probe", 180),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    probes = outcome.of("probe")
    assert [(p.customer_id, p.params["total"], p.params["events"]) for p in probes] == [
        ("anon:a1", 0, 1),
        ("c1", 0, 2),
    ]
    assert len(outcome.of("mail")) == 2, "the cooldown was erased with the profile"


def test_erasure_through_an_alias_erases_the_customer(tmp_path: Path) -> None:
    events = [
        ev("identify", 0, anon="a1"),
        ev("cart.item_added", 30, sku="A", price=5),
        _erase(60, cid=None, anon="a1"),
        ev("probe", 120),
    ]
    outcome = run(load(tmp_path, RULES, header=HEADER), events)
    assert outcome.of("probe")[0].params["total"] == 0


def test_profile_ttl_expiry_is_an_erasure(tmp_path: Path) -> None:
    """Reading of "passes": at newest occurred_at + ttl the profile is gone (like a wait ending then)."""
    rules = load(tmp_path, RULES, header=HEADER)
    events = [
        ev("consent.updated", 0, properties=OPT_OUT),
        ev("cart.item_added", 60, sku="A", price=5, eid="cart-1"),
        ev("page.viewed", 60 + 2 * 86400, cid="someone-else"),
        ev("probe", 60 + 2 * 86400 + 1),
    ]
    outcome = run(rules, events)
    assert [a.rule_id for a in outcome.actions] == ["cart", "probe"]
    params = outcome.of("probe")[0].params
    assert (params["total"], params["events"], params["consent"]) == (0, 1, {"email": False})


def test_profile_ttl_counts_from_the_newest_event(tmp_path: Path) -> None:
    rules = load(tmp_path, RULES, header=HEADER)
    events = [
        ev("cart.item_added", 0, sku="A", price=5),
        ev("page.viewed", "1d"),
        ev("probe", "2d"),
    ]
    assert run(rules, events).of("probe")[0].params["total"] == 5


def test_engine_expiry_is_due_in_next_due(tmp_path: Path) -> None:
    engine = Engine(load(tmp_path, RULES, header=HEADER))
    step = engine.apply("c1", None, [ev("page.viewed", 0)], at(0))
    assert engine.next_due(step.state) == at("2d")
    expired = engine.advance("c1", step.state, at("2d"))
    assert expired.erased and expired.state is None


def test_erasure_keeps_an_alias_that_another_customer_claimed_since(tmp_path: Path) -> None:
    """A shared device: `a1` logged in as c1, then as c2. Erasing c1 must not cut c2's link."""
    outcome = run(
        load(tmp_path, RULES, header=HEADER),
        [
            ev("identify", 0, cid="c1", anon="a1"),
            ev("identify", 60, cid="c2", anon="a1"),
            ev("privacy.erasure_requested", 120, cid="c1"),
        ],
    )
    assert outcome.replay.aliases.get("anon:a1") == "c2"
