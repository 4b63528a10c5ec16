"""JOURNEY_WEB_TOKEN protects every endpoint but the probes; pages carry a strict CSP."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from orchestrator.metrics import JourneyMetrics
from orchestrator.web.routes import mount
from orchestrator.web.security import add_login_route, security_middleware

TOKEN = "s3cret/with spaces+"


def _app(token: str | None) -> web.Application:
    app = web.Application(middlewares=[security_middleware(token)])
    mount(app.router, metrics=JourneyMetrics(), lag_source=None)
    add_login_route(app.router)

    async def probe(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", probe)
    app.router.add_get("/readyz", probe)
    return app


async def test_token_required_everywhere_but_probes() -> None:
    async with TestServer(_app(TOKEN), host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        for path in ("/healthz", "/readyz", "/dashboard/static/login.js"):
            async with http.get(server.make_url(path)) as response:
                assert response.status == 200, path
        for path in ("/metrics", "/api/dashboard", "/api/kpis", "/dashboard", "/dashboard/kpis"):
            async with http.get(server.make_url(path)) as response:
                assert response.status == 401, path
            async with http.get(server.make_url(path), headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401, path
            async with http.get(
                server.make_url(path), headers={"Authorization": f"Bearer {TOKEN}"}
            ) as response:
                assert response.status == 200, path


async def test_browser_gets_sign_in_page_then_cookie_works() -> None:
    async with TestServer(_app(TOKEN), host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/dashboard"), headers={"Accept": "text/html"}) as response:
            assert response.status == 401
            body = await response.text()
            assert 'id="login-form"' in body and "<script>" not in body
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        cookie = {"journey_token": aiohttp.helpers.quote(TOKEN, safe="")}
        async with http.get(server.make_url("/api/dashboard"), cookies=cookie) as response:
            assert response.status == 200


async def test_security_headers_without_token() -> None:
    async with TestServer(_app(None), host="127.0.0.1") as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/dashboard")) as response:
            assert response.status == 200
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        async with http.get(server.make_url("/metrics")) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Security-Policy" not in response.headers
