"""`journey rules validate PATH`: the check marketing teams run (and CI runs) before a rule file ships.

Everything goes to stdout, errors included, one `file:line:column: message` per line, so editors
and CI annotators can parse the output as it is; the exit code says whether the set is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.rules.durations import format_duration
from orchestrator.rules.loader import RuleLoadError, load_rules
from orchestrator.rules.model import Rule, RuleSet

rules_app = typer.Typer(name="rules", help="Work with rule files.", no_args_is_help=True)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _rule_line(rule: Rule) -> str:
    channels = f" [{', '.join(sorted(rule.trigger.channels))}]" if rule.trigger.channels else ""
    extras = []
    if rule.wait is not None:
        extras.append(f"wait {format_duration(rule.wait.for_s)}")
    if rule.variants:
        extras.append(f"variants {', '.join(v.id for v in rule.variants)}")
    if rule.goal is not None:
        extras.append(f"goal {rule.goal.event} within {format_duration(rule.goal.within_s)}")
    suffix = f" ({'; '.join(extras)})" if extras else ""
    return f"  {rule.id}: {rule.trigger.event}{channels} → {rule.action.type}{suffix}"


def summary(rule_set: RuleSet) -> str:
    """The short report printed for a valid set."""
    head = (
        f"OK: {_plural(len(rule_set.rules), 'rule')} across {_plural(len(rule_set.sources), 'file')}, "
        f"version {rule_set.version}"
    )
    return "\n".join([head, *(_rule_line(rule) for rule in rule_set.rules)])


@rules_app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(help="A rule file, or a folder of *.yaml / *.yml rule files.")],
) -> None:
    """Check a rule file or folder: exit 0 with a summary, or exit 1 listing every error."""
    try:
        rule_set = load_rules(path)
    except RuleLoadError as exc:
        for error in exc.errors:
            typer.echo(str(error))
        typer.echo(f"{_plural(len(exc.errors), 'error')}: rule set refused")
        raise typer.Exit(code=1) from None
    typer.echo(summary(rule_set))


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
