"""`journey dashboard`: the same pages as a worker's, served by a process of their own.

It samples lag itself (so it works while every worker is down, which is when ops need it most)
and reads throughput, latency and rules from the workers' `/metrics`. It does not serve
`/metrics`: lag gauges come from one worker only (see `orchestrator.lag`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from orchestrator.lag import LagMonitor, LagSampler
from orchestrator.web.routes import mount
from orchestrator.web.security import add_login_route, security_middleware
from orchestrator.web.sources import RemoteMetrics

LAG_SAMPLER = web.AppKey("lag_sampler", LagSampler)
REMOTE = web.AppKey("remote_metrics", RemoteMetrics)


def build_app(
    *,
    workers: Sequence[str],
    monitor: LagMonitor | None,
    lag_interval_s: float = 5.0,
    token: str | None = None,
) -> web.Application:
    """An app whose startup starts the lag sampler and whose cleanup closes every client."""
    app = web.Application(middlewares=[security_middleware(token)])
    add_login_route(app.router)
    remote = RemoteMetrics(workers, token=token)
    sampler = LagSampler(monitor, interval_s=lag_interval_s) if monitor is not None else None
    app[REMOTE] = remote
    if sampler is not None:
        app[LAG_SAMPLER] = sampler
    state = mount(
        app.router, metrics=None, lag_source=sampler, metrics_source=remote, kpi_source=remote.kpi_source()
    )

    async def redirect(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/dashboard")

    app.router.add_get("/", redirect)

    async def lifecycle(app: web.Application) -> object:
        if sampler is not None:
            sampler.start()
        history = asyncio.get_running_loop().create_task(state.run(), name="journey-dashboard-history")
        yield
        history.cancel()
        await asyncio.gather(history, return_exceptions=True)
        if sampler is not None:
            await sampler.stop()
        await remote.close()

    app.cleanup_ctx.append(lifecycle)
    return app
