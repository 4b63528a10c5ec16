"""aiohttp routes of the ops surface, mountable on the Faust worker's web app or served standalone.

Seam with the worker (before its web app starts):

    from orchestrator.web import mount
    dashboard = mount(app.web.web_app.router, metrics=METRICS, lag_source=sampler, kpi_source=kpis)

`kpi_source` is an async callable returning the KPI rows of SPEC §5 (None shows "no KPI source");
`/api/kpis` adds a `stats` field to each row (confidence interval, p-value).
`dashboard.run()` may be started as a background task to keep history while no page is open.
Pages are static files with no inline script; the server installs `security_middleware` for the
`script-src 'self'` policy and the optional bearer token.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.metrics import CONTENT_TYPE, JourneyMetrics
from orchestrator.web.snapshot import DashboardState, LagSource
from orchestrator.web.sources import KpiSource, LocalMetrics, MetricsSource

STATIC = Path(__file__).resolve().parent / "static"


def _page(name: str) -> web.FileResponse:
    """Security headers come from `security.security_middleware`, which every server installs."""
    response = web.FileResponse(STATIC / name)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


def mount(
    router: web.UrlDispatcher,
    *,
    metrics: JourneyMetrics | None,
    lag_source: LagSource | None,
    kpi_source: KpiSource | None = None,
    metrics_source: MetricsSource | None = None,
) -> DashboardState:
    """Add `/metrics` (when `metrics` is given), the two pages, their JSON and static assets."""
    source = metrics_source or (LocalMetrics(metrics) if metrics is not None else None)
    if source is None:
        raise ValueError("mount() needs `metrics` or `metrics_source`")
    state = DashboardState(source, lag_source)

    async def metrics_handler(_request: web.Request) -> web.Response:
        assert metrics is not None
        response = web.Response(body=metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def dashboard_page(_request: web.Request) -> web.StreamResponse:
        return _page("dashboard.html")

    async def kpi_page(_request: web.Request) -> web.StreamResponse:
        return _page("kpis.html")

    async def dashboard_json(_request: web.Request) -> web.Response:
        return web.json_response(await state.document(), headers={"Cache-Control": "no-store"})

    async def kpi_json(_request: web.Request) -> web.Response:
        body: dict[str, Any] = {"available": kpi_source is not None, "rows": [], "error": None}
        if kpi_source is not None:
            try:
                body["rows"] = await asyncio.to_thread(rows_with_stats, await kpi_source())
            except Exception as exc:
                body.update(available=False, error=f"{type(exc).__name__}: {exc}")
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    if metrics is not None:
        router.add_get("/metrics", metrics_handler)
    router.add_get("/dashboard", dashboard_page)
    router.add_get("/dashboard/", dashboard_page)
    router.add_get("/dashboard/kpis", kpi_page)
    router.add_get("/api/dashboard", dashboard_json)
    router.add_get("/api/kpis", kpi_json)
    router.add_static("/dashboard/static/", STATIC, append_version=False)
    return state


def rows_with_stats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row plus `stats`: its Wilson 95 % interval and p-value against the rule's holdout.

    Computed per request, in a thread (the route runs this off the event loop): scipy costs a second
    to import and has no place on a worker's event path. The rows' own fields stay as the KPI source
    gave them, so they compare equal to `journey replay --kpis` once `stats` is dropped.
    """
    from orchestrator.kpi_stats import with_statistics

    return [
        {**row, "stats": {name: full[name] for name in ("ci_low", "ci_high", "p_value")}}
        for row, full in zip(rows, with_statistics(rows), strict=True)
    ]
