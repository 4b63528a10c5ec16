"""Write the event and action contract as JSON Schema files for channel apps in other languages.

The pydantic models are the source of truth; the files in `schemas/json/` are generated from them
so a Node, Java or Go team can validate what it publishes without reading Python. Rules the models
enforce in code (one identifier at least, the properties of well-known event types, `context.geo`
for `location.updated`) are added here as plain JSON Schema so any validator checks them too.
Two checks stay Python-only and are named in the descriptions: the IANA timezone and the 1 MiB limit.

    python -m schemas.export          # rewrite the files
    python -m schemas.export --check  # exit 1 if they differ from the models (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from schemas.action import Action
from schemas.touchpoint import MAX_EVENT_BYTES, WELL_KNOWN_PROPERTIES, Touchpoint

JSON_DIR = Path(__file__).resolve().parent / "json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
RFC3339_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"


def _identity_required() -> list[dict[str, Any]]:
    """At least one usable identity, as `Touchpoint._checks` demands."""
    return [
        {"required": ["customer_id"], "properties": {"customer_id": {"type": "string"}}},
        {"required": ["anonymous_id"], "properties": {"anonymous_id": {"type": "string"}}},
        {"required": ["identifiers"], "properties": {"identifiers": {"type": "object", "minProperties": 1}}},
    ]


def _well_known_types() -> list[dict[str, Any]]:
    """One `if type == T then properties match` clause per well-known event type."""
    clauses: list[dict[str, Any]] = []
    for event_type, model in WELL_KNOWN_PROPERTIES.items():
        props_schema = model.model_json_schema()
        props_schema.pop("title", None)
        props_schema.pop("description", None)
        then: dict[str, Any] = {"properties": {"properties": props_schema}}
        if props_schema.get("required"):
            then["required"] = ["properties"]
        clauses.append(
            {"if": {"properties": {"type": {"const": event_type}}, "required": ["type"]}, "then": then}
        )
    clauses.append(
        {
            "if": {"properties": {"type": {"const": "location.updated"}}, "required": ["type"]},
            "then": {
                "required": ["context"],
                "properties": {"context": {"type": "object", "required": ["geo"]}},
            },
        }
    )
    return clauses


def touchpoint_schema() -> dict[str, Any]:
    schema = Touchpoint.model_json_schema()
    props = schema["properties"]
    props["occurred_at"]["pattern"] = RFC3339_WITH_OFFSET
    props["occurred_at"]["description"] = "RFC 3339 with an offset or Z, e.g. 2026-05-04T09:00:00Z"
    for branch in props["identifiers"]["anyOf"]:
        if branch.get("type") == "object":
            branch["additionalProperties"] = False
    schema["$defs"]["EventContext"]["properties"]["timezone"]["description"] = (
        "IANA timezone name, e.g. Europe/Paris (checked against the tz database by the orchestrator)"
    )
    schema["description"] = (
        f"{schema['description']} One JSON object per Kafka message on `touchpoints.<channel>`, "
        f"at most {MAX_EVENT_BYTES} bytes (1 MiB) of UTF-8. Unknown top-level fields are kept."
    )
    schema["anyOf"] = _identity_required()
    schema["allOf"] = _well_known_types()
    return {"$schema": DRAFT, **schema}


def action_schema() -> dict[str, Any]:
    (ref,) = msgspec.json.schema(Action)["$defs"].values()
    return {"$schema": DRAFT, **ref}


def render(schema: dict[str, Any]) -> str:
    """Sorted keys and a trailing newline, so regenerating never produces a diff by itself."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    return {
        JSON_DIR / "touchpoint.schema.json": render(touchpoint_schema()),
        JSON_DIR / "action.schema.json": render(action_schema()),
    }


def drifted_files() -> list[Path]:
    return [
        path
        for path, text in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    args = parser.parse_args(argv)
    if args.check:
        drifted = drifted_files()
        for path in drifted:
            print(f"{path}: out of date, run `python -m schemas.export`", file=sys.stderr)
        return 1 if drifted else 0
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in expected_files().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
