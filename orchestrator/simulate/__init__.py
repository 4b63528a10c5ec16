"""Omnichannel customer simulator: personas, a deterministic workload, and a live publishing loop.

`generate` gives the messages with absolute times (replay files, tests); `simulate` publishes them live
to the per-channel topics, the way `journey demo`, `journey simulate` and the benchmarks drive the system.
"""

from orchestrator.simulate.catalog import PRODUCTS, REGIONS, SOFA, STORES, UMBRELLAS, Store
from orchestrator.simulate.personas import CHECKOUT_WITHIN_S, EXPECTED_RULES, PERSONAS
from orchestrator.simulate.runner import SimulationReport, simulate
from orchestrator.simulate.workload import (
    DEFAULT_START,
    MALFORMED_KINDS,
    Message,
    PlannedMessage,
    generate,
    plan,
)

__all__ = [
    "CHECKOUT_WITHIN_S",
    "DEFAULT_START",
    "EXPECTED_RULES",
    "MALFORMED_KINDS",
    "PERSONAS",
    "PRODUCTS",
    "REGIONS",
    "SOFA",
    "STORES",
    "UMBRELLAS",
    "Message",
    "PlannedMessage",
    "SimulationReport",
    "Store",
    "generate",
    "plan",
    "simulate",
]
