"""The dashboard served by a running worker, in headless Chromium, with live simulated traffic.

This is the page ops open first, so it is checked the way they use it: real worker, real broker,
numbers moving. The screenshot it saves is the one the README shows.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import ProcessSpawner, screenshot_path
from runtime_support import wait_log
from test_dashboard import CHROMIUM, CHROMIUM_ARGS, need_chromium

from orchestrator.config import EXAMPLE_RULES, Settings
from orchestrator.demo import DEMO_JOURNEY_SCALE
from orchestrator.simulate import simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _until_live(page: object, timeout_s: float = 60.0) -> None:
    """Poll from Python: the page's CSP (no eval) rules out Playwright's string predicates."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        events = await page.inner_text("#events-total")  # type: ignore[attr-defined]
        lag_cells = await page.locator("#lag-table tbody tr td").count()  # type: ignore[attr-defined]
        action_cells = await page.locator("#actions-table tbody tr td").count()  # type: ignore[attr-defined]
        if any(ch in "123456789" for ch in events) and lag_cells > 2 and action_cells > 2:
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the dashboard never showed live events, lag and actions")


async def test_worker_dashboard_shows_live_numbers(
    isolated_settings: Settings, spawn: ProcessSpawner
) -> None:
    need_chromium()
    from playwright.async_api import async_playwright

    settings = isolated_settings.model_copy(update={"rules": EXAMPLE_RULES})
    worker = spawn.journey("worker", settings=settings, name="dashboard-worker")
    await wait_log(worker, "worker_ready", timeout_s=90)
    traffic = asyncio.create_task(
        simulate(
            settings.kafka_bootstrap,
            seed=5,
            customers=30,
            duration=120,
            journey_scale=DEMO_JOURNEY_SCALE,
            settings=settings,
        )
    )
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1100})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                await page.goto(f"http://127.0.0.1:{settings.web_port}/dashboard")
                await _until_live(page)
                await page.wait_for_timeout(6000)  # a few polls, so the charts have a history to draw
                assert await page.inner_text("#rules-version") != "—"
                for chart in ("#lag-chart", "#throughput-chart", "#latency-chart"):
                    assert await page.locator(f"{chart} canvas").count() >= 1, chart
                lag_rows = await page.locator("#lag-table tbody tr").all_inner_texts()
                assert any(settings.app_id in row for row in lag_rows), lag_rows
                assert not errors, errors
                shot = screenshot_path("dashboard.png")
                await page.screenshot(path=str(shot), full_page=True)
            finally:
                await browser.close()
    finally:
        traffic.cancel()
        await asyncio.gather(traffic, return_exceptions=True)
