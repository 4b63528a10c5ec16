"""The one key → partition function used for every internal hop.

Faust tables write to the changelog partition of the message being processed, so a profile's
state lives in the partition its messages are sent to. Every sender must therefore agree on the
same function; Kafka's own partitioner is never used for internal topics (we always send with
an explicit `partition=`).
"""

from __future__ import annotations

import zlib


def partition_for(key: str, partitions: int) -> int:
    """Stable across processes and Python versions (unlike `hash()`)."""
    return zlib.crc32(key.encode()) % partitions
