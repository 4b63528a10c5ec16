"""The Faust app factory: topics, tables, agents and background tasks of one worker.

The app is a thin shell around the pure engine (`orchestrator.engine`): agents in `agents/` move
batches between topics and tables; every decision is the engine's. See docs/runtime.md.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import faust

from agents import customers, identity, ingest, timer
from orchestrator import metrics
from orchestrator.config import Settings
from orchestrator.runtime import changelog
from orchestrator.runtime.changelog import BatchedChangelogTable
from orchestrator.runtime.context_view import ContextViewWriter
from orchestrator.runtime.kpi_ledger import KpiLedger
from orchestrator.runtime.pipeline import RAW, Pipeline
from orchestrator.runtime.rebalance_guard import install as install_rebalance_guard
from orchestrator.runtime.rules_reload import LiveRules, ReloadResult
from orchestrator.runtime.web import install_web

DEFAULT_SESSION_TIMEOUT_S = 10.0


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=context,
    )


def store_options(settings: Settings) -> dict[str, int] | None:
    """RocksDB sizes per table partition, so memory stays bounded however many customers a worker owns
    (benchmarks/bench_store.py); None for the other stores, which take no such options."""
    if not settings.store.startswith("rocksdb"):
        return None
    return {
        "block_cache_size": settings.rocksdb_block_cache_mb * 2**20,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * 2**20,
        "max_write_buffer_number": 2,
    }


def create_app(settings: Settings, rules_path: Path | None = None) -> faust.App:
    """Build a worker's app; `settings.kafka_bootstrap` and `redis_url` must be set (embedded or real)."""
    if not settings.kafka_bootstrap or not settings.redis_url:
        raise ValueError("create_app needs kafka_bootstrap and redis_url (the CLI starts embedded ones)")
    rules = LiveRules.load(rules_path or settings.rules)
    install_rebalance_guard()
    session_timeout = settings.kafka_session_timeout_s or DEFAULT_SESSION_TIMEOUT_S
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap),
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        datadir=str(Path(settings.data_dir).resolve()),
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        # a killed worker's partitions move after this long (Faust's default is 60 s); on the
        # embedded broker a new group's first assignment also takes about half of it
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=session_timeout / 10,
        broker_rebalance_timeout=session_timeout,
        # dead letters carry the original (up to 1 MiB + base64): brokers may still refuse, see agents/ingest
        producer_max_request_size=4 * 1024 * 1024,
        producer_linger=settings.kafka_producer_linger_ms / 1000,
        **({"producer_max_batch_size": 1} if settings.kafka_single_record_batches else {}),
        # Tansu reports a partition's end offset as (base offset of its last batch) + 1, so after a
        # multi-record changelog batch Faust's own persisted offset looks "ahead of the topic" and the
        # check would crash every rebalance (docs/runtime.md, "Embedded broker quirks").
        recovery_consistency_check=False,
    )
    partitions = settings.partitions

    def table(name: str) -> BatchedChangelogTable:
        return changelog.table(app, name, partitions=partitions, options=store_options(settings))

    pipeline = Pipeline(
        settings=settings,
        app=app,
        rules=rules,
        views=ContextViewWriter(settings.redis_url, settings.context_ttl_s),
        identity_topic=app.topic(settings.internal_topic("identity"), partitions=partitions, **RAW),
        customers_topic=app.topic(settings.internal_topic("customers"), partitions=partitions, **RAW),
        dlq=app.topic(settings.dlq_topic, partitions=partitions, **RAW),
        aliases=table("aliases"),
        profiles=table("profiles"),
        deadlines=table("deadlines"),
        merges=table("merges"),
        kpis=KpiLedger(table("kpi_outcomes")),
    )
    app.journey = pipeline  # type: ignore[attr-defined]  # the seam for the web/dashboard views
    ingest.register(pipeline, session_timeout)
    for agent_module in (identity, customers, timer):
        agent_module.register(pipeline)
    lag_sampler = install_web(pipeline)

    def report_rules(result: ReloadResult) -> None:
        metrics.rules_loaded(result.version, result.ok)

    rules.on_change.append(report_rules)
    report_rules(rules.last)

    @app.task
    async def watch_rules() -> None:
        await rules.watch()

    @app.task
    async def sample_lag() -> None:
        await lag_sampler.run()

    @app.task
    async def write_views() -> None:
        await pipeline.views.run()

    return app


def changelog_topics(app: faust.App) -> list[str]:
    """Full names of the tables' changelogs, created up front with the same partition count."""
    return [t.changelog_topic.get_topic_name() for t in app.tables.values()]
