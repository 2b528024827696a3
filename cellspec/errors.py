"""The one way errors reach users: a SpecError names the file, line and column of the bad text."""

from __future__ import annotations


class Location:
    """A position in a spec file, 1-based line and column, as editors and compilers print them."""

    __slots__ = ("path", "line", "col")

    def __init__(self, path: str, line: int, col: int):
        self.path = path
        self.line = line
        self.col = col

    def shifted(self, line_offset: int, col: int) -> "Location":
        """The location of a character inside a value that starts at this location.

        `line_offset` counts lines from this location's line; `col` is 1-based within that line
        and is relative to this location only on the first line (where the value starts)."""
        if line_offset == 0:
            return Location(self.path, self.line, self.col + col - 1)
        return Location(self.path, self.line + line_offset, col)

    def __repr__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class SpecError(Exception):
    """A mistake in a spec, reported as `path:line:col: error: message`."""

    def __init__(self, message: str, where: Location | None = None):
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        if self.where is None:
            return f"error: {self.message}"
        return f"{self.where!r}: error: {self.message}"


class UnknownName(SpecError):
    """A name that is nothing the spec declared (yet): `name` says which, so that a caller that
    knows more (an equation defined later) can say more."""

    def __init__(self, name: str, where: Location | None = None):
        super().__init__(f"unknown name {name!r}", where)
        self.name = name
