"""Topic administration: the plan names every topic of the contract, creation is idempotent, and the
configs that matter (DLQ retention, compacted changelogs, partition count) reach the broker."""

from __future__ import annotations

import os

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.config import Settings
from orchestrator.topics import (
    DLQ_RETENTION_MS,
    RETENTION_MS,
    TopicError,
    ensure_topics,
    plan_topics,
    runtime_repartition_topics,
)


def test_plan_names_every_topic_of_the_contract() -> None:
    settings = Settings(partitions=3, replication_factor=2)
    plan = plan_topics(
        settings, repartition=runtime_repartition_topics(settings), changelogs=["journey-customers-changelog"]
    )
    names = [spec.name for spec in plan]
    assert names == [
        *(f"touchpoints.{c}" for c in ("web", "mobile", "store", "chat", "email", "social", "call_center")),
        *(f"actions.{c}" for c in ("email", "push", "sms", "chat", "call_center", "holdout")),
        "journey.identity",
        "journey.customers",
        "touchpoints.dlq",
        "journey-customers-changelog",
    ]
    assert {(spec.partitions, spec.replication_factor) for spec in plan} == {(3, 2)}
    by_name = {spec.name: spec.config for spec in plan}
    assert by_name["touchpoints.dlq"]["retention.ms"] == str(DLQ_RETENTION_MS)
    assert int(by_name["touchpoints.dlq"]["retention.ms"]) > RETENTION_MS
    assert by_name["touchpoints.web"] == {"retention.ms": str(RETENTION_MS), "cleanup.policy": "delete"}
    assert by_name["journey-customers-changelog"] == {"cleanup.policy": "compact"}


def test_plan_follows_configured_channels_and_prefixes() -> None:
    settings = Settings(
        channels=["kiosk"], touchpoints_prefix="tp.", actions_prefix="act.", dlq_topic="tp.dead"
    )
    names = [spec.name for spec in plan_topics(settings)]
    assert names[0] == "tp.kiosk" and "act.holdout" in names and names[-1] == "tp.dead"
    assert not any(name.startswith("touchpoints.") for name in names)


async def test_ensure_topics_without_bootstrap_is_refused() -> None:
    with pytest.raises(TopicError, match="JOURNEY_KAFKA_BOOTSTRAP"):
        await ensure_topics(Settings())


@pytest.mark.integration
async def test_ensure_topics_creates_then_is_idempotent(isolated_settings: Settings) -> None:
    settings = isolated_settings.model_copy(update={"partitions": 3})
    repartition = runtime_repartition_topics(settings)
    changelog = f"{settings.app_id}-customers-changelog"
    first = await ensure_topics(settings, repartition=repartition, changelogs=[changelog])
    expected = [spec.name for spec in plan_topics(settings, repartition=repartition, changelogs=[changelog])]
    assert sorted(first.created) == sorted(expected) and first.existing == []

    again = await ensure_topics(settings, repartition=repartition, changelogs=[changelog])
    assert again.created == [] and sorted(again.existing) == sorted(expected)
    assert again.partition_mismatch == {}

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(expected)
        assert {topic["topic"]: len(topic["partitions"]) for topic in described} == dict.fromkeys(expected, 3)
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in (settings.dlq_topic, changelog)]
        )
    finally:
        await admin.close()
    configs = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for response in responses
        for resource in response.resources
    }
    assert configs[settings.dlq_topic]["retention.ms"] == str(DLQ_RETENTION_MS)
    assert configs[changelog]["cleanup.policy"] == "compact"


@pytest.mark.integration
async def test_partition_mismatch_is_reported(isolated_settings: Settings) -> None:
    await ensure_topics(isolated_settings)
    report = await ensure_topics(isolated_settings.model_copy(update={"partitions": 1}))
    assert report.created == []
    assert report.partition_mismatch[isolated_settings.dlq_topic] == isolated_settings.partitions


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "JOURNEY_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
        "JOURNEY_TOUCHPOINTS_PREFIX": settings.touchpoints_prefix,
        "JOURNEY_ACTIONS_PREFIX": settings.actions_prefix,
        "JOURNEY_DLQ_TOPIC": settings.dlq_topic,
        "JOURNEY_INTERNAL_PREFIX": settings.internal_prefix,
    }


@pytest.mark.integration
def test_cli_topics_create(isolated_settings: Settings) -> None:
    runner = CliRunner()
    env = _cli_env(isolated_settings)
    changelog = f"{isolated_settings.app_id}-x-changelog"
    first = runner.invoke(app, ["topics", "create", "--changelog", changelog], env=env)
    assert first.exit_code == 0, first.output
    assert f"created  {isolated_settings.dlq_topic}" in first.output
    assert f"created  {isolated_settings.internal_prefix}identity" in first.output
    assert f"created  {changelog}" in first.output

    again = runner.invoke(app, ["topics", "create"], env=env)
    assert again.exit_code == 0, again.output
    assert "created  " not in again.output and f"exists   {isolated_settings.dlq_topic}" in again.output

    mismatch = runner.invoke(app, ["topics", "create", "--partitions", "2"], env=env)
    assert mismatch.exit_code == 1
    assert "has 4 partitions, expected 2" in mismatch.output


def test_cli_topics_create_needs_a_cluster() -> None:
    assert "JOURNEY_KAFKA_BOOTSTRAP" not in os.environ
    result = CliRunner().invoke(app, ["topics", "create"])
    assert result.exit_code == 2
    assert "JOURNEY_KAFKA_BOOTSTRAP" in result.output


def test_cli_topics_dry_run_touches_nothing() -> None:
    result = CliRunner().invoke(app, ["topics", "create", "--dry-run", "--partitions", "6"])
    assert result.exit_code == 0, result.output
    assert (
        "touchpoints.dlq\tpartitions=6\treplicas=1\tcleanup.policy=delete,retention.ms=7776000000"
        in result.output
    )
