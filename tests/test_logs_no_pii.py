"""No personal data in logs, dead-letter reasons or metrics (SPEC §7), with the worker at DEBUG.

The worked example of ../shared/examples (the same seven events, re-timed to now, cart wait 4 s),
with more personal data than the example carries — an email, a phone number and a name as traits — is
run through a worker logging JSON at DEBUG, followed by dead letters whose bad fields hold personal
data and an erasure. Then no trait value, email, chat text or coordinate of the customer may appear
in the worker's log output, in a dead-letter reason, or in a label value of `/metrics`.

Deliberately not checked: the DLQ's `original` (it must keep the bytes to be re-published, so the
DLQ topic is as sensitive as the touchpoint topics) and the action topics (a handoff carries the
customer context by contract). Ids (customer, anonymous, event) are allowed in logs by SPEC §7.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from conftest import SHARED_EXAMPLES, ProcessSpawner, worker_settings
from privacy_support import key_of, metric_samples, metrics_text, redis_view
from runtime_support import TopicReader, event, produce, values, wait_log, worked_example, write_rules

from orchestrator.config import Settings
from orchestrator.embedded import ManagedProcess
from orchestrator.privacy import erasure_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EMAIL = "ada.lovelace@example.com"
PHONE = "+1 514 555 0199"
NAME = "Ada Lovelace"
CHAT_TEXT = "is the chair in stock downtown?"
TRAITS = {"timezone": "America/Montreal", "tier": "gold", "email": EMAIL, "phone": PHONE, "name": NAME}
# What must never leave the process. "-73.567" is also a prefix of the geofence's -73.5673 (rule data,
# not the customer's), hence the pattern; "America/Montreal" only ever comes from the customer.
FORBIDDEN = [
    re.compile(r"\bgold\b"),
    re.compile(re.escape("America/Montreal")),
    re.compile(re.escape(EMAIL), re.IGNORECASE),
    re.compile(r"ada\.lovelace", re.IGNORECASE),
    re.compile(re.escape(PHONE)),
    re.compile(r"514\W?555\W?0199"),
    re.compile(NAME, re.IGNORECASE),
    re.compile(re.escape(CHAT_TEXT), re.IGNORECASE),
    re.compile(r"chair in stock"),
    re.compile(r"45\.5019"),
    re.compile(r"-73\.5670*(?![0-9])"),
]


def leaks(text: str) -> list[str]:
    return [pattern.pattern for pattern in FORBIDDEN if pattern.search(text)]


@pytest.fixture(scope="module")
def debug_settings(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return worker_settings(
        kafka_bootstrap,
        redis_url,
        tmp_path_factory.mktemp("pii-worker") / "data",
        rules=write_rules(tmp_path_factory.mktemp("pii-rules") / "rules.yaml", wait="4s"),
        log_format="json",
        log_level="DEBUG",
    )


@pytest.fixture(scope="module")
async def debug_worker(
    debug_settings: Settings, module_spawner: ProcessSpawner
) -> AsyncIterator[ManagedProcess]:
    process = module_spawner.journey("worker", settings=debug_settings)
    await wait_log(process, "worker_ready", timeout_s=120)
    yield process


def personal_dead_letters(customer: str) -> list[dict[str, Any]]:
    """Events whose one broken field holds personal data: the reason must name the field only."""
    base = {"customer_id": customer, "properties": {"text": CHAT_TEXT}}
    return [
        {**event(f"{customer}-d1", "chat.message", "chat", **base), "occurred_at": EMAIL},
        {**event(f"{customer}-d2", "chat.message", "chat", **base), "context": {"timezone": NAME}},
        {**event(f"{customer}-d3", "identify", "web", customer_id=customer), "identifiers": {EMAIL: PHONE}},
        {
            **event(f"{customer}-d4", "location.updated", "mobile", customer_id=customer),
            "context": {"geo": {}},
        },
        {
            **event(f"{customer}-d5", "identify", "web", customer_id=customer),
            "properties": {"traits": [NAME]},
        },
        {
            **event(f"{customer}-d6", "consent.updated", "web", customer_id=customer),
            "properties": {"granted": EMAIL},
        },
    ]


def publishable(settings: Settings, events: list[dict[str, Any]]) -> list[tuple[str, bytes | None, bytes]]:
    return [(settings.touchpoint_topic(e["channel"]), key_of(e), orjson.dumps(e)) for e in events]


async def test_no_personal_data_in_logs_reasons_or_metrics(
    debug_worker: ManagedProcess, debug_settings: Settings
) -> None:
    s = debug_settings
    run = uuid.uuid4().hex[:6]
    customer, anon = f"c-{run}", f"anon-{run}"
    first, then = worked_example(
        SHARED_EXAMPLES,
        customer,
        anon,
        identifiers={"email_sha256": "3f1c0a9e"},
        properties={"traits": TRAITS},
    )
    bootstrap = str(s.kafka_bootstrap)
    await produce(bootstrap, publishable(s, first), gap_s=0.2)  # across topics: in order
    await wait_log(debug_worker, "profile_merge_completed", where=lambda r: r.get("profile") == customer)
    await produce(bootstrap, publishable(s, then), gap_s=0.2)
    bad = personal_dead_letters(customer)
    await produce(bootstrap, publishable(s, bad))

    reader = TopicReader(bootstrap)
    actions = await reader.read(
        [s.action_topic(c) for c in ("email", "push", "chat")],
        until=lambda r: len([v for v in values(r) if v["customer_id"] == customer]) >= 3,
        timeout_s=40,
    )
    assert sorted(v["rule_id"] for v in values(actions) if v["customer_id"] == customer) == [
        "abandoned-cart",
        "chatbot-to-human",
        "nearby-store-offer",
    ], "the example journey ran (so its data went through every hop)"
    letters = await reader.read([s.dlq_topic], until=lambda r: len(values(r)) >= len(bad), timeout_s=30)
    reasons = [v["reason"] for v in values(letters)]
    assert len(reasons) == len(bad) and all(reasons)

    await produce(bootstrap, publishable(s, [erasure_event(customer, anonymous=False)]))
    deadline = time.monotonic() + 30
    while await redis_view(s, customer) is not None:
        assert time.monotonic() < deadline, "the erasure never deleted the view"
        await asyncio.sleep(0.3)

    metrics = await metrics_text(s)
    label_values = [value for sample in metric_samples(metrics) for value in sample.labels.values()]
    log_text = debug_worker.log_path.read_text(errors="replace")

    assert '"level": "debug"' in log_text or '"level":"debug"' in log_text, "the worker did not log at DEBUG"
    assert customer in log_text, "ids are logged (and the check below is looking at the right file)"
    assert not leaks(log_text), [line for line in log_text.splitlines() if leaks(line)][:5]
    assert not [reason for reason in reasons if leaks(reason)], reasons
    assert not leaks("\n".join(label_values)), label_values
    assert not leaks(metrics)
