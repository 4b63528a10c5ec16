"""The topics the orchestrator reads and writes, created up front with the configured partition count.

Faust refuses to run a table whose changelog has a different partition count than its source topic
(`PartitionsMismatch`), and auto-created topics get the broker's default count: so every topic is
created explicitly here, by `journey topics create` on a real cluster and by the worker at start-up.
Every non-compacted topic carries an explicit `retention.ms` because some clients (Quix Streams) read
that config back and Tansu reports nothing for a topic created without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from orchestrator.config import Settings
from orchestrator.lag import kafka_client_kwargs
from orchestrator.logging import get_logger

log = get_logger(__name__)

ACTION_CHANNELS: tuple[str, ...] = ("email", "push", "sms", "chat", "call_center")
HOLDOUT_CHANNEL = "holdout"
# Suffixes (after `internal_prefix`) of the runtime's repartition topics; `journey topics create` makes them.
RUNTIME_REPARTITION: tuple[str, ...] = ("identity", "customers")

DAY_MS = 24 * 3600 * 1000
RETENTION_MS = 7 * DAY_MS
# Dead letters are kept for people to investigate and replay, long after the cause is fixed.
DLQ_RETENTION_MS = 90 * DAY_MS
_TOPIC_ALREADY_EXISTS = 36


class TopicError(RuntimeError):
    """The broker refused to create a topic for a reason other than its existing already."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict, hash=False)

    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, self.partitions, self.replication_factor, topic_configs=self.config)


@dataclass
class TopicReport:
    """What `ensure_topics` found: a partition mismatch is reported, not fixed (that needs a migration)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    partition_mismatch: dict[str, int] = field(default_factory=dict)


def plan_topics(
    settings: Settings, *, repartition: Iterable[str] = (), changelogs: Iterable[str] = ()
) -> list[TopicSpec]:
    """Every topic the orchestrator needs, in a stable order; `repartition`/`changelogs` are full names."""
    regular = {"retention.ms": str(RETENTION_MS), "cleanup.policy": "delete"}

    def spec(name: str, config: dict[str, str]) -> TopicSpec:
        return TopicSpec(name, settings.partitions, settings.replication_factor, dict(config))

    names = [settings.touchpoint_topic(channel) for channel in settings.channels]
    names += [settings.action_topic(channel) for channel in (*ACTION_CHANNELS, HOLDOUT_CHANNEL)]
    names += list(repartition)
    specs = [spec(name, regular) for name in dict.fromkeys(names)]
    specs.append(
        spec(settings.dlq_topic, {"retention.ms": str(DLQ_RETENTION_MS), "cleanup.policy": "delete"})
    )
    specs += [spec(name, {"cleanup.policy": "compact"}) for name in dict.fromkeys(changelogs)]
    return specs


def runtime_repartition_topics(settings: Settings) -> list[str]:
    return [settings.internal_topic(name) for name in RUNTIME_REPARTITION]


async def ensure_topics(
    settings: Settings,
    bootstrap: str | None = None,
    *,
    repartition: Iterable[str] = (),
    changelogs: Iterable[str] = (),
    timeout_s: float = 30.0,
) -> TopicReport:
    """Create whatever is missing; topics that exist already are left as they are (idempotent)."""
    servers = bootstrap or settings.kafka_bootstrap
    if not servers:
        raise TopicError("no Kafka bootstrap given and JOURNEY_KAFKA_BOOTSTRAP is unset")
    specs = plan_topics(settings, repartition=repartition, changelogs=changelogs)
    timeout_ms = int(timeout_s * 1000)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=servers, request_timeout_ms=timeout_ms, **kafka_client_kwargs(settings)
    )
    await admin.start()
    try:
        response = await admin.create_topics([s.new_topic() for s in specs], timeout_ms=timeout_ms)
        report = TopicReport()
        failures: list[str] = []
        for name, code, message in (error[:3] for error in response.topic_errors):
            if code == 0:
                report.created.append(name)
            elif code == _TOPIC_ALREADY_EXISTS:
                report.existing.append(name)
            else:
                failures.append(f"{name}: {message or for_code(code).__name__} (error {code})")
        if failures:
            raise TopicError("could not create topics: " + "; ".join(failures))
        if report.existing:
            expected = {s.name: s.partitions for s in specs}
            for described in await admin.describe_topics(report.existing):
                count = len(described["partitions"])
                if count != expected[described["topic"]]:
                    report.partition_mismatch[described["topic"]] = count
    finally:
        await admin.close()
    for name, count in report.partition_mismatch.items():
        log.warning("topics.partition_mismatch", topic=name, partitions=count, expected=settings.partitions)
    log.info("topics.ensured", created=len(report.created), existing=len(report.existing))
    return report
