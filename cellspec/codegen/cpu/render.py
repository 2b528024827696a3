"""Lay out a generated module: the Jinja2 template (structure only) and its filters, which make
any spec text safe inside the module's docstring."""

from __future__ import annotations

import os

import jinja2

def spec_display_path(path: str) -> str:
    """The spec's path as the header shows it: `specs/<file>` for catalog specs, never a path of
    the machine that built it, so builds anywhere give the same bytes."""
    parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
    base = os.path.basename(path)
    return f"{parent}/{base}" if parent == "specs" else base


def docstring_escape(text: str) -> str:
    """Make text safe inside a triple-quoted docstring: nothing in it can end the string or
    start an escape, and control characters are spelled out."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out).replace('"""', '\\"\\"\\"')


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)
_ENV.filters["doc"] = docstring_escape
_ENV.filters["py"] = repr
_ENV.filters["body"] = lambda text, n: "\n".join(("    " * n + ln) if ln else "" for ln in text.rstrip("\n").split("\n"))


def render(context: dict) -> str:
    return _ENV.get_template("cell.py.j2").render(**context)
