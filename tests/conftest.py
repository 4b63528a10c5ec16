"""Shared fixtures: one embedded Kafka + Redis per test session, isolated names, and child processes
that are always killed (whole process group) at teardown, whether the test passed, failed or hung.

Tests are hermetic: JOURNEY_* variables of the developer's shell are removed before any test runs, so
a leftover JOURNEY_KAFKA_BOOTSTRAP never points the suite at a real cluster.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.embedded import EmbeddedStack, ManagedProcess
from orchestrator.embedded import free_port as _free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
JOURNEY_BIN = Path(sys.executable).with_name("journey")


def pytest_configure(config: pytest.Config) -> None:
    for name in [name for name in os.environ if name.startswith("JOURNEY_")]:
        del os.environ[name]


@pytest.fixture(scope="session")
def embedded_stack() -> Iterator[EmbeddedStack]:
    """Started on first use, stopped when the session ends (and by atexit/PDEATHSIG if it never does)."""
    stack = EmbeddedStack().start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_stack: EmbeddedStack) -> str:
    return embedded_stack.bootstrap


@pytest.fixture(scope="session")
def redis_url(embedded_stack: EmbeddedStack) -> str:
    return embedded_stack.url


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Call it for each port a test needs (Faust's web server, the dashboard, …): never hard-code 6066."""
    return _free_port


def new_topic_prefix() -> str:
    """A short prefix unique to one test, so tests sharing the session broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def unique_topic_prefix() -> str:
    return new_topic_prefix()


# Consumer groups join in about half the session timeout on the embedded broker, and a killed
# worker's partitions move after it: short sessions keep the suite fast.
TEST_SESSION_TIMEOUT_S = 3.0


def screenshot_path(name: str) -> Path:
    """Where a browser test saves its screenshot: the README's images with JOURNEY_UPDATE_SCREENSHOTS=1,
    else the ignored tests/artifacts/ (a test run must not rewrite tracked files)."""
    root = Path(__file__).resolve().parent.parent
    folder = (
        root / "docs/img" if os.environ.get("JOURNEY_UPDATE_SCREENSHOTS") == "1" else root / "tests/artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


# The product's shared worked example sits beside the checkout (`../shared/examples`), in CI as here.
SHARED_EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "examples"


def worker_settings(kafka_bootstrap: str, redis_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a worker on the session stack whose topics, app id (hence consumer groups) and data
    dir are its own; the web port is free. Keyword arguments override any field."""
    prefix = overrides.pop("prefix", None) or new_topic_prefix()
    fields: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "redis_url": redis_url,
        "app_id": f"journey-{prefix.rstrip('.')}",
        "touchpoints_prefix": f"{prefix}touchpoints.",
        "actions_prefix": f"{prefix}actions.",
        "dlq_topic": f"{prefix}touchpoints.dlq",
        "internal_prefix": f"{prefix}journey.",
        "data_dir": data_dir,
        "web_port": _free_port(),
        "kafka_session_timeout_s": TEST_SESSION_TIMEOUT_S,
        "kafka_single_record_batches": True,
    }
    return Settings(**{**fields, **overrides})


@pytest.fixture(scope="module")
def module_spawner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessSpawner]:
    """A spawner shared by one test module (e.g. for a worker every test of the module reuses)."""
    spawner = ProcessSpawner(tmp_path_factory.mktemp("logs"))
    try:
        yield spawner
    finally:
        spawner.stop_all()


@pytest.fixture
def isolated_settings(
    unique_topic_prefix: str, kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> Settings:
    """A test's own `worker_settings`; override fields with `isolated_settings.model_copy(update=...)`."""
    return worker_settings(kafka_bootstrap, redis_url, tmp_path / "data", prefix=unique_topic_prefix)


def settings_env(settings: Settings) -> dict[str, str]:
    """The JOURNEY_* environment that makes a child process (e.g. `journey worker`) see these settings."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"JOURNEY_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


class ProcessSpawner:
    """Starts children in their own process group, logging to files under the test's tmp_path."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        """`env` is added to a copy of os.environ; the output of the child is in `process.log_path`."""
        label = name or Path(argv[0]).name
        log_path = self.log_dir / f"{len(self.processes)}-{label}.log"
        process = ManagedProcess(
            label, argv, env={**os.environ, **(env or {})}, cwd=cwd or REPO_ROOT, log_path=log_path
        )
        self.processes.append(process)
        return process

    def journey(
        self,
        *args: str,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> ManagedProcess:
        """Runs the `journey` CLI of this virtualenv, configured by `settings` through JOURNEY_* variables."""
        child_env = {**(settings_env(settings) if settings else {}), **(env or {})}
        return self([str(JOURNEY_BIN), *args], env=child_env, name=name or f"journey-{args[0]}")

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(grace_s=5.0)
            # Shown by pytest only when the test failed: what the child said before it was stopped.
            print(f"--- {process.name} (pid {process.pid}, exit {process.popen.returncode}) ---")
            print(process.tail())


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[ProcessSpawner]:
    """`spawn([...])` or `spawn.journey("worker", settings=...)`; every group is killed at teardown."""
    spawner = ProcessSpawner(tmp_path / "logs")
    spawner.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield spawner
    finally:
        spawner.stop_all()
