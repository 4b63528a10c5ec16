"""Personas: scripted omnichannel journeys, each built to exercise one decision of the flagship rules.

A persona is a function that appends steps to a `Journey`. Times are in seconds from the journey's
start at "real" pace; the workload multiplies them by `journey_scale`. `EXPECTED_RULES` says which
flagship rule (the ones in `examples/rules/`) each persona should trigger, so tests and the demo can
check the orchestrator against the simulator rather than against hand-written examples.

Checkout happens at most `CHECKOUT_WITHIN_S` (× journey_scale) after the last cart add, so an
abandoned-cart wait longer than that separates abandoners from buyers.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.simulate.catalog import EVERYDAY, SOFA, UMBRELLAS, Product, Region, point_near

CHECKOUT_WITHIN_S = 8 * 60


@dataclass(frozen=True)
class Step:
    """One touchpoint of a journey; `event` has every field but `occurred_at`, stamped when sent."""

    at_s: float
    event: dict[str, Any]


@dataclass
class Journey:
    """A customer's identities and the steps they take, built persona by persona."""

    rng: random.Random
    customer_id: str
    anonymous_id: str
    device_id: str
    region: Region
    persona: str
    t: float = 0.0
    steps: list[Step] = field(default_factory=list)

    def later(self, low_s: float, high_s: float) -> None:
        self.t += self.rng.uniform(low_s, high_s)

    def emit(
        self,
        event_type: str,
        channel: str,
        *,
        who: str = "customer",
        properties: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        """`who` is what the channel knows: `anonymous` (before login), `customer`, or `both` (login)."""
        event: dict[str, Any] = {
            "event_id": f"evt-{self.rng.getrandbits(80):020x}",
            "type": event_type,
            "channel": channel,
            "occurred_at": None,
        }
        if who in ("customer", "both"):
            event["customer_id"] = self.customer_id
        if who in ("anonymous", "both"):
            event["anonymous_id"] = self.anonymous_id
        if channel == "mobile":
            event["identifiers"] = {"device_id": self.device_id}
        event["properties"] = properties or {}
        event["context"] = {"locale": self.region.locale, **(context or {})}
        if channel == "mobile":
            event["context"]["timezone"] = self.region.timezone
        self.steps.append(Step(self.t, event))

    def traits(self) -> dict[str, Any]:
        """What a login knows about the customer: no names or emails, only a hashed email alias."""
        email_hash = hashlib.sha256(f"{self.customer_id}@example.com".encode()).hexdigest()
        return {
            "timezone": self.region.timezone,
            "locale": self.region.locale,
            "tier": self.rng.choice(["standard", "standard", "silver", "gold"]),
            "email_sha256": email_hash,
        }

    def view(self, product: Product, channel: str, who: str = "customer", **context: Any) -> None:
        props = {"sku": product.sku, "price": product.price, "category": product.category}
        self.emit("product.viewed", channel, who=who, properties=props, context=context or None)

    def add_to_cart(self, product: Product, channel: str, who: str = "customer", qty: int = 1) -> None:
        props = {"sku": product.sku, "qty": qty, "price": product.price}
        self.emit("cart.item_added", channel, who=who, properties=props)

    def login(self, channel: str) -> None:
        self.emit("identify", channel, who="both", properties={"traits": self.traits()})


def sofa_abandoner(j: Journey) -> None:
    """Sees the green velvet sofa on social and in the app, adds it anonymously, logs in on the web."""
    j.view(SOFA, "social", who="anonymous", campaign="spring-living")
    j.later(60, 240)
    j.view(SOFA, "mobile", who="anonymous")
    j.later(30, 120)
    j.add_to_cart(SOFA, "mobile", who="anonymous")
    j.later(120, 300)
    j.login("web")
    j.later(20, 90)
    j.view(SOFA, "web")


def opted_out_abandoner(j: Journey) -> None:
    """Leaves a cart like the sofa shopper, but has refused marketing email: no reminder may reach them."""
    j.login("web")
    j.later(5, 30)
    j.emit("consent.updated", "web", properties={"channel": "email", "granted": False})
    j.later(30, 120)
    product = j.rng.choice(EVERYDAY[:3])
    j.view(product, "web")
    j.later(20, 60)
    j.add_to_cart(product, "web")


def umbrella_browser(j: Journey) -> None:
    """Browses umbrellas in the app on a rainy day, then walks into a store's geofence: a push offer."""
    j.login("mobile")
    j.later(5, 20)
    for umbrella in j.rng.sample(UMBRELLAS, 2):
        j.view(umbrella, "mobile", weather="rain")
        j.later(20, 90)
    lat, lon = point_near(j.rng, j.region.store, 2_000, 4_000)
    j.emit("location.updated", "mobile", context={"geo": {"lat": lat, "lon": lon}})
    j.later(300, 900)
    lat, lon = point_near(j.rng, j.region.store, 0, j.region.store.radius_m * 0.5)
    j.emit("location.updated", "mobile", context={"geo": {"lat": lat, "lon": lon}})


def chatbot_handoff(j: Journey) -> None:
    """Asks the bot about an order; the bot fails twice, so the next message goes to a person."""
    j.view(j.rng.choice(EVERYDAY), "web")
    j.later(30, 120)
    j.emit(
        "chat.message",
        "chat",
        properties={"text": "where is my order?", "sentiment": 0.1, "intent": "order_status"},
    )
    for _ in range(2):
        j.later(10, 40)
        j.emit("chat.intent_failed", "chat", properties={"intent": "order_status"})
    j.later(10, 40)
    j.emit("chat.message", "chat", properties={"text": "this is not helping", "sentiment": -0.3})


def buyer(j: Journey) -> None:
    """Adds to the cart and checks out within minutes: must never get an abandoned-cart reminder."""
    channel = j.rng.choice(["web", "mobile"])
    j.login(channel)
    items = j.rng.sample(EVERYDAY, j.rng.randint(1, 2))
    for product in items:
        j.later(10, 60)
        j.view(product, channel)
        j.later(10, 60)
        j.add_to_cart(product, channel)
    j.later(30, CHECKOUT_WITHIN_S - 120)
    total = sum(product.price for product in items)
    order = {"order_id": f"ord-{j.rng.getrandbits(48):012x}", "total": total, "currency": "EUR"}
    j.emit("order.completed", channel, properties=order)


def window_shopper(j: Journey) -> None:
    """Looks around on several channels and buys nothing: background traffic that decides nothing."""
    for channel in j.rng.sample(["social", "web", "mobile"], 2):
        j.view(j.rng.choice(EVERYDAY), channel, who="anonymous")
        j.later(20, 180)


Persona = Callable[[Journey], None]

PERSONAS: dict[str, tuple[Persona, float]] = {
    "sofa_abandoner": (sofa_abandoner, 0.2),
    "opted_out_abandoner": (opted_out_abandoner, 0.1),
    "umbrella_browser": (umbrella_browser, 0.15),
    "chatbot_handoff": (chatbot_handoff, 0.15),
    "buyer": (buyer, 0.3),
    "window_shopper": (window_shopper, 0.1),
}

EXPECTED_RULES: dict[str, frozenset[str]] = {
    "sofa_abandoner": frozenset({"abandoned-cart"}),
    "opted_out_abandoner": frozenset(),
    "umbrella_browser": frozenset({"nearby-store-offer"}),
    "chatbot_handoff": frozenset({"chatbot-to-human"}),
    "buyer": frozenset(),
    "window_shopper": frozenset(),
}
