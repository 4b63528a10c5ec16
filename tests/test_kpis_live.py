"""Live KPIs end to end: one `journey worker` on the embedded broker, shared by the module's tests.

The must-show: `journey kpis` on the live system and `journey replay --kpis` over the same events
print the same rows. Also: a redelivered goal event counts once, the counts survive a SIGTERM restart,
the worker feeds the conversion/variant metrics, the KPI page renders the real numbers in Chromium
(screenshot in docs/img/kpis.png), and broken `variants`/`goal` blocks are refused by the hot reload
while the worker keeps its rules.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from conftest import ProcessSpawner, screenshot_path, worker_settings
from prometheus_client.parser import text_string_to_metric_families
from runtime_support import TopicReader, log_events, now_iso, produce, values, wait_log

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
JOURNEY = str(Path(sys.executable).with_name("journey"))
CHROMIUM = "/usr/bin/chromium"
CUSTOMERS = 40
WAIT_S = 3

RULES = f"""version: 1
defaults:
  timezone: Europe/Paris
  quiet_hours: {{start: "00:00", end: "00:00"}}
rules:
  - id: welcome
    trigger: {{event: newsletter.signup}}
    wait: {{for: {WAIT_S}s}}
    holdout: 30%
    variants:
      - {{id: plain, weight: 1}}
      - {{id: discount, weight: 1, params: {{template: welcome_discount, discount: 10}}}}
    goal: {{event: order.completed, within: 1d}}
    action: {{type: email.send, params: {{template: welcome}}}}
  - id: order-thanks
    trigger: {{event: order.completed}}
    action: {{type: push.send, category: service, params: {{template: thanks}}}}
"""


def customer(i: int) -> str:
    return f"kpi-{i:02d}"


def converts(i: int) -> bool:
    return i % 5 in (0, 1, 3)


def redelivered(i: int) -> bool:
    return i % 10 == 0


def touchpoint(event_id: str, type_: str, cust: str, **properties: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "channel": "web",
        "occurred_at": now_iso(),
        "customer_id": cust,
        "properties": properties,
    }


@dataclass
class Live:
    """The module's worker (replaced by the restart test) and everything published to it, in order."""

    settings: Settings
    spawner: ProcessSpawner
    worker: ManagedProcess
    published: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    async def publish(self, events: list[dict[str, Any]]) -> None:
        topic = self.settings.touchpoint_topic("web")
        await produce(
            str(self.settings.kafka_bootstrap),
            [(topic, e["customer_id"].encode(), orjson.dumps(e)) for e in events],
        )
        self.published.extend(events)


@pytest.fixture(scope="module")
async def live(
    kafka_bootstrap: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    module_spawner: ProcessSpawner,
) -> AsyncIterator[Live]:
    """A worker with the experiment rules, 40 signups decided and some of them converted."""
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(RULES)
    settings = worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("worker") / "data",
        rules=rules,
    )
    worker = module_spawner.journey("worker", settings=settings)
    await wait_log(worker, "worker_ready", timeout_s=120)
    state = Live(settings, module_spawner, worker)
    reader = TopicReader(str(kafka_bootstrap))

    await state.publish(
        [touchpoint(f"signup-{i}", "newsletter.signup", customer(i)) for i in range(CUSTOMERS)]
    )
    welcome_topics = [settings.action_topic("email"), settings.action_topic("holdout")]
    records = await reader.read(
        welcome_topics, until=lambda r: len(values(r)) >= CUSTOMERS, timeout_s=60, settle_s=1
    )
    assert len(values(records)) == CUSTOMERS  # each wait fired once

    buyers = [i for i in range(CUSTOMERS) if converts(i)]
    orders = [
        touchpoint(f"order-{i}", "order.completed", customer(i), order_id=f"o{i}", total=42) for i in buyers
    ]
    await state.publish(orders + [o for i, o in zip(buyers, orders, strict=True) if redelivered(i)])
    records = await reader.read(
        [settings.action_topic("push")], until=lambda r: len(values(r)) >= len(buyers), timeout_s=60
    )
    assert len(values(records)) == len(buyers)
    # The thanks actions are sent after the batch counted its conversions; the redelivered orders are
    # counted as duplicates once the worker saw them.
    duplicates = sum(redelivered(i) for i in buyers)
    deadline = time.monotonic() + 30
    while await metric(state, "journey_events_total", outcome="duplicate") < duplicates:
        assert time.monotonic() < deadline, "the redelivered orders were never seen"
        await asyncio.sleep(0.3)
    yield state


