"""Streaming runtime helpers: everything the Faust agents need that is not a decision.

The agents in `agents/` stay thin: they move batches between topics and tables and call the
pure engine; the helpers here hold routing, the internal message codec, the deadline index,
the Redis context view writer and the rules hot-reload.
"""
