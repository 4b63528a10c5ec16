"""The pure decision core: state, identity, rules evaluation, waits, caps, experiments, privacy."""

from orchestrator.engine.core import Engine
from orchestrator.engine.identity import Resolution, alias_keys, resolve_identity
from orchestrator.engine.outcomes import Conversion, Deferral, Step, Suppression
from orchestrator.engine.state import CustomerState, decode_state, encode_state

__all__ = [
    "Conversion",
    "CustomerState",
    "Deferral",
    "Engine",
    "Resolution",
    "Step",
    "Suppression",
    "alias_keys",
    "decode_state",
    "encode_state",
    "resolve_identity",
]
