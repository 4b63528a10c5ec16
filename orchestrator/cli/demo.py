"""`journey demo`: embedded Kafka and Redis, a worker, the simulator, and live actions on screen."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from orchestrator.config import EXAMPLE_RULES
from orchestrator.demo import DemoOptions, run_demo
from orchestrator.logging import configure_logging
from orchestrator.rules.loader import load_rules

CHANNEL_STYLE = {"email": "cyan", "push": "magenta", "chat": "yellow", "holdout": "dim"}


def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print actions as JSON lines instead.")] = False,
    seed: Annotated[int, typer.Option(help="Simulator seed: the same seed plays the same customers.")] = 7,
    customers: Annotated[int, typer.Option(help="Customers per simulated round.")] = 24,
    rate: Annotated[float, typer.Option(help="Cap on simulated events per second (0 = no cap).")] = 0.0,
    rules: Annotated[Path, typer.Option(help="Rule file or folder.")] = EXAMPLE_RULES,
) -> None:
    """Start everything on the embedded defaults and print each decided action as it happens."""
    configure_logging("WARNING", "console")
    err = Console(stderr=True)
    out = Console(highlight=False)
    why = {rule.id: rule.description for rule in load_rules(rules).rules}

    def say(message: str) -> None:
        err.print(f"[bold green]demo[/] {escape(message)}")

    def show(action: dict[str, object]) -> None:
        if json_output:
            sys.stdout.write(orjson.dumps(action).decode() + "\n")
            sys.stdout.flush()
            return
        channel = "holdout" if action.get("status") == "held_out" else str(action.get("channel"))
        moment = datetime.fromisoformat(str(action["decided_at"]).replace("Z", "+00:00")).strftime("%H:%M:%S")
        style = CHANNEL_STYLE.get(channel, "white")
        out.print(
            f"{moment}  [bold]{escape(str(action['customer_id']))}[/]  {escape(str(action['rule_id']))}  "
            f"[{style}]{escape(channel)}[/] {escape(str(action['type']))}  "
            f"[dim]{escape(why.get(str(action['rule_id']), ''))}[/]"
        )

    options = DemoOptions(duration_s=duration, seed=seed, customers=customers, rate=rate, rules=rules)
    asyncio.run(run_demo(options, show, say))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
