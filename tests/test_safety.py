"""Spec text is parsed, never executed: no module of cellspec calls eval, exec, sympify or
parse_expr, and a spec that tries to run code only gets an error."""

import ast
import os

import pytest

from cellspec.build import compile_spec
from cellspec.errors import SpecError

from conftest import ROOT

FORBIDDEN = {"eval", "exec", "sympify", "parse_expr", "__import__"}


def test_no_module_calls_eval_exec_or_sympify():
    package = os.path.join(ROOT, "cellspec")
    found = []
    for folder, _, files in os.walk(package):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            with open(path) as src:
                tree = ast.parse(src.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    fn = node.func
                    name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
                    if name in FORBIDDEN:
                        found.append(f"{os.path.relpath(path, ROOT)}:{node.lineno} calls {name}")
    assert found == []


@pytest.mark.parametrize(
    "equation",
    [
        "__import__('os').system('touch /tmp/cellspec_pwned')",
        "x.__class__.__bases__[0].__subclasses__()",
        "(lambda: 1)()",
        "[c for c in ()]",
        "open('/etc/passwd')",
        "eval('1')",
    ],
)
def test_hostile_equations_only_get_an_error(tmp_path, equation):
    path = tmp_path / "hostile.yaml"
    with open(os.path.join(ROOT, "specs", "rnn.yaml")) as f:
        path.write_text(f.read().replace("tanh(W @ x + U @ h + b)", f'"{equation} + tanh(W @ x + U @ h + b)"'))
    with pytest.raises(SpecError):
        compile_spec(str(path))
    assert not os.path.exists("/tmp/cellspec_pwned")


def test_text_fields_cannot_break_out_of_the_generated_module(tmp_path):
    path = tmp_path / "quotes.yaml"
    with open(os.path.join(ROOT, "specs", "rnn.yaml")) as f:
        text = f.read()
    payload = '\\"\\"\\"\\nimport os\\nos.system(\'touch /tmp/cellspec_pwned\')\\n\\"\\"\\"'
    path.write_text(text.replace("summary: Elman RNN with tanh, in the layout of PyTorch's nn.RNN", f'summary: "{payload}"'))
    source = compile_spec(str(path)).source
    tree = ast.parse(source)
    # the module is its docstring, imports, kernels and the Cell class: nothing else at top level
    kinds = {type(node).__name__ for node in tree.body[1:]}
    assert kinds <= {"Import", "ImportFrom", "FunctionDef", "ClassDef"}
    imports = sorted(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    assert imports == ["from cellspec import runtime", "from cellspec.blas import matmul", "from cellspec.fastmath import tanh", "import math", "import numba as nb", "import numpy as np"]
    assert "os.system('touch /tmp/cellspec_pwned')" in ast.get_docstring(tree)
