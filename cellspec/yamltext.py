"""The YAML layer of a spec: its bytes composed into nodes (never constructed into Python
objects, so no tag can run code and YAML 1.1's implicit typing never touches a value), every
anchor refused where it is written, and scalars read as `Text` that knows the source position of
each of its characters, escapes and folding included."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from .errors import Location, SpecError


@dataclass(frozen=True)
class Text:
    """A scalar from the spec and where it starts. `start` locates its first character; `spots`,
    when the scalar could be lined up with its source, holds the (line, col) of each of its
    non-blank characters, so positions inside multi-line or folded values map back exactly."""

    value: str
    where: Location
    start: Location
    spots: tuple[tuple[int, int], ...] | None = None
    plain: bool = False  # written without quotes, so YAML 1.1 tools would type it

    def at(self, index: int) -> Location:
        """The location of character `index` (0-based) of the value."""
        if self.spots is None:
            line = self.value.count("\n", 0, index)
            col = index - (self.value.rfind("\n", 0, index) + 1)
            return self.start.shifted(line, col + 1)
        k = sum(1 for ch in self.value[:index] if not ch.isspace())
        line, col = self.spots[min(k, len(self.spots) - 1)] if self.spots else (self.start.line, self.start.col)
        return Location(self.start.path, line, col)



# Plain scalars that YAML 1.1 (PyYAML's resolver) reads as booleans or null.
_YAML11_BOOL = re.compile(r"(yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)\Z")
_YAML11_NULL = re.compile(r"(null|Null|NULL)\Z")


def refuse_yaml11(text: Text, what: str) -> None:
    """A name written without quotes that YAML 1.1 tools read as a boolean or null (`off`, `yes`,
    `null`) is refused, so that the spec means the same to every YAML tool."""
    name = text.value
    if text.plain and (_YAML11_BOOL.match(name) or _YAML11_NULL.match(name)):
        kind = "a boolean" if _YAML11_BOOL.match(name) else "null"
        raise SpecError(f"{what} {name!r} is read as {kind} by YAML 1.1 tools such as PyYAML: quote it, '{name}', to use it as a name", text.start)


# the characters at which PyYAML counts a new line ("\r\n" counts once)
_BREAKS = "\r\n\x85\u2028\u2029"


def _loc(path: str, mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing every anchor where it is written. The nodes it builds do
    not record their anchors (an alias shows only as a node met twice, an anchor alone not at
    all), so anchors are refused here, from the events; an alias comes after its anchor, so no
    alias gets this far."""

    def __init__(self, text: str, path: str):
        super().__init__(text)
        self.path = path

    def compose_node(self, parent, index):
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent) and event.anchor is not None:
            raise SpecError("YAML anchors and aliases are not allowed in a spec", _loc(self.path, event.start_mark))
        return super().compose_node(parent, index)


def _compose(text: str, path: str):
    """The root node of the one document in text (what yaml.compose does, with `_Loader`)."""
    loader = _Loader(text, path)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class Reader:
    def __init__(self, path: str):
        self.path = path

    def where(self, node) -> Location:
        return _loc(self.path, node.start_mark)

    def visit(self, node):
        if node.tag.startswith("!") or (
            node.tag.startswith("tag:yaml.org,2002:")
            and node.tag.rsplit(":", 1)[1] not in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
        ):
            raise SpecError(f"YAML tag {node.tag!r} is not allowed in a spec", self.where(node))

    def mapping(self, node, what: str) -> list[tuple[Text, object]]:
        self.visit(node)
        if not isinstance(node, yaml.MappingNode):
            raise SpecError(f"{what} must be a mapping", self.where(node))
        items, seen = [], {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, f"a key of {what}")
            if key.value in seen:
                raise SpecError(
                    f"duplicate key {key.value!r} in {what} (first written at line {seen[key.value].line})",
                    key.where,
                )
            seen[key.value] = key.where
            items.append((key, value_node))
        return items

    def sequence(self, node, what: str) -> list:
        self.visit(node)
        if not isinstance(node, yaml.SequenceNode):
            raise SpecError(f"{what} must be a list", self.where(node))
        return list(node.value)

    def scalar(self, node, what: str) -> Text:
        self.visit(node)
        if not isinstance(node, yaml.ScalarNode):
            raise SpecError(f"{what} must be a single value, not a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}", self.where(node))
        where = self.where(node)
        start = where
        if node.style in ("'", '"'):
            start = Location(where.path, where.line, where.col + 1)
        spots = _spots(node)
        if spots:
            start = Location(where.path, *spots[0])
        return Text(node.value, where, start, spots, plain=node.style is None)


