"""Pattern subscription to `touchpoints.*` (Faust 0.15 accepts a pattern but never subscribes to it).

The touchpoint topic starts with the configured channels' topics; a background task lists the
broker's topics periodically and adds any new name matching `touchpoint_pattern` (a new channel
app needs no worker change). Faust re-subscribes after its own settle delay, then rebalances.
"""

from __future__ import annotations

import asyncio
import re

import faust
from aiokafka.admin import AIOKafkaAdminClient

from orchestrator.config import Settings
from orchestrator.lag import kafka_client_kwargs
from orchestrator.logging import get_logger

log = get_logger(__name__)


async def matching_topics(settings: Settings, bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_client_kwargs(settings))
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    pattern = re.compile(settings.touchpoint_pattern)
    return {name for name in names if pattern.match(name)}


async def follow_pattern(app: faust.App, topic: faust.TopicT, settings: Settings, bootstrap: str,
                         interval_s: float = 30.0) -> None:
    """Background task: widen `topic` to every matching topic, forever."""
    while True:
        try:
            found = await matching_topics(settings, bootstrap)
        except Exception as exc:  # the broker may be briefly unreachable; try again next round
            log.warning("touchpoint_topics_list_failed", error=str(exc))
        else:
            new = sorted(found - set(topic.topics))
            if new:
                topic.topics = [*topic.topics, *new]
                app.topics.discard(topic)
                app.topics.add(topic)
                log.info("touchpoint_topics_added", topics=new)
        await asyncio.sleep(interval_s)
