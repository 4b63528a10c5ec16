"""Erasure and expiry on a live worker (SPEC §7), across a kill -9 and restart.

One worker (embedded broker, bearer token on its web port) and one scenario shared by the module's
tests: customer C has a Redis view, a merged anonymous id and loyalty card, an email opt-out and a
pending 8 s push wait; a control customer K has the same wait; customer E only goes idle (profile_ttl
24 s). C is erased with `journey customers erase`, the worker is killed with SIGKILL and restarted.
Then: C's wait never fires (K's does), C's view stays gone, C's old anonymous id and card start new
profiles, an email rule still respects C's opt-out (K gets the email), and E expires on time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import JOURNEY_BIN, ProcessSpawner, settings_env, worker_settings
from privacy_support import key_of, metric_samples, metrics_text, redis_view
from runtime_support import TopicReader, event, produce, values, wait_log

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_S = 8.0
TTL_S = 24.0
MARGIN_S = 4.0
TOKEN = "privacy-test-token"
OPT_OUT = {"channel": "email", "granted": False}
DESK, RUG = {"sku": "DESK-2"}, {"sku": "RUG-3"}
RULES = f"""version: 1
defaults:
  timezone: UTC
  quiet_hours: {{start: "00:00", end: "00:00"}}
  profile_ttl: {TTL_S:.0f}s
rules:
  - id: cart-push
    trigger: {{event: cart.item_added}}
    wait: {{for: {WAIT_S:.0f}s}}
    action: {{type: push.send, params: {{template: cart_reminder}}}}
  - id: mail-ping
    trigger: {{event: test.mail}}
    action: {{type: email.send, params: {{template: hello}}}}
"""


@dataclass
class Scenario:
    settings: Settings
    worker: ManagedProcess
    run: str
    customer: str  # erased
    control: str  # same journey, not erased
    idle: str  # expires
    anonymous_id: str
    card: str
    carts_at: float  # wall clock when the carts (and their waits) started
    idle_at: float
    restarted_at: float  # when the restarted worker owned its partitions again
    shown_before: dict[str, Any]
    shown_after: dict[str, Any]

    @property
    def worker_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"


async def publish(settings: Settings, *events: dict[str, Any]) -> None:
    """One record per request, in order (the producer of runtime_support waits for each)."""
    await produce(
        str(settings.kafka_bootstrap),
        [(settings.touchpoint_topic(e["channel"]), key_of(e), orjson.dumps(e)) for e in events],
    )


async def journey_cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, **settings_env(settings)}
    process = await asyncio.create_subprocess_exec(
        str(JOURNEY_BIN), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return int(process.returncode or 0), out.decode(), err.decode()


async def show(settings: Settings, ident: str, *flags: str) -> dict[str, Any]:
    code, out, err = await journey_cli(settings, "customers", "show", ident, *flags)
    assert code == 0, f"journey customers show {ident} exited {code}: {err}"
    return orjson.loads(out)


async def poll(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def is_suppression_record(state: dict[str, Any] | None) -> bool:
    """An erased customer's state: the consent opt-outs and the clock, nothing else (SPEC §7)."""
    return (
        state is not None and set(state) <= {"consent", "clock"} and state.get("consent") == {"email": False}
    )


@pytest.fixture(scope="module")
def privacy_settings(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    rules = tmp_path_factory.mktemp("privacy-rules") / "rules.yaml"
    rules.write_text(RULES)
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("privacy-worker") / "data",
        web_token=TOKEN,
        rules=rules,
        log_format="json",
    )


