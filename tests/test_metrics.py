"""Metric names of SPEC §6, the `/metrics` endpoint, and the Grafana/Prometheus files built on them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.lag import GroupLag, LagReport, PartitionLag
from orchestrator.metrics import JourneyMetrics
from orchestrator.web import mount
from schemas import Action

ROOT = Path(__file__).resolve().parent.parent
SPEC_NAMES = {
    "journey_events_total",
    "journey_actions_total",
    "journey_suppressed_total",
    "journey_conversions_total",
    "journey_pending_waits",
    "journey_decision_latency_seconds",
    "journey_consumer_lag",
    "journey_consumer_time_lag_seconds",
    "journey_rules_info",
    "journey_rules_reloads_total",
}


def traffic(metrics: JourneyMetrics) -> None:
    metrics.record_event("web", "applied")
    metrics.record_event("web", "duplicate")
    metrics.record_event("mobile", "dead_lettered")
    metrics.record_action(
        Action(
            action_id="a1",
            rule_id="abandoned-cart",
            rule_version="abc",
            customer_id="c1",
            type="email.send",
            channel="email",
            category="marketing",
            params={},
            trigger_event_id="e1",
            decided_at="2025-01-01T00:00:00Z",
            status="emitted",
            variant="discount",
        )
    )
    metrics.record_suppressed("abandoned-cart", "cap")
    metrics.record_conversion("abandoned-cart", "discount")
    metrics.observe_latency(0.02)
    metrics.observe_wait_fire_delay(0.3)
    metrics.set_pending_waits(7)
    metrics.rules_loaded("abc123", ok=True)
    metrics.rules_loaded("ignored", ok=False)
    metrics.record_dead_letter("invalid_json")
    metrics.record_dead_letter("customer jane@example.com sent garbage")
    metrics.set_lag(
        LagReport(
            at=0.0,
            groups=[GroupLag("journey", [PartitionLag("touchpoints.web", 0, 5, 9, 4, 1.5, "stalled")])],
        )
    )


def family_names(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


async def test_metrics_endpoint_parses_and_carries_every_spec_name() -> None:
    metrics = JourneyMetrics()
    traffic(metrics)
    app = web.Application()
    mount(app.router, metrics=metrics, lag_source=None)
    async with (
        TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/metrics")) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = family_names(text)
    counters = {name.removesuffix("_total") for name in SPEC_NAMES}
    assert counters <= set(families), counters - set(families)
    for name in ("journey_dead_letters", "journey_wait_fire_delay_seconds", "journey_consumer_group_status"):
        assert name in families
    assert {s.labels["variant"] for s in families["journey_actions"] if s.name.endswith("_total")} == {
        "discount"
    }
    kinds = {s.labels["reason_kind"] for s in families["journey_dead_letters"] if s.name.endswith("_total")}
    assert kinds == {"invalid_json", "other"}
    assert [s.labels for s in families["journey_rules_info"]] == [{"version": "abc123"}]
    reloads = {
        s.labels["result"]: s.value for s in families["journey_rules_reloads"] if s.name.endswith("_total")
    }
    assert reloads == {"ok": 1.0, "error": 1.0}
    status = {s.labels["status"]: s.value for s in families["journey_consumer_group_status"]}
    assert status == {"ok": 0.0, "lagging": 0.0, "stalled": 1.0, "unknown": 0.0}
    assert "jane" not in text


def test_clear_lag_removes_every_lag_series() -> None:
    metrics = JourneyMetrics()
    traffic(metrics)
    metrics.clear_lag()
    families = family_names(metrics.render().decode())
    assert not families["journey_consumer_lag"] and not families["journey_consumer_group_status"]


def test_grafana_dashboard_uses_only_existing_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/journey.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    used = {m for e in exprs for m in re.findall(r"\bjourney_[a-z_]+", e)}
    families = family_names(JourneyMetrics().render().decode()) | family_names(_rendered_with_traffic())
    known = set()
    for name, samples in families.items():
        known |= {name, f"{name}_total"} | {s.name for s in samples}
    assert used <= known, used - known
    assert used >= {n for n in SPEC_NAMES if n != "journey_decision_latency_seconds"}


def _rendered_with_traffic() -> str:
    metrics = JourneyMetrics()
    traffic(metrics)
    return metrics.render().decode()


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is required under CI (apt-get install prometheus)")
        pytest.skip("promtool not installed")
    result = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "deploy/prometheus/alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "deploy/prometheus/alerts.yml").read_text()
    used = set(re.findall(r"\bjourney_[a-z_]+", text))
    known = {s.name for f in text_string_to_metric_families(_rendered_with_traffic()) for s in f.samples}
    assert used <= known | {"journey_decision_latency_seconds_bucket"}, used - known
