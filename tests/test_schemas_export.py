"""The JSON Schema files channel apps validate against must match the pydantic models exactly."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from conftest import SHARED_EXAMPLES

from schemas import export

EXAMPLES = SHARED_EXAMPLES / "events.jsonl"


def test_committed_schema_files_match_the_models() -> None:
    assert export.drifted_files() == [], "run `python -m schemas.export` and commit schemas/json/"


def test_check_exits_1_on_drift_and_0_after_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "JSON_DIR", tmp_path)
    assert export.main(["--check"]) == 1
    assert export.main([]) == 0
    assert export.main(["--check"]) == 0
    action = tmp_path / "action.schema.json"
    action.write_text(action.read_text().replace('"Action"', '"Act"'))
    assert export.main(["--check"]) == 1


def test_output_is_stable_sorted_and_ends_with_a_newline() -> None:
    text = export.render(export.touchpoint_schema())
    assert text.endswith("}\n")
    assert text == export.render(json.loads(text))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((export.JSON_DIR / "touchpoint.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_json_schema_accepts_the_example_events(validator: jsonschema.Draft202012Validator) -> None:
    for line in EXAMPLES.read_text().splitlines():
        assert not list(validator.iter_errors(json.loads(line))), line


BASE = {
    "event_id": "e",
    "type": "x.y",
    "channel": "web",
    "occurred_at": "2026-05-04T09:00:00Z",
    "customer_id": "c",
}


@pytest.mark.parametrize(
    "changes",
    [
        {"customer_id": None},
        {"occurred_at": "2026-05-04T09:00:00"},
        {"identifiers": {"Device": "d"}},
        {"type": "consent.updated", "properties": {"channel": "email", "granted": "no"}},
        {"type": "cart.item_added", "properties": {"qty": 1}},
        {"type": "order.completed", "properties": {"order_id": "o", "total": -1}},
        {"type": "location.updated"},
    ],
)
def test_json_schema_refuses_what_the_models_refuse(
    validator: jsonschema.Draft202012Validator, changes: dict[str, object]
) -> None:
    data = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert list(validator.iter_errors(data))
