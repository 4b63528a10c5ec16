"""A tiny web-shop backend that publishes its touchpoints with the journey Publisher.

It shows the three things every channel app does: give each visitor an anonymous id before login,
publish the login as an `identify` carrying both ids (so the orchestrator merges the anonymous cart
into the customer), and publish what happens (`cart.item_added`, `order.completed`) as it happens.
The shop itself is deliberately naive: carts live in memory and any customer id logs in.

    JOURNEY_KAFKA_BOOTSTRAP=127.0.0.1:9092 python examples/channel_app/shop.py --port 8080
"""

from __future__ import annotations

import argparse
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from orchestrator.publish import Publisher
from schemas import InvalidEvent

PUBLISHER = web.AppKey("publisher", Publisher)
CARTS = web.AppKey("carts", dict)
BOOTSTRAP = web.AppKey("bootstrap", str)
ANONYMOUS_ID = web.RequestKey("anonymous_id", str)
CHANNEL = "web"


def _touchpoint(request: web.Request, event_type: str, properties: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "channel": CHANNEL,
        "occurred_at": datetime.now(UTC),
        "anonymous_id": request[ANONYMOUS_ID],
        "properties": properties,
        "context": {"user_agent": request.headers.get("User-Agent", "")},
    }
    if customer_id := request.cookies.get("customer_id"):
        event["customer_id"] = customer_id
    return event


@web.middleware
async def anonymous_id(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every visitor gets a stable anonymous id in a cookie, like an analytics tag would set."""
    request[ANONYMOUS_ID] = request.cookies.get("anonymous_id") or f"anon-{uuid.uuid4().hex[:12]}"
    response = await handler(request)
    response.set_cookie("anonymous_id", request[ANONYMOUS_ID], httponly=True, samesite="Lax")
    return response


async def publish(request: web.Request, event: dict[str, Any]) -> None:
    """Queue the event; delivery is batched, so the request does not wait for the broker."""
    try:
        await request.app[PUBLISHER].send(event)
    except InvalidEvent as exc:
        raise web.HTTPBadRequest(text=f"invalid touchpoint: {exc}") from None


async def login(request: web.Request) -> web.Response:
    body = await request.json()
    customer_id = str(body["customer_id"])
    event = _touchpoint(request, "identify", {"traits": {"timezone": body.get("timezone", "Europe/Paris")}})
    event["customer_id"] = customer_id
    await publish(request, event)
    response = web.json_response({"customer_id": customer_id})
    response.set_cookie("customer_id", customer_id, httponly=True, samesite="Lax")
    return response


async def add_to_cart(request: web.Request) -> web.Response:
    body = await request.json()
    item = {"sku": str(body["sku"]), "qty": int(body.get("qty", 1)), "price": float(body["price"])}
    await publish(request, _touchpoint(request, "cart.item_added", item))
    cart = request.app[CARTS][request[ANONYMOUS_ID]]
    cart.append(item)
    return web.json_response({"items": cart, "total": sum(i["qty"] * i["price"] for i in cart)})


async def checkout(request: web.Request) -> web.Response:
    cart = request.app[CARTS].pop(request[ANONYMOUS_ID], [])
    if not cart:
        raise web.HTTPConflict(text="the cart is empty")
    order = {"order_id": f"ord-{uuid.uuid4().hex[:10]}", "total": sum(i["qty"] * i["price"] for i in cart)}
    await publish(request, _touchpoint(request, "order.completed", order))
    return web.json_response(order)


async def publisher_lifecycle(app: web.Application) -> AsyncIterator[None]:
    async with Publisher(app[BOOTSTRAP] or None, client_id="example-shop") as publisher:
        app[PUBLISHER] = publisher
        yield


def make_app(bootstrap: str | None = None) -> web.Application:
    app = web.Application(middlewares=[anonymous_id])
    app[BOOTSTRAP] = bootstrap or ""
    app[CARTS] = defaultdict(list)
    app.cleanup_ctx.append(publisher_lifecycle)
    app.router.add_post("/login", login)
    app.router.add_post("/cart/items", add_to_cart)
    app.router.add_post("/checkout", checkout)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Example web shop publishing touchpoints.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--kafka", help="host:port; default JOURNEY_KAFKA_BOOTSTRAP")
    args = parser.parse_args()
    web.run_app(make_app(args.kafka), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
