"""Spec text is parsed, never executed: no module of cellspec calls eval, exec, sympify or
parse_expr, and a spec that tries to run code only gets an error."""

import ast
import os

import pytest

from cellspec.build import compile_spec
from cellspec.errors import SpecError

from conftest import ROOT
from modules import import_built

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
    assert imports == ["from cellspec import runtime", "from cellspec.blas import dot, matmul, step_operand", "from cellspec.fastmath import tanh", "from cellspec.owned import meet", "from cellspec.sums import column_sums", "import math", "import numba as nb", "import numpy as np"]
    assert "os.system('touch /tmp/cellspec_pwned')" in ast.get_docstring(tree)


# A spec with every field that can reach the generated module; each FIELD is replaced by a
# double-quoted YAML string (JSON's escapes are YAML's), so a payload arrives byte for byte.
EVERY_FIELD = """\
name: NAME
summary: SUMMARY
cite: CITE
dims: [DIM]
constraints: [CONSTRAINT]
inputs: {INPUT: input}
state: {h: hidden}
step: STEP
constants:
  period: {shape: [hidden], value: CONSTANT}
params:
  W: {shape: [hidden, input], init: INIT}
  U: {shape: [hidden, hidden], mask: MASK}
  b: [hidden]
equations:
  h_run: tanh(W @ x + U @ h + b)
  h_new: EQUATION
update: {h: h_new}
output: h_new
"""
FIELDS = {
    "NAME": "cell", "SUMMARY": "a cell", "CITE": "nobody", "DIM": "modules", "CONSTRAINT": "input == hidden",
    "INPUT": "x", "STEP": "t", "CONSTANT": "2**(i*modules // hidden)", "INIT": "uniform(0.1)",
    "MASK": "j*modules // hidden >= i*modules // hidden", "EQUATION": "where(t % period == 0, h_run, h)",
}
MARKER = "/tmp/cellspec_pwned"
PAYLOADS = [
    f'"""\nimport os; os.system("touch {MARKER}")\n"""',
    f"'''\nimport os; os.system('touch {MARKER}')\n'''",
    f'\\"""; __import__("os").system("touch {MARKER}"); """',
    f"x\rimport os; os.system('touch {MARKER}')\r",
    f"x\u2028import os\u2029os.system('touch {MARKER}')",
    "x\x0c\nimport os\n",
    "{{ 7*7 }}{% import 'os' as os %}{# #}",
    f"__import__('os').system('touch {MARKER}')",
    f"x) + __import__('os').system('touch {MARKER}'",
    "x\\\\\\",
    "\\N{LATIN SMALL LETTER A}\\x41\\u0041",
]


def _every_field_spec(field: str, payload: str) -> str:
    import json

    text = EVERY_FIELD
    for key, value in FIELDS.items():
        text = text.replace(key, json.dumps(payload if key == field else value))
    return text


def _module_outline(source: str):
    tree = ast.parse(source)
    top = [(type(n).__name__, getattr(n, "name", None)) for n in tree.body[1:]]
    imports = sorted(ast.unparse(n) for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)))
    cell = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    members = [(type(n).__name__, n.name if isinstance(n, ast.FunctionDef) else n.targets[0].id) for n in cell.body]
    return top, imports, members


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_payloads_through_every_field(tmp_path, field):
    """Through every field that reaches the generated file, each payload either gets a located
    SpecError or builds a module of exactly the expected outline (the same top-level names,
    imports and Cell members as the harmless spec), and importing that module runs nothing."""
    base = tmp_path / "base.yaml"
    base.write_text(_every_field_spec(field, FIELDS[field]))
    expected = _module_outline(compile_spec(str(base)).source)
    outcomes = {"built": 0, "refused": 0}
    for k, payload in enumerate(PAYLOADS):
        path = tmp_path / f"p{k}.yaml"
        path.write_text(_every_field_spec(field, payload), encoding="utf-8")
        try:
            built = compile_spec(str(path))
        except SpecError as e:
            assert e.where.path == str(path) and e.where.line >= 1, str(e)
            outcomes["refused"] += 1
            continue
        outcomes["built"] += 1
        assert _module_outline(built.source) == expected, payload
        # imported only once its outline is known: not build_module, which imports at once
        module = import_built(tmp_path / f"module{k}", built)
        assert module.Cell.NAME == built.cell.name
        assert not os.path.exists(MARKER)
    # free text travels as text; every other field is refused for each payload
    if field in ("SUMMARY", "CITE"):
        assert outcomes == {"built": len(PAYLOADS), "refused": 0}
    else:
        assert outcomes == {"built": 0, "refused": len(PAYLOADS)}


@pytest.mark.parametrize(
    "old, new",
    [
        ("import math\n", "import math\nimport os\n"),
        ("import math\n", "import math\nfrom os import system\n"),
        ("import math\n", "import math\nX = 1\n"),
        ("import math\n", "import math\nprint('hi')\n"),
        ("class Cell(runtime.CellBase):", "class Other:\n    pass\n\n\nclass Cell(runtime.CellBase):"),
        ("class Cell(runtime.CellBase):", "class Cell(runtime.CellBase, dict):"),
        ("    NAME = 'rnn'", "    NAME = __import__('os').name"),
        ("    NAME = 'rnn'", "    NAME = 'rnn'\n    EXTRA = 1"),
        ("    def _forward(self", "    def _forward2(self"),
        ("def _loop_forward(", "def helper(\n"),
        ("range(", "eval('range')("),
        ("np.empty(", "np.__dict__['empty']("),
        ("np.empty(", "(lambda *a, **k: np.empty(*a, **k))("),
        ("runtime.CellBase):\n", "runtime.CellBase):\n    import os\n"),
    ],
)
def test_the_module_gate_refuses_any_other_shape(old, new):
    from cellspec.codegen.cpu.verify import GeneratedCodeError, verify_module

    with open(os.path.join(ROOT, "generated", "rnn.py")) as f:
        source = f.read()
    verify_module(source, "rnn")
    assert old in source
    with pytest.raises(GeneratedCodeError, match="internal error: the module emitted for 'rnn'"):
        verify_module(source.replace(old, new, 1), "rnn")
