"""Event-streaming journey orchestrator: touchpoints in, next-best actions out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("journey-orchestrator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
