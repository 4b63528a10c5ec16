"""Dashboard JSON, pages and KPI states over a real socket; the standalone dashboard in Chromium."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orchestrator.lag import LagMonitor
from orchestrator.metrics import JourneyMetrics
from orchestrator.web import mount
from orchestrator.web.security import security_middleware
from orchestrator.web.server import build_app
from orchestrator.web.snapshot import histogram_quantile

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium as root, with nothing reaching for the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, float("inf"): 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None


async def test_api_pages_and_kpi_states() -> None:
    metrics = JourneyMetrics()
    metrics.record_event("web", "applied")
    metrics.observe_latency(0.03)
    metrics.rules_loaded("v1", ok=True)

    async def kpis() -> list[dict[str, object]]:
        return [
            {
                "rule_id": "welcome",
                "group": "plain",
                "actions": 4,
                "conversions": 1,
                "rate": 0.25,
                "uplift": 0.1,
            }
        ]

    with_kpis = web.Application(middlewares=[security_middleware(None)])
    without = web.Application(middlewares=[security_middleware(None)])
    mount(with_kpis.router, metrics=metrics, lag_source=None, kpi_source=kpis)
    mount(without.router, metrics=metrics, lag_source=None)
    async with (
        TestServer(with_kpis, host="127.0.0.1") as a,
        TestServer(without, host="127.0.0.1") as b,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(a.make_url("/api/dashboard")) as response:
            doc = await response.json()
        assert doc["events"] == {"web": {"applied": 1.0}}
        assert doc["rules"]["versions"] == ["v1"] and doc["rules"]["last_reload_ok"] is True
        assert doc["latency"]["p50"] is not None and doc["lag"] is None and doc["lag_error"]
        async with http.get(a.make_url("/api/kpis")) as response:
            assert (await response.json())["rows"][0]["rule_id"] == "welcome"
        async with http.get(b.make_url("/api/kpis")) as response:
            assert await response.json() == {"available": False, "rows": [], "error": None}
        for page in ("/dashboard", "/dashboard/kpis"):
            async with http.get(a.make_url(page)) as response:
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
                html = await response.text()
            assert "<script>" not in html and "onclick" not in html
        async with http.get(a.make_url("/dashboard/static/vendor/uplot/LICENSE")) as response:
            assert response.status == 200


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI (apt-get install chromium)")
        pytest.skip("chromium not installed")


@pytest.mark.integration
async def test_standalone_dashboard_in_headless_chromium(kafka_bootstrap: str) -> None:
    need_chromium()
    from playwright.async_api import async_playwright

    prefix = f"dash-{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.touchpoints"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    committer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=f"{prefix}-journey", enable_auto_commit=False
    )
    await producer.start()
    await committer.start()
    worker_metrics = JourneyMetrics()
    worker = web.Application()
    mount(worker.router, metrics=worker_metrics, lag_source=None)
    try:
        for i in range(12):
            await producer.send_and_wait(topic, b"e%d" % i, partition=0)
        tp = TopicPartition(topic, 0)
        committer.assign([tp])
        await committer.commit({tp: 4})
        async with TestServer(worker, host="127.0.0.1") as worker_server:
            monitor = LagMonitor(kafka_bootstrap, group_prefix=prefix, window_s=30)
            app = build_app(
                workers=[str(worker_server.make_url("")).rstrip("/")], monitor=monitor, lag_interval_s=0.5
            )
            async with TestServer(app, host="127.0.0.1") as server:
                traffic = asyncio.create_task(_traffic(worker_metrics))
                try:
                    await _drive_browser(async_playwright, str(server.make_url("/dashboard")))
                finally:
                    traffic.cancel()
                    await asyncio.gather(traffic, return_exceptions=True)
    finally:
        await committer.stop()
        await producer.stop()


async def _traffic(metrics: JourneyMetrics) -> None:
    """A worker's counters moving, so throughput and latency charts have something to draw."""
    metrics.rules_loaded("3f9a1c2b7d", ok=True)
    i = 0
    while True:
        i += 1
        for channel, n in (("web", 5), ("mobile", 3), ("store", 1)):
            for _ in range(n):
                metrics.record_event(channel, "applied")
        metrics.observe_latency(0.004 + (i % 7) * 0.003)
        metrics.observe_latency(0.02 + (i % 3) * 0.01)
        metrics.set_pending_waits(40 + i % 5)
        if i % 4 == 0:
            metrics.record_dead_letter("invalid_event")
            metrics.record_suppressed("abandoned-cart", "quiet_hours")
        if i % 2 == 0:
            metrics.actions.labels(
                rule="abandoned-cart", type="email.send", status="emitted", variant="none"
            ).inc()
        await asyncio.sleep(0.1)


async def _drive_browser(async_playwright: object, url: str) -> None:
    async with async_playwright() as pw:  # type: ignore[operator]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            await page.goto(url)
            await page.wait_for_selector("#lag-table tbody .status-stalled", timeout=30_000)
            # polled from Python: the page's CSP (no eval) rules out Playwright's string predicates
            deadline = asyncio.get_running_loop().time() + 30
            while not (
                await page.locator("#throughput-chart canvas").count() > 0
                and await page.inner_text("#throughput-total") not in ("0", "—")
            ):
                assert asyncio.get_running_loop().time() < deadline, "throughput never showed"
                await asyncio.sleep(0.3)
            await page.wait_for_timeout(4000)
            lag_cells = await page.locator("#lag-table tbody tr:nth-child(2) td").all_inner_texts()
            assert lag_cells[1].endswith(".touchpoints") and lag_cells[5] == "8", lag_cells
            assert await page.locator("#lag-chart canvas").count() >= 1
            assert await page.locator("#latency-chart canvas").count() >= 1
            assert float((await page.inner_text("#throughput-total")).replace(",", "")) > 0
            assert await page.inner_text("#rules-version") == "3f9a1c2b7d"
            assert not errors, errors
            artifacts = ROOT / "tests/artifacts"
            artifacts.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(artifacts / "dashboard-standalone.png"), full_page=True)
            await page.set_viewport_size({"width": 380, "height": 800})
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.className") == "skip"
        finally:
            await browser.close()
