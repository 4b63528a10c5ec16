"""`journey publish`: a file of touchpoints to Kafka, bad lines reported by number and skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kafka_readback import read_back
from typer.testing import CliRunner

from orchestrator.cli.main import app

JOURNEY = Path(sys.executable).with_name("journey")


def line(n: int, channel: str) -> str:
    return json.dumps(
        {
            "event_id": f"cli-{n}",
            "type": "product.viewed",
            "channel": channel,
            "occurred_at": "2026-05-04T09:00:00Z",
            "customer_id": f"c-{n}",
            "properties": {"sku": "UMBRELLA-STORM"},
        }
    )


def run(
    args: list[str], prefix: str, bootstrap: str | None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    env["JOURNEY_TOUCHPOINTS_PREFIX"] = f"{prefix}touchpoints."
    if bootstrap:
        env["JOURNEY_KAFKA_BOOTSTRAP"] = bootstrap
    return subprocess.run(
        [str(JOURNEY), "publish", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def test_without_kafka_it_says_what_to_configure(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(line(1, "web") + "\n")
    result = CliRunner().invoke(app, ["publish", str(events)])
    assert result.exit_code == 2
    assert "JOURNEY_KAFKA_BOOTSTRAP" in result.output


@pytest.mark.integration
async def test_each_event_goes_to_its_channel_and_bad_lines_are_reported(
    tmp_path: Path, kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join([line(1, "web"), "{oops", "", line(2, "mobile"), '{"event_id": "x"}', line(3, "web")])
        + "\n"
    )
    result = run([str(events)], unique_topic_prefix, kafka_bootstrap)
    assert result.returncode == 1
    assert f"{events}:2: not valid JSON" in result.stderr
    assert f"{events}:5: `type`: is required" in result.stderr
    assert "published 3 event(s)" in result.stdout and "skipped 2 invalid line(s)" in result.stdout
    prefix = f"{unique_topic_prefix}touchpoints."
    records = await read_back(kafka_bootstrap, [f"{prefix}web", f"{prefix}mobile"], 3)
    assert sorted((r.topic, json.loads(r.value)["event_id"]) for r in records) == [
        (f"{prefix}mobile", "cli-2"),
        (f"{prefix}web", "cli-1"),
        (f"{prefix}web", "cli-3"),
    ]


@pytest.mark.integration
async def test_topic_and_channel_and_stdin(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    topic = f"{unique_topic_prefix}replayed"
    stdin = "\n".join([line(1, "web"), line(2, "mobile")]) + "\n"
    result = run([topic, "-"], unique_topic_prefix, kafka_bootstrap, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert f"published 2 event(s) to {topic}" in result.stdout
    result = run(["--channel", "store", "-"], unique_topic_prefix, kafka_bootstrap, stdin=stdin)
    assert result.returncode == 0, result.stderr
    store = f"{unique_topic_prefix}touchpoints.store"
    for name in (topic, store):
        records = await read_back(kafka_bootstrap, [name], 2)
        assert sorted(json.loads(r.value)["event_id"] for r in records) == ["cli-1", "cli-2"]
