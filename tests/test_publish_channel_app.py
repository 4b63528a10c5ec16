"""The example channel app: an anonymous cart, a login that links it, a checkout, all on Kafka."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp.test_utils import TestClient, TestServer
from kafka_readback import read_back

SHOP = Path(__file__).resolve().parent.parent / "examples" / "channel_app" / "shop.py"


def load_shop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_shop", SHOP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
async def test_shop_publishes_its_touchpoints(
    kafka_bootstrap: str, unique_topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEY_TOUCHPOINTS_PREFIX", f"{unique_topic_prefix}touchpoints.")
    app = load_shop().make_app(kafka_bootstrap)
    async with TestClient(TestServer(app)) as client:
        added = await client.post("/cart/items", json={"sku": "SOFA-VELVET-GREEN", "price": 899})
        assert (await added.json())["total"] == 899
        assert (await client.post("/login", json={"customer_id": "c-42"})).status == 200
        order = await client.post("/checkout")
        assert (await order.json())["total"] == 899
        assert (await client.post("/checkout")).status == 409
    records = await read_back(kafka_bootstrap, [f"{unique_topic_prefix}touchpoints.web"], 3)
    events = sorted((json.loads(r.value) for r in records), key=lambda e: e["occurred_at"])
    assert [e["type"] for e in events] == ["cart.item_added", "identify", "order.completed"]
    anonymous = events[0]["anonymous_id"]
    assert "customer_id" not in events[0]
    assert events[1]["anonymous_id"] == anonymous and events[1]["customer_id"] == "c-42"
    assert events[2]["customer_id"] == "c-42"