@pytest.fixture(scope="module")
async def scenario(privacy_settings: Settings, module_spawner: ProcessSpawner) -> AsyncIterator[Scenario]:
    s = privacy_settings
    first = module_spawner.journey("worker", settings=s, name="worker-before")
    await wait_log(first, "worker_ready", timeout_s=120)

    run = uuid.uuid4().hex[:6]
    customer, control, idle = f"c-{run}", f"k-{run}", f"e-{run}"
    anon, card = f"a-{run}", f"L-{run}"
    cart = {"sku": "CHAIR-9", "qty": 1, "price": 120}
    await publish(
        s,
        event(f"{run}-1", "product.viewed", "web", anonymous_id=anon, properties={"sku": "CHAIR-9"}),
        event(
            f"{run}-2",
            "identify",
            "web",
            anonymous_id=anon,
            customer_id=customer,
            identifiers={"loyalty_card": card},
            properties={"traits": {"tier": "gold", "email": "ada@example.com"}},
        ),
    )
    await wait_log(
        first, "profile_merge_completed", where=lambda r: r.get("profile") == customer, timeout_s=30
    )
    carts_at = time.time()
    await publish(
        s,
        event(f"{run}-3", "consent.updated", "web", customer_id=customer, properties=OPT_OUT),
        event(f"{run}-4", "cart.item_added", "web", customer_id=customer, properties=cart),
        event(f"{run}-5", "cart.item_added", "web", customer_id=control, properties=cart),
    )

    async def both_set() -> bool:
        views = [await redis_view(s, p) for p in (customer, control)]
        return all(views) and views[0]["cart"]["total"] == 120  # type: ignore[index]

    await poll(both_set, 30, "the context views")
    shown_before = await show(s, customer)

    code, out, err = await journey_cli(s, "customers", "erase", customer)
    assert code == 0 and f"erasure of {customer} requested" in out, err

    async def erased() -> dict[str, Any] | None:
        shown = await show(s, customer)
        return shown if is_suppression_record(shown["state"]) and shown["context_view"] is None else None

    shown_after = await poll(erased, 20, "the erasure to be applied")
    # The idle customer's last event comes just before the crash, so its expiry falls after the restart.
    await publish(
        s, event(f"{run}-6", "product.viewed", "web", customer_id=idle, properties={"sku": "LAMP-1"})
    )
    idle_at = time.time()
    await poll(lambda: redis_view(s, idle), 30, "the idle customer's view")
    await asyncio.sleep(3)  # let changelogs and offsets be committed, as they would be before a real crash
    os.killpg(first.pid, signal.SIGKILL)
    first.popen.wait()
    second = module_spawner.journey("worker", settings=s, name="worker-after")
    await wait_log(second, "partitions_ready", timeout_s=120)
    restarted_at = time.time()
    yield Scenario(
        s,
        second,
        run,
        customer,
        control,
        idle,
        anon,
        card,
        carts_at,
        idle_at,
        restarted_at,
        shown_before,
        shown_after,
    )


def test_show_prints_the_profile_before_and_the_suppression_record_after(scenario: Scenario) -> None:
    before = scenario.shown_before
    assert before["state_known"] and before["state_from"] == scenario.worker_url
    state = before["state"]
    assert state["traits"] == {"tier": "gold", "email": "ada@example.com"}
    assert state["consent"] == {"email": False}
    assert len(state["waits"]) == 1 and state["waits"][0][0] == "cart-push"
    assert f"anon:{scenario.anonymous_id}" in state["aliases"]
    assert before["context_view"]["cart"]["total"] == 120
    after = scenario.shown_after
    assert after["state"]["consent"] == {"email": False} and after["context_view"] is None


async def test_erased_wait_never_fires_after_restart(scenario: Scenario) -> None:
    s = scenario.settings
    reader = TopicReader(str(s.kafka_bootstrap))
    wanted = {scenario.customer, scenario.control}
    remaining = scenario.carts_at + WAIT_S + MARGIN_S - time.time()

    def control_pushed(records: list) -> bool:
        return any(v["customer_id"] == scenario.control for v in values(records))

    records = await reader.read(
        [s.action_topic("push")], until=control_pushed, timeout_s=60, settle_s=max(remaining, 1.0)
    )
    pushed = [v["customer_id"] for v in values(records) if v["customer_id"] in wanted]
    assert pushed == [scenario.control], "the control's wait fired once, the erased customer's never"
    assert time.time() >= scenario.carts_at + WAIT_S + MARGIN_S
    assert await redis_view(s, scenario.customer) is None, "the view came back after the restart"