def _spots(node) -> tuple[tuple[int, int], ...] | None:
    """Line up a scalar's non-blank characters with the source text that wrote them: each at its
    (line, col), a character written by an escape sequence (`\\"`, `\\n`, `\\xNN`, `\\uNNNN`, ... in
    double quotes) at its backslash, a quote written `''` (in single quotes) at the first of the
    two. Line folding and escaped line breaks write only blanks, which no spot records. Returns None
    when the characters do not line up (a tag before the value), and callers fall back to offsets
    from the start."""
    start, end = node.start_mark, node.end_mark
    buffer = getattr(start, "buffer", None)
    if buffer is None or start.pointer is None:
        return None
    style, pos, stop = node.style, start.pointer, end.pointer
    line, col = start.line + 1, start.column + 1
    if style in ("|", ">"):
        # the block header (`|`, `>-`, ...) ends its line and is not part of the value
        while pos < stop and buffer[pos] not in _BREAKS:
            pos += 1
    elif style in ("'", '"'):
        if buffer[pos] != style:
            return None
        pos, col, stop = pos + 1, col + 1, stop - 1
    # the character that starts an escape: a backslash in double quotes, `''` in single quotes
    special = "\\" if style == '"' else "'" if style == "'" else None
    escapes, codes = yaml.scanner.Scanner.ESCAPE_REPLACEMENTS, yaml.scanner.Scanner.ESCAPE_CODES
    spots, chars = [], []
    while True:
        at = buffer.find(special, pos, stop) if special else -1
        # up to the next escape, the source writes itself (a value may be a megabyte long: this
        # loop is the one that runs over it)
        for p in range(pos, stop if at < 0 else at):
            ch = buffer[p]
            if ch in _BREAKS:
                # PyYAML's line breaks: \r\n (counted at its \n), \r, \n, NEL, LS, PS
                if ch != "\r" or buffer[p + 1] != "\n":
                    line, col = line + 1, 1
                continue
            if not ch.isspace():
                spots.append((line, col))
                chars.append(ch)
            col += 1
        if at < 0:
            break
        escaped = buffer[at + 1]
        if style == "'":
            ch, width = "'", 2  # `''` writes one quote
        elif escaped in _BREAKS:
            # an escaped line break writes nothing; the next run counts the break
            pos = at + 1
            continue
        elif escaped in codes:
            width = 2 + codes[escaped]
            ch = chr(int(buffer[at + 2 : at + width], 16))
        elif escaped in escapes:
            ch, width = escapes[escaped], 2
        else:  # PyYAML refused the scalar already
            return None
        if not ch.isspace():
            spots.append((line, col))
            chars.append(ch)
        pos, col = at + width, col + width
    if chars != [ch for ch in node.value if not ch.isspace()]:
        return None
    return tuple(spots)


def compose(path: str, source: bytes):
    """The root node of the spec's one YAML document (None for an empty one), or a located
    SpecError for bytes that are not UTF-8 or not YAML."""
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as e:
        before = source[: e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise SpecError("spec is not valid UTF-8", Location(path, line, col)) from None
    try:
        root = _compose(text, path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        message = e.problem or e.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {message}", _loc(path, mark) if mark else Location(path, 1, 1)) from None
    except (yaml.YAMLError, RecursionError):
        raise SpecError("invalid YAML", Location(path, 1, 1)) from None
    return root
