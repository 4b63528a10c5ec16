"""The systems a benchmark run compares, each a runnable module printing one JSON result line.

Every module consumes the same pre-produced touchpoint topics until it has seen `--expect`
messages and times first-to-last message, so consumer-group joins (slow on the embedded broker)
are not counted against anyone.
"""
