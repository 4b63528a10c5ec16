"""The worked example of /work/shared/examples must replay to exactly its expected actions (CLI and API)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import SHARED_EXAMPLES
from engine_helpers import action_lines, run

from orchestrator.eventfile import read_events
from orchestrator.rules.loader import load_rules

EXAMPLES = SHARED_EXAMPLES
UNTIL = "2026-05-04T14:00:00Z"
SECTION_2_FIELDS = {
    "action_id", "rule_id", "rule_version", "customer_id", "type", "channel", "category", "params",
    "context", "trigger_event_id", "decided_at", "status", "variant",
}  # fmt: skip


def _expected() -> list[dict[str, Any]]:
    lines = (EXAMPLES / "expected.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _assert_matches(actual: list[dict[str, Any]]) -> None:
    expected = _expected()
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected, strict=True):
        assert got.keys() >= SECTION_2_FIELDS
        for key, value in want.items():
            if key == "params":
                assert got["params"].items() >= value.items(), (got, want)
            else:
                assert got[key] == value, (key, got, want)


def test_example_via_api() -> None:
    outcome = run(load_rules(EXAMPLES / "rules.yaml"), read_events(EXAMPLES / "events.jsonl"), until=UNTIL)
    _assert_matches(action_lines(outcome.steps))


def test_example_via_cli() -> None:
    argv = [
        str(Path(sys.executable).with_name("journey")),
        "replay",
        str(EXAMPLES / "rules.yaml"),
        str(EXAMPLES / "events.jsonl"),
        "--until",
        UNTIL,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    _assert_matches([json.loads(line) for line in done.stdout.splitlines() if line.strip()])


def test_example_explain_shows_the_deferral() -> None:
    """`--explain` adds the quiet-hours deferral of the abandoned-cart email, in decision order."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    result = CliRunner().invoke(
        app,
        [
            "replay",
            str(EXAMPLES / "rules.yaml"),
            str(EXAMPLES / "events.jsonl"),
            "--until",
            UNTIL,
            "--explain",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    deferred = [line for line in lines if line.get("status") == "deferred"]
    assert [(d["rule_id"], d["decided_at"], d["until"]) for d in deferred] == [
        ("abandoned-cart", "2026-05-04T09:31:00Z", "2026-05-04T12:00:00Z")
    ]
    assert [line["decided_at"] for line in lines] == sorted(line["decided_at"] for line in lines)


def test_example_kpis_via_cli() -> None:
    """`--kpis` prints one row per rule (no variants: `default`; no goal: null conversions and rate)."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    args = [
        "replay",
        str(EXAMPLES / "rules.yaml"),
        str(EXAMPLES / "events.jsonl"),
        "--until",
        UNTIL,
        "--kpis",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert rows == [
        {"rule_id": rule, "group": "default", "actions": 1, "conversions": None, "rate": None, "uplift": None}
        for rule in ("abandoned-cart", "nearby-store-offer", "chatbot-to-human")
    ]