async def metric(live: Live, name: str, **labels: str) -> float:
    """Sum of a metric's samples on the worker's /metrics whose labels include `labels`."""
    async with aiohttp.ClientSession() as http, http.get(f"{live.url}/metrics") as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def journey(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        JOURNEY, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def live_rows(live: Live) -> list[dict[str, Any]]:
    code, out, err = await journey("kpis", "--json", "--worker", live.url)
    assert code == 0, err
    return [orjson.loads(line) for line in out.splitlines()]


async def test_live_kpis_equal_replay_kpis(live: Live, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in live.published))
    until = datetime.fromtimestamp(time.time() + WAIT_S + 60, UTC).isoformat().replace("+00:00", "Z")
    code, out, err = await journey(
        "replay", str(live.settings.rules), str(events), "--kpis", "--until", until
    )
    assert code == 0, err
    replayed = [orjson.loads(line) for line in out.splitlines()]

    assert await live_rows(live) == replayed
    rows = {(r["rule_id"], r["group"]): r for r in replayed}
    assert list(rows) == [
        ("welcome", "plain"),
        ("welcome", "discount"),
        ("welcome", "holdout"),
        ("order-thanks", "default"),
    ]
    buyers = sum(converts(i) for i in range(CUSTOMERS))
    welcome = [rows[("welcome", g)] for g in ("plain", "discount", "holdout")]
    assert sum(r["actions"] for r in welcome) == CUSTOMERS
    assert sum(r["conversions"] for r in welcome) == buyers  # redelivered orders counted once
    assert all(0 < r["conversions"] < r["actions"] for r in welcome)  # some convert, some not
    assert rows[("order-thanks", "default")] == {
        "rule_id": "order-thanks",
        "group": "default",
        "actions": buyers,
        "conversions": None,
        "rate": None,
        "uplift": None,
    }
    # The worker's metrics agree: conversions per group, actions per variant.
    for row in welcome:
        assert (
            await metric(live, "journey_conversions_total", rule="welcome", group=row["group"])
            == (row["conversions"])
        )
    for group in ("plain", "discount"):
        emitted = await metric(live, "journey_actions_total", rule="welcome", status="emitted", variant=group)
        assert emitted == rows[("welcome", group)]["actions"]


async def test_kpi_page_renders_live_numbers_in_chromium(live: Live) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    from playwright.async_api import async_playwright

    async with aiohttp.ClientSession() as http, http.get(f"{live.url}/api/kpis") as response:
        doc = await response.json()
    plain = next(r for r in doc["rows"] if r["group"] == "plain")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            await page.goto(f"{live.url}/dashboard/kpis")
            welcome = page.locator('section.kpi-rule[data-rule="welcome"]')
            await welcome.locator("svg .holdout-line").wait_for(state="attached", timeout=15_000)
            cells = await welcome.locator("tbody tr").first.locator("th, td").all_inner_texts()
            assert cells[:3] == ["plain", str(plain["actions"]), str(plain["conversions"])], cells
            shown = [float(n) for n in re.findall(r"[\d.]+", cells[3])]  # "64.7 % (41.3–82.7)"
            wanted = [plain["rate"], plain["stats"]["ci_low"], plain["stats"]["ci_high"]]
            assert shown == pytest.approx([v * 100 for v in wanted], abs=0.051), cells
            assert float(cells[5].rstrip(" *")) == pytest.approx(plain["stats"]["p_value"], rel=0.05)
            assert await welcome.locator("svg rect").count() == 3  # plain, discount, holdout
            thanks = page.locator('section.kpi-rule[data-rule="order-thanks"]')
            assert "no goal" in await thanks.inner_text()
            assert await thanks.locator("svg").count() == 0
            assert not errors, errors
            await page.screenshot(path=str(screenshot_path("kpis.png")), full_page=True)
        finally:
            await browser.close()


BROKEN_VARIANTS = """    variants:
      - {id: holdout, weight: 1}
      - {id: discount, weight: -2}
"""
BROKEN_GOAL = "    goal: {event: order.completed, within: soon}\n"


async def test_broken_variants_or_goal_refused_while_running(live: Live) -> None:
    rules = Path(str(live.settings.rules))
    before = await live_rows(live)
    async with aiohttp.ClientSession() as http, http.get(f"{live.url}/readyz") as response:
        version = (await response.json())["rules_version"]
    good = rules.read_text()
    start, end = good.index("    variants:\n"), good.index("    goal:")
    for broken, expected in (
        (  # a reserved variant id (line 11, column 14) and a negative weight (line 12, column 32)
            good[:start] + BROKEN_VARIANTS + good[end:],
            [":11:14: variant id 'holdout' is reserved", ":12:32: 'weight' must be greater than 0"],
        ),
        (
            good.replace("    goal: {event: order.completed, within: 1d}\n", BROKEN_GOAL),
            [":13:44: 'within': invalid duration 'soon'"],
        ),
    ):
        refused = len(log_events(live.worker, "rules_reload_refused"))
        rules.write_text(broken)
        record = await wait_log(live.worker, "rules_reload_refused", count=refused + 1, timeout_s=15)
        assert record["kept_version"] == version
        for message in expected:
            assert any(e.startswith(f"{rules}{message}") for e in record["errors"]), record["errors"]
    rules.write_text(good)  # the running version again: reloading it is a no-op, nothing to wait for
    async with aiohttp.ClientSession() as http, http.get(f"{live.url}/readyz") as response:
        assert (await response.json())["rules_version"] == version
    assert await live_rows(live) == before


async def test_kpi_counts_survive_a_restart(live: Live) -> None:
    before = await live_rows(live)
    live.worker.stop(grace_s=15)  # SIGTERM first (SIGKILL only if it hangs)
    live.worker = live.spawner.journey("worker", settings=live.settings, name="journey-worker-restarted")
    await wait_log(live.worker, "worker_ready", timeout_s=120)
    assert await live_rows(live) == before
