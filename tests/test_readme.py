"""The README's sections on using a cell and on training run as they stand: each section's Python
examples are run in order in one namespace, from a folder where `specs/` is the catalog, and
every line `print(...)  # <text>` must print exactly <text>."""

from __future__ import annotations

import contextlib
import io
import os
import re

from conftest import ROOT

import pytest

# (where a section starts, where it ends, how many examples it has)
SECTIONS = [("## Using a cell", "### Stacks of single cells", 4), ("## Training and comparing cells", "### Comparing cells", 1)]


def examples(start: str, end: str) -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index(start):text.index(end)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.mark.parametrize("start,end,count", SECTIONS)
def test_the_examples_run_and_print_what_they_say(tmp_path, monkeypatch, start, end, count):
    blocks = examples(start, end)
    assert len(blocks) == count, "the section lost its examples"
    os.symlink(os.path.join(ROOT, "specs"), tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            # the README's own code, never spec text
            exec(compile(block, f"README example {i + 1}", "exec"), namespace)
        expected = [m.group(1).strip() for m in re.finditer(r"^\s*print\(.*\)\s*# (.*)$", block, re.M)]
        printed = out.getvalue().strip().splitlines()
        assert printed == expected, f"example {i + 1}"
