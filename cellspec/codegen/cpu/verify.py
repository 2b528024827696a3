"""The last gate before a module reaches disk: its shape, checked with `ast`.

Spec text reaches a generated module only as numbers, identifiers checked by `spec`, and strings
escaped by the template's filters. This check does not trust that chain: it parses the emitted
source and refuses anything but the module cellspec means to write (a docstring, a fixed set of
imports, the kernels, and one `Cell` class of literal tables and two methods), and any name that
could reach Python's machinery (dunders, eval, exec, open, ...). A failure here is a compiler bug,
never a spec error, so it raises `GeneratedCodeError`.
"""

from __future__ import annotations

import ast
import re

FIXED_IMPORTS = {"import math", "import numba as nb", "import numpy as np", "from cellspec import runtime", "from cellspec.blas import dot, matmul, step_operand", "from cellspec.owned import meet", "from cellspec.sums import column_sums"}
FASTMATH_IMPORT = re.compile(r"from cellspec\.fastmath import [a-z_]+(, [a-z_]+)*\Z")
KERNEL = re.compile(r"_(loop_forward|loop_infer|loop_infer_owned|loop_backward|loop_backward_dseq|pre_forward_\d+|pre_infer_\d+|pre_backward_\d+)\Z")
CELL_TABLES = (
    "NAME", "SPEC_SHA256", "DIMS", "INPUTS", "STATES", "OUTPUTS", "CONSTRAINTS", "CONSTANTS", "CONSTANT_VALUES", "PARAMS", "MASKS", "INITS",
    "TAPE", "TAPE_PARAMS", "TRANSCENDENTALS", "PACKED_INPUTS", "PACKED_DY", "TORCH", "OWNED",
)
CELL_METHODS = ("_forward", "_backward")
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "input", "breakpoint", "globals", "locals", "vars", "getattr", "setattr",
    "delattr", "__import__", "importlib", "os", "sys", "subprocess", "builtins",
})


class GeneratedCodeError(Exception):
    """The emitted module is not of the expected shape: a bug in cellspec."""


def verify_module(source: str, name: str) -> ast.Module:
    def fail(why: str, node: ast.AST | None = None):
        line = f" (line {node.lineno})" if node is not None and hasattr(node, "lineno") else ""
        raise GeneratedCodeError(f"internal error: the module emitted for {name!r} {why}{line}; please report this with its spec")

    try:
        tree = ast.parse(source)
        compile(tree, f"<{name}>", "exec", dont_inherit=True)
    except SyntaxError as e:
        fail(f"is not valid Python: {e.msg}")
    body = tree.body
    if not body or not (isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
        fail("does not start with its docstring")
    classes = 0
    for node in body[1:]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            text = ast.unparse(node)
            if text not in FIXED_IMPORTS and not FASTMATH_IMPORT.match(text):
                fail(f"imports something unexpected: {text!r}", node)
        elif isinstance(node, ast.FunctionDef) and KERNEL.match(node.name):
            pass
        elif isinstance(node, ast.ClassDef) and node.name == "Cell" and classes == 0:
            classes += 1
            if [ast.unparse(b) for b in node.bases] != ["runtime.CellBase"] or node.keywords or node.decorator_list:
                fail("has a Cell class that does not derive from runtime.CellBase alone", node)
            _check_cell_body(node, fail)
        else:
            fail(f"has an unexpected top-level {type(node).__name__}", node)
    if classes != 1:
        fail("has no Cell class")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in body:
            fail("imports inside a function or class", node)
        if isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id.startswith("__")):
            fail(f"uses the name {node.id!r}", node)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            fail(f"reaches the attribute {node.attr!r}", node)
        if isinstance(node, (ast.Global, ast.Nonlocal, ast.Lambda, ast.ClassDef)) and not (isinstance(node, ast.ClassDef) and node in body):
            fail(f"has an unexpected {type(node).__name__}", node)
    return tree


def _check_cell_body(cls: ast.ClassDef, fail) -> None:
    tables, methods = [], []
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                fail(f"sets Cell.{node.targets[0].id} to something other than a literal", node)
            tables.append(node.targets[0].id)
        elif isinstance(node, ast.FunctionDef) and not node.decorator_list:
            methods.append(node.name)
        else:
            fail(f"has an unexpected {type(node).__name__} in its Cell class", node)
    if tuple(tables) != CELL_TABLES or tuple(methods) != CELL_METHODS:
        fail(f"has a Cell class of tables {tables} and methods {methods}", cls)
