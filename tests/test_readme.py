"""The README's section on using a cell runs as it stands: each of its Python examples is run in
order in one namespace, from a folder where `specs/` is the catalog, and every line
`print(...)  # <text>` must print exactly <text>."""

from __future__ import annotations

import contextlib
import io
import os
import re

from conftest import ROOT

SECTION = ("## Using a cell", "### Stacks of single cells")


def examples() -> list[str]:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text[text.index(SECTION[0]):text.index(SECTION[1])]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_examples_run_and_print_what_they_say(tmp_path, monkeypatch):
    blocks = examples()
    assert len(blocks) == 4, "the section lost its examples"
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
