"""Reading touchpoints from JSON-lines files: the input of `journey replay` and `journey publish`.

A bad line is not fatal: it is reported with its line number and the rest of the file goes on,
as a worker would dead-letter it and go on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from schemas import InvalidEvent, Touchpoint, parse_touchpoint


def numbered_lines(source: Path | str) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers; `-` reads standard input."""
    stream: TextIO = sys.stdin if str(source) == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line.rstrip("\n")
    finally:
        if stream is not sys.stdin:
            stream.close()


def read_events(source: Path | str, errors: TextIO = sys.stderr) -> Iterator[Touchpoint]:
    """Valid events in file order; each invalid line is reported as `file:line: reason`."""
    for number, line in numbered_lines(source):
        try:
            yield parse_touchpoint(line.encode())
        except InvalidEvent as exc:
            print(f"{source}:{number}: skipped: {exc}", file=errors)
