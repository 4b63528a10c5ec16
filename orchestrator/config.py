"""Settings, read once from the environment (``JOURNEY_*``) or given by CLI flags.

An unset Kafka bootstrap or Redis URL is not an error: it means "start the embedded ones",
so a fresh checkout runs with nothing configured.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CHANNELS: tuple[str, ...] = ("web", "mobile", "store", "chat", "email", "social", "call_center")
EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "examples" / "rules"


class Settings(BaseSettings):
    """Every knob of a worker; the names are the contract that `deploy/` relies on."""

    model_config = SettingsConfigDict(env_prefix="JOURNEY_", extra="ignore")

    kafka_bootstrap: str | None = Field(None, description="host:port[,host:port]; unset = embedded broker")
    redis_url: str | None = Field(None, description="redis://…; unset = embedded Redis")
    rules: Path = Field(EXAMPLE_RULES, description="rule file or folder, hot-reloaded")

    app_id: str = "journey"
    web_host: str = "0.0.0.0"
    web_port: int = 6066
    web_token: str | None = Field(None, description="bearer token required by every endpoint but probes")
    data_dir: Path = Path(".journey-data")
    store: str = "rocksdb://"

    touchpoints_prefix: str = "touchpoints."
    actions_prefix: str = "actions."
    dlq_topic: str = "touchpoints.dlq"
    internal_prefix: str = "journey."
    channels: list[str] = Field(default_factory=lambda: list(DEFAULT_CHANNELS))
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)

    context_ttl_s: int = Field(30 * 24 * 3600, description="TTL of the per-customer Redis context view")
    kafka_session_timeout_s: float | None = Field(
        None,
        gt=0,
        description="consumer-group session timeout; unset = 10 s. A dead worker's partitions move after "
        "it, and on the embedded broker a new group's first assignment takes about half of it",
    )
    kafka_single_record_batches: bool = Field(
        False,
        description="produce every record in a batch of its own: for brokers that report a partition's end "
        "as the last batch's base offset + 1 (the embedded Tansu), where Faust would stop recovering a "
        "table before the tail of its changelog. Set automatically for the embedded broker",
    )
    kafka_producer_linger_ms: float = Field(
        5.0,
        ge=0,
        description="how long the producer gathers records into one request. Every batch waits for its "
        "output to be acknowledged before writing state, so this adds up to that much to each hop; "
        "without it each changelog record and action tends to travel in a request of its own "
        "(benchmarks/RESULTS.md)",
    )
    timer_interval_s: float = Field(0.2, gt=0, description="how often due waits are looked for")
    rocksdb_block_cache_mb: int = Field(
        16,
        ge=1,
        description="block cache of each table partition's RocksDB store. Faust's default, 2 GiB per "
        "partition and table, lets a worker's RSS grow with the number of customers it owns",
    )
    rocksdb_write_buffer_mb: int = Field(
        8, ge=1, description="memtable size of each table partition's RocksDB store (two are kept)"
    )

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: Path | None = None

    @cached_property
    def touchpoint_pattern(self) -> str:
        """Regex of every touchpoint topic except the dead-letter one."""
        prefix = self.touchpoints_prefix.replace(".", r"\.")
        dlq = self.dlq_topic.removeprefix(self.touchpoints_prefix).replace(".", r"\.")
        return rf"^{prefix}(?!{dlq}$)[a-z0-9_\-]+$"

    @property
    def ingest_group(self) -> str:
        """Consumer group of the touchpoint topics (orchestrator/runtime/touchpoint_consumer.py); Faust's
        own group, `app_id`, consumes the internal topics."""
        return f"{self.app_id}-ingest"

    def touchpoint_topic(self, channel: str) -> str:
        return f"{self.touchpoints_prefix}{channel}"

    def action_topic(self, channel: str) -> str:
        return f"{self.actions_prefix}{channel}"

    def internal_topic(self, name: str) -> str:
        return f"{self.internal_prefix}{name}"
