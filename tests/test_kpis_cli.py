"""The live KPI path without a broker: the worker's ledger, `/api/kpis` with its statistics, the sum
over several workers (standalone dashboard and `journey kpis`), and the CLI's errors."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from engine_helpers import at, ev, load

from orchestrator.engine import Engine
from orchestrator.engine.kpis import with_rates
from orchestrator.metrics import JourneyMetrics
from orchestrator.runtime.kpi_ledger import KpiLedger
from orchestrator.web import mount
from orchestrator.web.security import security_middleware
from orchestrator.web.server import build_app

JOURNEY = str(Path(sys.executable).with_name("journey"))
TOKEN = "s3cret-token"

WELCOME = """
- id: welcome
  trigger: {event: newsletter.signup}
  variants:
    - {id: plain, weight: 1}
    - {id: discount, weight: 1}
  goal: {event: order.completed, within: 1d}
  action: {type: email.send, params: {template: welcome}}
"""


class PartitionedTable:
    """What the ledger sees of a Faust table: lookups only in the partition being processed."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {}
        self.current = 0

    def get(self, key: bytes) -> bytes | None:
        return self.partitions.get(self.current, {}).get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.partitions.setdefault(self.current, {})[key] = value

    def items(self) -> list[tuple[bytes, bytes]]:
        return [item for partition in self.partitions.values() for item in partition.items()]


def test_ledger_counts_once_and_splits_by_partition_across_a_merge(tmp_path: Path) -> None:
    """An anonymous profile's action (partition 0) converted after its merge into a customer
    (partition 1): counted once, even when redelivered, and split between the partitions' owners."""
    engine = Engine(load(tmp_path, WELCOME))
    table = PartitionedTable()
    ledger = KpiLedger(table)  # type: ignore[arg-type]
    partition_of = {"anon:a1": 0, "c1": 1}.__getitem__

    signup = engine.apply("anon:a1", None, [ev("newsletter.signup", 0, cid=None, anon="a1")], at(0))
    table.current = 0
    ledger.record("anon:a1", signup)
    ledger.record("anon:a1", signup)  # a redelivered batch
    merged = engine.merge(None, signup.state)
    order = engine.apply(
        "c1", merged, [ev("order.completed", "1h", cid="c1", order_id="o1", total=30)], at("1h")
    )
    assert len(order.conversions) == 1
    table.current = 1
    ledger.record("c1", order)
    ledger.record("c1", order)

    group = signup.actions[0].variant
    assert ledger.counts() == {("welcome", group): (1, 1)}
    ledger.rebuild({0, 1}, partition_of)
    assert ledger.counts() == {("welcome", group): (1, 1)}
    ledger.rebuild({0}, partition_of)
    assert ledger.counts() == {("welcome", group): (1, 0)}
    ledger.rebuild({1}, partition_of)
    assert ledger.counts() == {("welcome", group): (0, 1)}


def _row(rule: str, group: str, actions: int, conversions: int | None) -> dict[str, Any]:
    return {"rule_id": rule, "group": group, "actions": actions, "conversions": conversions}


WORKER_A = [
    _row("welcome", "plain", 40, 8),
    _row("welcome", "discount", 38, 12),
    _row("welcome", "holdout", 20, 2),
    _row("thanks", "default", 5, None),
]
WORKER_B = [
    _row("welcome", "plain", 10, 2),
    _row("welcome", "discount", 12, 3),
    _row("welcome", "holdout", 5, 1),
    _row("thanks", "default", 2, None),
]


def _worker_app(rows: list[dict[str, Any]], token: str | None) -> web.Application:
    """A worker's web port as far as KPIs go: `mount` with a KPI source, behind the token."""

    async def kpis() -> list[dict[str, Any]]:
        return with_rates([dict(r) for r in rows])

    app = web.Application(middlewares=[security_middleware(token)])
    mount(app.router, metrics=JourneyMetrics(), lag_source=None, kpi_source=kpis)
    return app


