"""Load errors of rule files, and where in the file each one points.

Marketing teams fix rule files from the error list alone, so every error carries the file, a
1-based line and column, and a message; the whole list is reported at once so that one run of
`journey rules validate` shows everything that is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleError:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleLoadError(Exception):
    """A rule set was refused; `errors` lists every problem found, in file and position order."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors: tuple[RuleError, ...] = tuple(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


_ESCAPE_LENGTHS = {"x": 4, "u": 6, "U": 10}


def position_in_scalar(
    lines: Sequence[str], line: int, column: int, style: str | None, value: str, offset: int
) -> tuple[int, int]:
    """Map an offset in a scalar's decoded text to its 0-based (line, column) in the file.

    Expression errors come with an offset into the string the YAML parser produced, while the
    author sees the raw text: quotes, escapes, `''` and folded line breaks shift the two apart.
    `line`/`column` is where the scalar's node starts (its opening quote, or the `|`/`>`
    indicator of a block scalar). Exact for single-line plain and quoted scalars and for literal
    block scalars; a good approximation for folded ones.
    """
    indent = 0
    if style in ("|", ">"):
        line += 1
        while line < len(lines) and not lines[line].strip():
            line += 1
        if line >= len(lines):
            return line - 1, column
        indent = len(lines[line]) - len(lines[line].lstrip(" "))
        column = indent
    elif style in ('"', "'"):
        column += 1
    block = style in ("|", ">")
    consumed = 0
    limit = min(offset, len(value))
    while consumed < limit and line < len(lines):
        text = lines[line]
        raw = text[column] if column < len(text) else "\n"
        if raw == "\n":
            line += 1
            if line >= len(lines):
                break
            following = lines[line]
            column = (
                min(indent, len(following)) if block else len(following) - len(following.lstrip(" \t"))
            )
            if value[consumed] in " \n":
                consumed += 1
            continue
        if style == '"' and raw == "\\":
            escape = text[column + 1] if column + 1 < len(text) else "\n"
            if escape == "\n":
                line += 1
                following = lines[line] if line < len(lines) else ""
                column = len(following) - len(following.lstrip(" \t"))
                continue
            column += _ESCAPE_LENGTHS.get(escape, 2)
        elif style == "'" and raw == "'" and text[column + 1 : column + 2] == "'":
            column += 2
        else:
            column += 1
        consumed += 1
    return line, column
