"""Where the dashboard reads metrics from: this process's registry, or the `/metrics` of workers.

Both give Prometheus text, parsed the same way, so the in-worker and standalone dashboards compute
the same numbers. Several workers are summed (each counts only what it processed, and its KPI rows
only for the partitions it owns); the rules version is the union of what they report, so a rollout
in progress shows both versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.engine.kpis import sum_kpi_rows
from orchestrator.metrics import JourneyMetrics

SampleKey = tuple[str, tuple[tuple[str, str], ...]]
KpiSource = Callable[[], Awaitable[list[dict[str, Any]]]]


@dataclass(slots=True)
class Scrape:
    samples: dict[SampleKey, float] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)

    def select(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(labels), value) for (n, labels), value in self.samples.items() if n == name]


class MetricsSource(Protocol):
    async def scrape(self) -> Scrape: ...


def parse_into(scrape: Scrape, text: str) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key: SampleKey = (sample.name, tuple(sorted(sample.labels.items())))
            if sample.name == "journey_rules_info":
                scrape.samples[key] = max(scrape.samples.get(key, 0.0), sample.value)
            else:
                scrape.samples[key] = scrape.samples.get(key, 0.0) + sample.value


class LocalMetrics:
    """The worker's own registry: no network hop, same parsing as a scrape."""

    def __init__(self, metrics: JourneyMetrics) -> None:
        self.metrics = metrics

    async def scrape(self) -> Scrape:
        scrape = Scrape(sources=[{"url": "local", "ok": True, "error": None}])
        parse_into(scrape, self.metrics.render().decode())
        return scrape


class RemoteMetrics:
    """Workers' `/metrics`, fetched concurrently; an unreachable worker is reported, not fatal."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float = 2.0, token: str | None = None) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, url: str) -> str:
        async with self._client().get(url) as response:
            response.raise_for_status()
            return await response.text()

    async def scrape(self) -> Scrape:
        scrape = Scrape()
        for url in self.urls:
            try:
                parse_into(scrape, await self._get(f"{url}/metrics"))
                scrape.sources.append({"url": url, "ok": True, "error": None})
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                scrape.sources.append({"url": url, "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return scrape

    async def _kpi_rows(self, url: str) -> list[dict[str, Any]]:
        async with self._client().get(f"{url}/api/kpis") as response:
            response.raise_for_status()
            body = await response.json()
        if not body.get("available"):
            raise LookupError(body.get("error") or "serves no KPI rows")
        return list(body.get("rows", []))

    async def kpis(self) -> KpiAnswer:
        """Every worker's `/api/kpis`, fetched concurrently and summed; who did not answer, and why."""
        answers = await asyncio.gather(*(self._kpi_rows(url) for url in self.urls), return_exceptions=True)
        row_lists: list[list[dict[str, Any]]] = []
        failed: dict[str, str] = {}
        for url, answer in zip(self.urls, answers, strict=True):
            if isinstance(answer, aiohttp.ClientError | TimeoutError | ValueError | LookupError):
                failed[url] = f"{type(answer).__name__}: {answer}"
            elif isinstance(answer, BaseException):
                raise answer
            else:
                row_lists.append(answer)
        return KpiAnswer(rows=sum_kpi_rows(row_lists), answered=len(row_lists), failed=failed)

    def kpi_source(self) -> KpiSource:
        """KPI rows summed over the workers that answer.

        Each worker counts only the partitions it owns, so the sum is the whole. A worker that is down
        leaves a gap only until its partitions move: their new owner rebuilds their counts.
        """

        async def rows() -> list[dict[str, Any]]:
            answer = await self.kpis()
            if not answer.answered:
                raise LookupError("no worker serves KPI rows (" + "; ".join(answer.failed.values()) + ")")
            return answer.rows

        return rows


@dataclass(slots=True)
class KpiAnswer:
    rows: list[dict[str, Any]]
    answered: int
    failed: dict[str, str]
