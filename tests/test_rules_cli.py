"""`journey rules validate PATH`: exit codes and what it prints, through the real `journey` entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from orchestrator.cli.main import app

FIXTURES = Path(__file__).parent / "rules"
runner = CliRunner()


def test_valid_file_prints_a_summary_and_exits_0() -> None:
    result = runner.invoke(app, ["rules", "validate", str(FIXTURES / "spec-full.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("OK: 1 rule across 1 file, version ")
    assert len(lines[0].rsplit(" ", 1)[1]) == 12
    assert lines[1] == "  abandoned-cart: cart.item_added [mobile, web] → email.send (wait 30m)"


def test_valid_folder_summary_lists_every_rule() -> None:
    result = runner.invoke(app, ["rules", "validate", str(FIXTURES / "folder")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [
        "  abandoned-cart: cart.item_added → email.send (wait 1h)",
        "  chatbot-to-human: chat.message [chat] → chat.handoff",
    ]
    assert "2 rules across 2 files" in result.output


def test_welcome_summary_shows_variants_and_goal() -> None:
    result = runner.invoke(app, ["rules", "validate", str(FIXTURES / "spec-welcome.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "  welcome: newsletter.signup → email.send (variants plain, discount; goal order.completed within 3d)"
        in result.output
    )


def test_invalid_file_prints_every_error_on_stdout_and_exits_1() -> None:
    path = FIXTURES / "many-errors.yaml"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "journey"), "rules", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "11 errors: rule set refused"
    assert all(line.startswith(f"{path}:") for line in lines[:-1])
    assert f"{path}:6:5: unknown key 'trigers' (did you mean 'trigger'?)" in lines
    assert len(lines) == 12


def test_missing_path_exits_1() -> None:
    result = runner.invoke(app, ["rules", "validate", "/nonexistent/rules.yaml"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "/nonexistent/rules.yaml:1:1: no such file or directory",
        "1 error: rule set refused",
    ]
