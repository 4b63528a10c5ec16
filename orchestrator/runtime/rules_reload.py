"""The live rule set: loaded at start, hot-reloaded when its files change, refused when broken.

Polling file fingerprints (path, mtime, size) once a second is deliberately simple: it sees
atomic renames, editors' save-as-temp dances and ConfigMap symlink swaps alike, and costs
nothing for a handful of YAML files. A broken new version is logged with every error and the
running engine stays; the last result is kept for metrics and the dashboard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.engine import Engine
from orchestrator.logging import get_logger
from orchestrator.rules.errors import RuleLoadError
from orchestrator.rules.loader import load_rules

log = get_logger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    at: float
    ok: bool
    version: str
    errors: tuple[str, ...] = ()


def fingerprint(path: Path) -> Fingerprint:
    files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    prints: list[tuple[str, int, int]] = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        prints.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(prints)


@dataclass
class LiveRules:
    """Holds the current Engine; agents read `engine` per batch so a swap applies to the next one."""

    path: Path
    engine: Engine
    last: ReloadResult
    on_change: list[Callable[[ReloadResult], None]] = field(default_factory=list)
    _fingerprint: Fingerprint = ()

    @classmethod
    def load(cls, path: Path) -> LiveRules:
        """First load: a broken rule set at start is fatal (there is nothing to keep running)."""
        printed = fingerprint(path)
        rules = load_rules(path)
        result = ReloadResult(at=time.time(), ok=True, version=rules.version)
        log.info("rules_loaded", version=rules.version, rules=len(rules.rules), path=str(path))
        return cls(path=path, engine=Engine(rules), last=result, _fingerprint=printed)

    @property
    def version(self) -> str:
        return self.engine.rules.version

    def check(self) -> ReloadResult | None:
        """Reload if the files changed since the last attempt; None when nothing changed."""
        printed = fingerprint(self.path)
        if printed == self._fingerprint:
            return None
        self._fingerprint = printed
        try:
            rules = load_rules(self.path)
        except RuleLoadError as exc:
            errors = tuple(str(e) for e in exc.errors) or (str(exc),)
            result = ReloadResult(at=time.time(), ok=False, version=self.version, errors=errors)
            log.error("rules_reload_refused", kept_version=self.version, errors=list(errors))
        except OSError as exc:
            result = ReloadResult(at=time.time(), ok=False, version=self.version, errors=(str(exc),))
            log.error("rules_reload_refused", kept_version=self.version, errors=[str(exc)])
        else:
            if rules.version == self.version:
                return None
            previous = self.version
            self.engine = Engine(rules)
            result = ReloadResult(at=time.time(), ok=True, version=rules.version)
            log.info("rules_reloaded", version=rules.version, previous=previous, rules=len(rules.rules))
        self.last = result
        for callback in self.on_change:
            callback(result)
        return result

    async def watch(self, interval_s: float = 1.0) -> None:
        """Background task: poll for changes forever."""
        while True:
            await asyncio.sleep(interval_s)
            self.check()
