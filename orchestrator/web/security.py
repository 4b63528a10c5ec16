"""Protecting the web port: an optional bearer token, and browser security headers.

With `JOURNEY_WEB_TOKEN` set, every endpoint but the probes (`/healthz`, `/readyz`) needs it,
as `Authorization: Bearer …` (Prometheus, scripts, `journey dashboard` reading workers) or as the
`journey_token` cookie that the sign-in page sets once for people. The sign-in page and the
dashboard's static files carry no data, so they are served to anyone (a page that asks for the
token has to load first). Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/login"})
PUBLIC_PREFIXES = ("/dashboard/static/",)
COOKIE = "journey_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ").strip()
    cookie = request.cookies.get(COOKIE)
    return unquote(cookie) if cookie is not None else None


def _authorised(request: web.Request, token: str) -> bool:
    presented = _presented_token(request)
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


def _wants_page(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def harden(response: web.StreamResponse) -> web.StreamResponse:
    """Headers every response gets, and the CSP for pages (no inline script anywhere)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if (response.content_type or "").startswith("text/html") or response.headers.get(
        "Content-Type", ""
    ).startswith("text/html"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def security_middleware(token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The aiohttp middleware for a worker's web app and for `journey dashboard`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        public = request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
        if token and not public and not _authorised(request, token):
            if _wants_page(request):
                return harden(login_page(status=401))
            return harden(
                web.json_response(
                    {"error": "unauthorised: send Authorization: Bearer <JOURNEY_WEB_TOKEN>"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="journey"'},
                )
            )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            harden(exc)
            raise
        return harden(response)

    return middleware


def login_page(status: int = 200) -> web.Response:
    """The one-time sign-in page; its script (static, no inline code) stores the token cookie."""
    return web.Response(
        body=(STATIC / "login.html").read_bytes(),
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


def add_login_route(router: web.UrlDispatcher) -> None:
    async def handler(_request: web.Request) -> web.Response:
        return login_page()

    router.add_get("/login", handler)
