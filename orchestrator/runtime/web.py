"""A worker's web port: probes, `/metrics`, the dashboard, KPI rows and the customer data view.

Everything is added to Faust's own aiohttp application before it starts, behind the same
security middleware as `journey dashboard` (bearer token when `JOURNEY_WEB_TOKEN` is set; the
probes stay open). Lag gauges are exported by one worker per cluster only: the one holding
partition 0 of `journey.customers` — so Prometheus never sums the same lag twice.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from orchestrator import metrics
from orchestrator.engine import decode_state
from orchestrator.engine.kpis import kpi_rows
from orchestrator.lag import LagMonitor, LagSampler, kafka_client_kwargs, owns_partition_zero
from orchestrator.runtime.pipeline import Pipeline
from orchestrator.web.routes import mount
from orchestrator.web.security import add_login_route, security_middleware


def install_web(pipeline: Pipeline) -> LagSampler:
    """Add every route and the middleware; returns the lag sampler for the app to start."""
    app, settings = pipeline.app, pipeline.settings
    web_app: web.Application = app.web.web_app
    web_app.middlewares.append(security_middleware(settings.web_token))
    router = web_app.router
    customers_topic = pipeline.customers_topic.get_topic_name()
    sampler = LagSampler(
        LagMonitor(
            str(settings.kafka_bootstrap),
            group_prefix=settings.app_id,
            client_kwargs=kafka_client_kwargs(settings),
        ),
        metrics=metrics.METRICS,
        should_export=lambda: owns_partition_zero(app.assignor.assigned_actives(), customers_topic),
    )

    async def kpis() -> list[dict[str, Any]]:
        return kpi_rows(pipeline.rules.engine.rules, pipeline.kpis.counts())

    mount(router, metrics=metrics.METRICS, lag_source=sampler, kpi_source=kpis)
    add_login_route(router)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        ready = pipeline.ready
        body = {"status": "ready" if ready else "starting", "rules_version": pipeline.rules.version}
        return web.json_response(body, status=200 if ready else 503)

    async def customer(request: web.Request) -> web.Response:
        return web.json_response(await customer_record(pipeline, request.match_info["profile"]))

    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
    router.add_get("/api/customers/{profile}", customer)
    return sampler


async def customer_record(pipeline: Pipeline, profile: str) -> dict[str, Any]:
    """What this worker holds on a profile — state and context view — for a data-access request."""
    partition = pipeline.partition(profile)
    owned = {
        tp.partition
        for tp in pipeline.app.assignor.assigned_actives()
        if tp.topic == pipeline.customers_topic.get_topic_name()
    }
    record: dict[str, Any] = {"profile": profile, "partition": partition, "owned_here": partition in owned}
    raw = pipeline.profiles.get(profile) if partition in owned else None
    record["state"] = msgspec.to_builtins(decode_state(raw)) if raw else None
    record["context_view"] = await pipeline.views.read(profile)
    return record
