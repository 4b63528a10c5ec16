"""`journey demo` as a new user runs it: non-interactive, every flagship journey shown, exits clean.

The simulator is deterministic, so the test knows each simulated customer's persona and checks
every printed action against what that persona should (and should not) trigger.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import psutil
import pytest

from orchestrator.demo import DEMO_JOURNEY_SCALE
from orchestrator.simulate import EXPECTED_RULES
from orchestrator.simulate.workload import plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 11
CUSTOMERS = 24
DURATION_S = 50


def personas_by_profile(seed: int, customers: int, rounds: int = 8) -> dict[str, str]:
    """Profile id (customer id, or `anon:<id>` before login) → persona, for every round the demo may play."""
    personas: dict[str, str] = {}
    for round_no in range(rounds):
        for message in plan(seed, customers, journey_scale=DEMO_JOURNEY_SCALE, round_no=round_no):
            event = message.event
            if event.get("customer_id"):
                personas[event["customer_id"]] = message.persona
            if event.get("anonymous_id"):
                personas[f"anon:{event['anonymous_id']}"] = message.persona
    return personas


def _processes_using(port: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(port in part for part in process.info["cmdline"] or ()):
            found.append(process)
    return found


def test_demo_prints_every_flagship_action_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "demo",
            "--duration",
            str(DURATION_S),
            "--json",
            "--seed",
            str(SEED),
            "--customers",
            str(CUSTOMERS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=DURATION_S + 90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    err = stderr.decode()
    assert process.returncode == 0, err[-3000:]

    actions = [orjson.loads(line) for line in stdout.splitlines() if line.strip()]
    types = Counter(action["type"] for action in actions)
    assert types["email.send"] >= 1 and types["push.send"] >= 1 and types["chat.handoff"] >= 1, (types, err)

    personas = personas_by_profile(SEED, CUSTOMERS)
    for action in actions:
        persona = personas.get(action["customer_id"])
        assert persona is not None, f"action for a customer the simulator never played: {action}"
        if action["status"] == "held_out":
            # the holdout draw comes before consent (SPEC §3), so an opted-out abandoner may be held out
            assert action["rule_id"] == "abandoned-cart" and persona.endswith("abandoner"), action
            continue
        assert action["rule_id"] in EXPECTED_RULES[persona], (
            persona,
            action["rule_id"],
            action["customer_id"],
        )
    buyers = {profile for profile, persona in personas.items() if persona == "buyer"}
    assert not [a for a in actions if a["customer_id"] in buyers], "a shopper who checked out got an action"

    broker = re.search(r"embedded Kafka at (127\.0\.0\.1:\d+)", err)
    redis = re.search(r"Redis at redis://(127\.0\.0\.1:\d+)", err)
    web = re.search(r"dashboard: http://127\.0\.0\.1:(\d+)", err)
    assert broker and redis and web, err
    for needle in (broker.group(1), redis.group(1), web.group(1)):  # broker, Redis, the worker's --web-port
        assert not _processes_using(needle), f"left behind: a process started with {needle}"
