"""Where the dashboard reads metrics from: this process's registry, or the `/metrics` of workers.

Both give Prometheus text, parsed the same way, so the in-worker and standalone dashboards compute
the same numbers. Several workers are summed (each counts only what it processed); the rules version
is the union of what they report, so a rollout in progress shows both versions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

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

    def kpi_source(self) -> KpiSource:
        """KPI rows from the first worker that answers: every worker reads the same shared state."""

        async def rows() -> list[dict[str, Any]]:
            errors: list[str] = []
            for url in self.urls:
                try:
                    async with self._client().get(f"{url}/api/kpis") as response:
                        response.raise_for_status()
                        body = await response.json()
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    errors.append(f"{url}: {type(exc).__name__}")
                    continue
                if body.get("available"):
                    return list(body.get("rows", []))
            raise LookupError("no worker serves KPI rows (" + ", ".join(errors or ["none available"]) + ")")

        return rows