def _expected_sum() -> list[dict[str, Any]]:
    return with_rates(
        [
            _row("welcome", "plain", 50, 10),
            _row("welcome", "discount", 50, 15),
            _row("welcome", "holdout", 25, 3),
            _row("thanks", "default", 7, None),
        ]
    )


async def _journey(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        JOURNEY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "160", **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_api_kpis_adds_statistics_off_the_rows() -> None:
    async with (
        TestServer(_worker_app(WORKER_A, None), host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/api/kpis")) as response,
    ):
        body = await response.json()
    assert body["available"] and body["error"] is None
    plain, _discount, holdout, thanks = body["rows"]
    assert {k: v for k, v in plain.items() if k != "stats"} == {
        "rule_id": "welcome",
        "group": "plain",
        "actions": 40,
        "conversions": 8,
        "rate": 0.2,
        "uplift": pytest.approx(0.1),
    }
    assert plain["stats"]["ci_low"] == pytest.approx(0.1050, abs=1e-4)  # Wilson 95 %, 8 of 40
    assert plain["stats"]["ci_high"] == pytest.approx(0.3476, abs=1e-4)
    assert 0.1 < plain["stats"]["p_value"] < 0.5  # 20 % vs 10 % on 40 and 20: not significant
    assert holdout["stats"]["p_value"] is None and holdout["stats"]["ci_low"] is not None
    assert thanks["stats"] == {"ci_low": None, "ci_high": None, "p_value": None}


async def test_standalone_dashboard_sums_workers_rows() -> None:
    async with (
        TestServer(_worker_app(WORKER_A, TOKEN), host="127.0.0.1") as a,
        TestServer(_worker_app(WORKER_B, TOKEN), host="127.0.0.1") as b,
    ):
        urls = [str(s.make_url("")).rstrip("/") for s in (a, b)]
        dashboard = build_app(workers=urls, monitor=None, token=TOKEN)
        async with TestServer(dashboard, host="127.0.0.1") as server, aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.get(server.make_url("/api/kpis"), headers=headers) as response:
                body = await response.json()
    assert [{k: v for k, v in r.items() if k != "stats"} for r in body["rows"]] == _expected_sum()
    assert body["rows"][0]["stats"]["p_value"] is not None


async def test_journey_kpis_sums_workers_with_the_token() -> None:
    async with (
        TestServer(_worker_app(WORKER_A, TOKEN), host="127.0.0.1") as a,
        TestServer(_worker_app(WORKER_B, TOKEN), host="127.0.0.1") as b,
    ):
        workers = [arg for s in (a, b) for arg in ("--worker", str(s.make_url("")))]
        code, out, err = await _journey("kpis", "--json", *workers, env={"JOURNEY_WEB_TOKEN": TOKEN})
        assert (code, err) == (0, "")
        assert [orjson.loads(line) for line in out.splitlines()] == _expected_sum()

        code, out, err = await _journey("kpis", *workers, env={"JOURNEY_WEB_TOKEN": TOKEN})
        assert code == 0, err
        assert "welcome" in out and "discount" in out and "p-value" in out
        assert "20.0 %" in out and "+18.0 pt" in out  # plain 10/50, discount 15/50 vs holdout 3/25

        code, out, err = await _journey("kpis", "--json", *workers)  # no token
        assert code == 2 and out == ""
        assert "401" in err and "No worker answered" in err


async def test_journey_kpis_default_port_and_partial_answers(unused_tcp_port: int) -> None:
    code, out, err = await _journey("kpis", env={"JOURNEY_WEB_PORT": str(unused_tcp_port)})
    assert code == 2 and out == ""
    assert f"http://127.0.0.1:{unused_tcp_port}" in err and "No worker answered /api/kpis" in err

    async with TestServer(_worker_app(WORKER_B, None), host="127.0.0.1") as b:
        down = f"http://127.0.0.1:{unused_tcp_port}"
        code, out, err = await _journey("kpis", "--json", "--worker", str(b.make_url("")), "--worker", down)
    assert code == 0
    assert [orjson.loads(line)["actions"] for line in out.splitlines()] == [10, 12, 5, 2]
    assert f"warning: {down}" in err
