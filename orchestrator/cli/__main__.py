"""`python -m orchestrator.cli …` is `journey …`: how the demo starts a worker with this interpreter."""

from orchestrator.cli.main import run

run()