async def test_old_aliases_start_new_profiles(scenario: Scenario) -> None:
    s, run = scenario.settings, scenario.run
    await publish(
        s,
        event(f"{run}-7", "product.viewed", "mobile", anonymous_id=scenario.anonymous_id, properties=DESK),
        event(
            f"{run}-8", "product.viewed", "store", identifiers={"loyalty_card": scenario.card}, properties=RUG
        ),
    )

    async def anonymous_profile() -> dict[str, Any] | None:
        shown = await show(s, scenario.anonymous_id, "--anonymous")
        return shown if shown["state"] else None

    shown = await poll(anonymous_profile, 30, "the anonymous id's new profile")
    assert shown["profile"] == f"anon:{scenario.anonymous_id}"
    assert shown["state"]["viewed"] == ["DESK-2"] and "traits" not in shown["state"]
    assert shown["context_view"]["customer_id"] == f"anon:{scenario.anonymous_id}"
    card_profile = f"anon:loyalty_card:{scenario.card}"
    view = await poll(lambda: redis_view(s, card_profile), 30, "the loyalty card's new profile")
    assert view["channels_seen"] == ["store"] and view["traits"] == {}
    state = (await show(s, scenario.customer))["state"]
    assert not {"traits", "viewed", "aliases", "cart"} & set(state), (
        "the customer gained from its old aliases"
    )


def metric(text: str, name: str, labels: dict[str, str]) -> float:
    samples = metric_samples(text)
    found = [m.value for m in samples if m.name == name and m.labels.items() >= labels.items()]
    return sum(found)


async def test_email_opt_out_survives_the_erasure(scenario: Scenario) -> None:
    s, run = scenario.settings, scenario.run
    await publish(
        s,
        event(f"{run}-9", "test.mail", "web", customer_id=scenario.customer),
        event(f"{run}-10", "test.mail", "web", customer_id=scenario.control),
    )
    reader = TopicReader(str(s.kafka_bootstrap))
    records = await reader.read(
        [s.action_topic("email")],
        until=lambda r: any(v["customer_id"] == scenario.control for v in values(r)),
        timeout_s=30,
        settle_s=2,
    )
    mailed = {v["customer_id"] for v in values(records)}
    assert scenario.control in mailed and scenario.customer not in mailed
    suppressed = metric(
        await metrics_text(s), "journey_suppressed_total", {"rule": "mail-ping", "reason": "consent"}
    )
    assert suppressed == 1
    shown = await show(s, scenario.customer)
    assert shown["state"]["consent"] == {"email": False} and "traits" not in shown["state"]
    view = shown["context_view"]
    assert view is None or (view["traits"] == {} and view["cart"]["items"] == [])


async def test_idle_profile_expires_through_the_deadline_index(scenario: Scenario) -> None:
    """Expiry is a deadline like a wait: it survived the restart without any scan of the profiles."""
    s = scenario.settings

    async def expired() -> bool:
        shown = await show(s, scenario.idle)
        return shown["state"] is None and shown["context_view"] is None

    assert scenario.idle_at + TTL_S > scenario.restarted_at, "expiry due before the crash: raise TTL_S"
    budget = max(scenario.idle_at + TTL_S + MARGIN_S - time.time(), 0) + 10
    await poll(expired, budget, "the idle profile to expire")
    assert time.time() >= scenario.idle_at + TTL_S - 1


async def test_customer_data_needs_the_token(scenario: Scenario) -> None:
    url = f"{scenario.worker_url}/api/customers/{scenario.customer}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 401
    env_without_token = scenario.settings.model_copy(update={"web_token": None})
    code, _out, err = await journey_cli(env_without_token, "customers", "show", scenario.customer)
    assert code == 2 and "JOURNEY_WEB_TOKEN" in err
