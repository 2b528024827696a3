"""Every error the spec reader (cellspec.spec) and the IR builder (cellspec.ir) can raise, through
the whole pipeline: a bad spec is written to a file, `compile_spec` refuses it, and the error reads
`path:line:col: error: message` with the location on the offending text.

Each bad spec is a small edit of BASE, a copy of specs/rnn.yaml, so its lines are known:

     1 name: rnn
     2 summary: ...
     3 cite: ...
     4 inputs: {x: input}
     5 state: {h: hidden}
     6 params:
     7   W: [hidden, input]
     8   U: [hidden, hidden]
     9   # comment
    10   b: [hidden]
    11 equations:
    12   h_new: tanh(W @ x + U @ h + b)
    13 update: {h: h_new}
    14 output: h_new
"""

import pytest

from cellspec.build import compile_spec
from cellspec.errors import SpecError
from cellspec.spec import MAX_SPEC_BYTES, TOP_LEVEL_KEYS

BASE = """\
name: rnn
summary: Elman RNN with tanh, in the layout of PyTorch's nn.RNN
cite: Elman 1990, "Finding structure in time", Cognitive Science 14(2)
inputs: {x: input}
state: {h: hidden}
params:
  W: [hidden, input]
  U: [hidden, hidden]
  # nn.RNN has two biases, b_ih and b_hh; they only ever appear summed, so one is enough
  b: [hidden]
equations:
  h_new: tanh(W @ x + U @ h + b)
update: {h: h_new}
output: h_new
"""

EQ = "  h_new: tanh(W @ x + U @ h + b)"
SECTIONS = ", ".join(TOP_LEVEL_KEYS)
INITS = "zeros, ones, constant, uniform, normal, orthogonal"
RESERVED = "is reserved: it is a Python name or one the generated code uses"
NON_ASCII = "names are ASCII identifiers"


def edit(*pairs, base=BASE):
    """BASE with each (old, new) replaced; each `old` must occur exactly once."""
    text = base
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def compile_error(tmp_path, text, name="cell.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(SpecError) as info:
        compile_spec(str(path))
    return str(path), info.value


def test_base_spec_compiles(tmp_path):
    path = tmp_path / "cell.yaml"
    path.write_text(BASE)
    built = compile_spec(str(path))
    assert built.cell.name == "rnn"
    assert set(built.cell.updates) == {"h"}


def test_base_is_specs_rnn():
    import pathlib

    rnn = pathlib.Path(__file__).resolve().parent.parent / "specs" / "rnn.yaml"
    if rnn.exists():
        assert rnn.read_text() == BASE


CASES = [
    # --- YAML ------------------------------------------------------------------------------
    ("yaml-unclosed-flow", edit(("inputs: {x: input}", "inputs: {x: input")),
     "5:6: error: invalid YAML: expected ',' or '}', but got ':'"),
    ("yaml-unclosed-list", edit(("  U: [hidden, hidden]", "  U: [hidden, hidden")),
     "10:3: error: invalid YAML: expected ',' or ']', but got '?'"),
    ("yaml-bad-indent", edit(("  U: [hidden, hidden]", "   U: [hidden, hidden]")),
     "8:4: error: invalid YAML: expected <block end>, but found '<block mapping start>'"),
    ("yaml-tab", edit(("  U: [hidden, hidden]", "\tU: [hidden, hidden]")),
     "8:1: error: invalid YAML: found character '\\t' that cannot start any token"),
    ("duplicate-top-key", BASE + "name: rnn2\n",
     "15:1: error: duplicate key 'name' in the spec (first written at line 1)"),
    ("duplicate-param", edit(("  b: [hidden]", "  b: [hidden]\n  W: [hidden, input]")),
     "11:3: error: duplicate key 'W' in 'params' (first written at line 7)"),
    ("duplicate-flow-key", edit(("inputs: {x: input}", "inputs: {x: input, x: input}")),
     "4:20: error: duplicate key 'x' in 'inputs' (first written at line 4)"),
    ("duplicate-update", edit(("update: {h: h_new}", "update: {h: h_new, h: h_new}")),
     "13:20: error: duplicate key 'h' in 'update' (first written at line 13)"),
    ("alias-list", edit(("  U: [hidden, hidden]", "  U: &d [hidden, hidden]\n  V: *d")),
     "8:6: error: YAML anchors and aliases are not allowed in a spec"),
    ("alias-scalar", edit(("state: {h: hidden}", "state: {h: &d hidden}"), ("  b: [hidden]", "  b: [*d]")),
     "5:12: error: YAML anchors and aliases are not allowed in a spec"),
    ("alias-mapping", edit(("state: {h: hidden}", "state: &s {h: hidden}"), ("update: {h: h_new}", "update: *s")),
     "5:8: error: YAML anchors and aliases are not allowed in a spec"),
    ("tag-python", edit(("name: rnn", "name: !!python/name:os.system rnn")),
     "1:7: error: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed in a spec"),
    ("tag-local", edit(("name: rnn", "name: !foo rnn")),
     "1:7: error: YAML tag '!foo' is not allowed in a spec"),
    ("tag-binary", edit(("name: rnn", "name: !!binary cm5u")),
     "1:7: error: YAML tag 'tag:yaml.org,2002:binary' is not allowed in a spec"),
    ("tag-set", edit(("inputs: {x: input}", "inputs: !!set {x: input}")),
     "4:9: error: YAML tag 'tag:yaml.org,2002:set' is not allowed in a spec"),
    ("top-level-list", "- name: rnn\n- summary: s\n", "1:1: error: the spec must be a mapping"),
    ("top-level-scalar", "rnn\n", "1:1: error: the spec must be a mapping"),
    ("empty", "", "1:1: error: spec is empty"),
    ("comment-only", "# nothing here\n", "1:1: error: spec is empty"),
    # --- sections --------------------------------------------------------------------------
    ("missing-output", edit(("output: h_new\n", "")), "1:1: error: missing section 'output'"),
    ("missing-cite", edit(('cite: Elman 1990, "Finding structure in time", Cognitive Science 14(2)\n', "")),
     "1:1: error: missing section 'cite'"),
    ("unknown-section", BASE + "outputs: h_new\n", f"15:1: error: unknown section 'outputs'; a spec has {SECTIONS}"),
    ("unknown-section-early", edit(("inputs: {x: input}", "input: {x: input}")),
     f"4:1: error: unknown section 'input'; a spec has {SECTIONS}"),
    ("inputs-not-mapping", edit(("inputs: {x: input}", "inputs: [x]")), "4:9: error: 'inputs' must be a mapping"),
    ("update-not-mapping", edit(("update: {h: h_new}", "update: [h_new]")), "13:9: error: 'update' must be a mapping"),
    ("output-empty-list", edit(("output: h_new", "output: []")), "14:9: error: 'output' names no equation"),
    ("output-twice", edit(("output: h_new", "output: [h_new, h_new]")), "14:17: error: 'h_new' is already an output"),
    ("summary-mapping", edit(("summary: Elman RNN with tanh, in the layout of PyTorch's nn.RNN", "summary: {a: b}")),
     "2:10: error: 'summary' must be a single value, not a mapping"),
    ("no-inputs", edit(("inputs: {x: input}", "inputs: {}")), "4:9: error: a cell needs at least one input"),
    ("no-state", edit(("state: {h: hidden}", "state: {}")),
     "5:8: error: a cell needs at least one state: without one it is not recurrent"),
    ("no-equations", edit(("equations:\n" + EQ + "\n", "equations: {}\n")),
     "11:12: error: a cell needs at least one equation"),
    # --- names -----------------------------------------------------------------------------
    ("reserved-np", edit(("  b: [hidden]", "  np: [hidden]"), ("+ b)", "+ np)")), f"10:3: error: param 'np' {RESERVED}"),
    ("reserved-sum", edit(("  b: [hidden]", "  sum: [hidden]"), ("+ b)", "+ sum)")), f"10:3: error: param 'sum' {RESERVED}"),
    ("reserved-d_x", edit(("  b: [hidden]", "  d_x: [hidden]"), ("+ b)", "+ d_x)")),
     "10:3: error: param 'd_x' starts with 'd_', which the generated code keeps for gradients"),
    ("reserved-op", edit(("  b: [hidden]", "  sigmoid: [hidden]")), f"10:3: error: param 'sigmoid' {RESERVED}"),
    ("reserved-helper", edit(("  b: [hidden]", "  step: [hidden]")), f"10:3: error: param 'step' {RESERVED}"),
    ("reserved-where", edit(("  b: [hidden]", "  where: [hidden]")), f"10:3: error: param 'where' {RESERVED}"),
    ("reserved-self", edit(("  b: [hidden]", "  self: [hidden]")), f"10:3: error: param 'self' {RESERVED}"),
    ("reserved-Cell", edit(("  b: [hidden]", "  Cell: [hidden]")), f"10:3: error: param 'Cell' {RESERVED}"),
    ("reserved-input-builtin", edit(("inputs: {x: input}", "inputs: {input: input}")), f"4:10: error: input 'input' {RESERVED}"),
    ("reserved-state", edit(("state: {h: hidden}", "state: {math: hidden}")), f"5:9: error: state 'math' {RESERVED}"),
    ("reserved-equation-d_", edit((EQ, "  d_h: tanh(W @ x + U @ h + b)")),
     "12:3: error: equation 'd_h' starts with 'd_', which the generated code keeps for gradients"),
    ("keyword-param", edit(("  b: [hidden]", "  lambda: [hidden]")), f"10:3: error: param 'lambda' {RESERVED}"),
    ("keyword-equation", edit((EQ, "  if: tanh(W @ x + U @ h + b)")), f"12:3: error: equation 'if' {RESERVED}"),
    ("keyword-True", edit(("  b: [hidden]", "  True: [hidden]")), f"10:3: error: param 'True' {RESERVED}"),
    ("soft-keyword", edit(("  b: [hidden]", "  match: [hidden]")), f"10:3: error: param 'match' {RESERVED}"),
    ("cell-name-reserved", edit(("name: rnn", "name: list")), f"1:7: error: cell name 'list' {RESERVED}"),
    ("cell-name-quoted", edit(("name: rnn", "name: 'sum'")), f"1:8: error: cell name 'sum' {RESERVED}"),
    ("cell-name-d_", edit(("name: rnn", "name: d_rnn")),
     "1:7: error: cell name 'd_rnn' starts with 'd_', which the generated code keeps for gradients"),
    ("cell-name-digit", edit(("name: rnn", "name: 1rnn")),
     "1:7: error: cell name '1rnn' is not a valid name: use letters, digits and _, starting with a letter"),
    ("cell-name-underscore", edit(("name: rnn", "name: _rnn")),
     "1:7: error: cell name '_rnn' is not a valid name: use letters, digits and _, starting with a letter"),
    ("equation-name-compiler", edit((EQ, "  _p0: sigmoid(h)\n" + EQ)),
     "12:3: error: equation '_p0' is not a valid name: use letters, digits and _, starting with a letter"),
    ("input-name-int", edit(("inputs: {x: input}", "inputs: {1: input}")),
     "4:10: error: input '1' is not a valid name: use letters, digits and _, starting with a letter"),
    ("dim-not-a-name", edit(("inputs: {x: input}", "inputs: {x: 3}")),
     "4:13: error: dim '3' is not a valid name: use letters, digits and _, starting with a letter"),
    ("non-ascii-param", edit(("  b: [hidden]", "  b\u0445: [hidden]")),
     f"10:4: error: param 'b\u0445' has a non-ASCII character '\u0445'; {NON_ASCII}"),
    ("non-ascii-input-cyrillic", edit(("inputs: {x: input}", "inputs: {\u0445: input}")),
     f"4:10: error: input '\u0445' has a non-ASCII character '\u0445'; {NON_ASCII}"),
    ("non-ascii-input-fullwidth", edit(("inputs: {x: input}", "inputs: {\uff58: input}")),
     f"4:10: error: input '\uff58' has a non-ASCII character '\uff58'; {NON_ASCII}"),
    ("non-ascii-dim", edit(("inputs: {x: input}", "inputs: {x: \u0456nput}")),
     f"4:13: error: dim '\u0456nput' has a non-ASCII character '\u0456'; {NON_ASCII}"),
    ("non-ascii-cell-name", edit(("name: rnn", "name: rnn\u0445")),
     f"1:10: error: cell name 'rnn\u0445' has a non-ASCII character '\u0445'; {NON_ASCII}"),
    ("non-ascii-cell-name-quoted", edit(("name: rnn", 'name: "rnn\u0445"')),
     f"1:11: error: cell name 'rnn\u0445' has a non-ASCII character '\u0445'; {NON_ASCII}"),
    ("non-ascii-in-equation", edit((EQ, "  h_new: tanh(W @ \u0445 + U @ h + b)")),
     f"12:19: error: non-ASCII character '\u0445' in equation 'h_new'; {NON_ASCII}"),
    ("fullwidth-in-equation", edit((EQ, EQ + " + \uff42")),
     f"12:36: error: non-ASCII character '\uff42' in equation 'h_new'; {NON_ASCII}"),
    ("already-declared", edit(("  b: [hidden]", "  x: [hidden]")),
     "10:3: error: param 'x' is already declared as input at line 4"),
    ("already-declared-equation", edit((EQ, "  b: tanh(x)")),
     "12:3: error: equation 'b' is already declared as param at line 10"),
    ("state-is-input", edit(("state: {h: hidden}", "state: {h: hidden, x: hidden}")),
     "5:20: error: state 'x' is already declared as input at line 4"),
    ("dim-is-a-name", edit(("state: {h: hidden}", "state: {h: h}")),
     "5:9: error: 'h' is both a dim and the name of state declared at line 5"),
    # --- params ----------------------------------------------------------------------------
    ("param-3d", edit(("  W: [hidden, input]", "  W: [hidden, input, input]")),
     "7:6: error: param 'W' must be a vector [dim] or a matrix [rows, cols], not 3-dimensional"),
    ("param-0d", edit(("  b: [hidden]", "  b: []")),
     "10:6: error: param 'b' must be a vector [dim] or a matrix [rows, cols], not 0-dimensional"),
    ("shape-not-list", edit(("  b: [hidden]", "  b: hidden")), "10:6: error: the shape of param 'b' must be a list"),
    ("shape-nested", edit(("  b: [hidden]", "  b: [[hidden]]")),
     "10:7: error: a dim of param 'b' must be a single value, not a list"),
    ("param-key-list", edit(("  b: [hidden]", "  [b]: [hidden]")),
     "10:3: error: a key of 'params' must be a single value, not a list"),
    ("param-unknown-field", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    std: 1")),
     "12:5: error: unknown field 'std' of param 'b'; a param has shape, init, mask"),
    ("param-no-shape", edit(("  b: [hidden]", "  b:\n    init: zeros")), "11:5: error: param 'b' has no shape"),
    ("init-unknown", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: glorot")),
     f"12:11: error: the init of param 'b' must be one of {INITS}"),
    ("init-unknown-name", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: uniform(x)")),
     "12:19: error: unknown name 'x' in the init of param 'b'; it may use the dims: input, hidden"),
    ("init-needs-argument", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: normal")),
     "12:11: error: init 'normal' needs 1 argument"),
    ("init-arity", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: uniform(1, 2, 3)")),
     "12:11: error: init uniform() takes 1 or 2 arguments, got 3"),
    ("init-function", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: uniform(exp(1))")),
     "12:19: error: function 'exp' is not allowed in the init of param 'b'; use numbers, dims and sqrt"),
    ("init-orthogonal-vector", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: orthogonal")),
     "12:11: error: orthogonal init needs a matrix, and 'b' is a vector"),
    ("init-list", edit(("  b: [hidden]", "  b:\n    shape: [hidden]\n    init: [1]")),
     "12:11: error: the init of param 'b' must be a single value, not a list"),
    ("init-empty-flow", edit(("  b: [hidden]", "  b: {shape: [hidden], init: ''}")),
     "10:31: error: the init of param 'b' is empty"),
    # --- equations -------------------------------------------------------------------------
    ("unknown-name", edit((EQ, "  h_new: tanh(W @ x + U @ h + c)")), "12:31: error: unknown name 'c'"),
    ("unknown-name-double-quoted", edit((EQ, '  h_new: "tanh(W @ x + U @ h + c)"')), "12:32: error: unknown name 'c'"),
    ("unknown-name-single-quoted", edit((EQ, "  h_new: 'tanh(W @ x + U @ h + c)'")), "12:32: error: unknown name 'c'"),
    ("unknown-name-flow", edit(("equations:\n" + EQ, "equations: {h_new: tanh(W @ x + U @ h + c)}")),
     "11:41: error: unknown name 'c'"),
    ("undeclared-vector-param", edit((EQ, "  h_new: tanh(W @ x + U @ h + b + c)")), "12:35: error: unknown name 'c'"),
    ("unknown-function", edit((EQ, "  h_new: tanh(W @ x + U @ h + b) + foo(x)")),
     "12:36: error: unknown function 'foo'; known: abs, exp, log, max, min, relu, sigmoid, softplus, sqrt, tanh, where"),
    ("used-before-definition", edit((EQ, "  h_new: tanh(W @ x + U @ h + b) * g\n  g: sigmoid(h)")),
     "12:36: error: 'g' is used before its equation (line 13); equations are in order, and a state name means its value at t-1"),
    ("used-before-in-product", edit((EQ, "  h_new: tanh(W @ x + U @ g + b)\n  g: sigmoid(h)")),
     "12:27: error: 'g' is used before its equation (line 13); equations are in order, and a state name means its value at t-1"),
    ("self-reference", edit((EQ, "  h_new: tanh(W @ x + U @ h + b + h_new)")),
     "12:35: error: 'h_new' is used before its equation (line 12); equations are in order, and a state name means its value at t-1"),
    ("shape-mismatch-product", edit((EQ, "  h_new: tanh(W @ h + U @ h + b)")),
     "12:19: error: W is [hidden, input] but its operand is a [hidden] vector"),
    ("shape-mismatch-product-transposed", edit(("  W: [hidden, input]", "  W: [input, hidden]")),
     "12:19: error: W is [input, hidden] but its operand is a [input] vector"),
    ("shape-mismatch-elementwise", edit((EQ, EQ + " + x")),
     "12:36: error: elementwise operation mixes a [hidden] vector and a [input] vector"),
    ("shape-mismatch-in-operand", edit((EQ, "  h_new: tanh(W @ x + U @ (h + x) + b)")),
     "12:32: error: elementwise operation mixes a [hidden] vector and a [input] vector"),
    ("shape-mismatch-operand-product", edit((EQ, "  h_new: tanh(W @ (x*h) + U @ h + b)")),
     "12:22: error: elementwise operation mixes a [input] vector and a [hidden] vector"),
    ("matrix-elementwise", edit((EQ, EQ + " * U")), "12:36: error: matrix 'U' can only be the left operand of '@'"),
    ("matrix-right-of-@", edit((EQ, "  h_new: tanh(W @ x + U @ U + b)")),
     "12:27: error: matrix 'U' can only be the left operand of '@'"),
    ("vector-left-of-@", edit((EQ, "  h_new: tanh(x @ W + U @ h + b)")),
     "12:15: error: the left operand of '@' must be a matrix param, not 'x'"),
    ("syntax-error", edit((EQ, "  h_new: tanh(W @ x + U @ h + b")),
     "12:14: error: invalid syntax in equation 'h_new': '(' is never closed"),
    ("huge-exponent", edit((EQ, EQ + "**9**9**9")), "12:38: error: the exponent of ** must be at most 64 in size"),
    ("exponent-not-number", edit((EQ, EQ + "**h")), "12:35: error: the exponent of ** must be a number"),
    ("division-by-zero", edit((EQ, "  h_new: h + tanh(W @ x + U @ h + b)/0")), "12:14: error: division by zero"),
    ("keyword-argument", edit((EQ, "  h_new: tanh(x=W @ x + U @ h + b)")),
     "12:17: error: keyword arguments are not allowed in equation 'h_new'"),
    ("string-constant", edit((EQ, EQ + " * 'os'")),
     "12:36: error: string constants are not allowed in equation 'h_new'; only numbers"),
    ("constant-equation", edit((EQ, "  k: 2*3\n" + EQ), ("+ b)", "+ b) * k")),
     "12:6: error: equation 'k' is a constant; an equation must depend on an input, a state or a param"),
    ("constant-equation-cancels", edit((EQ, "  h_new: 0*tanh(W @ x + U @ h + b)")),
     "12:10: error: equation 'h_new' is a constant; an equation must depend on an input, a state or a param"),
    ("constant-equation-number", edit((EQ, "  h_new: 1")),
     "12:10: error: equation 'h_new' is a constant; an equation must depend on an input, a state or a param"),
    ("equation-list", edit((EQ, "  h_new: [1]")), "12:10: error: equation 'h_new' must be a single value, not a list"),
    ("equation-null", edit((EQ, "  h_new:")), "12:9: error: equation 'h_new' is empty"),
    ("equation-empty-string", edit((EQ, "  h_new: ''")), "12:11: error: equation 'h_new' is empty"),
    ("equation-too-long", edit((EQ, "  h_new: tanh(W @ x + U @ h + b)*(" + "h*" * 6000 + "h)")),
     "12:10: error: equation 'h_new' is longer than 10000 characters"),
    # --- update and output -----------------------------------------------------------------
    ("state-never-updated", edit(("update: {h: h_new}", "update: {}")),
     "5:9: error: state 'h' is never updated: add it to 'update'"),
    ("second-state-never-updated", edit(("state: {h: hidden}", "state: {h: hidden, c: hidden}")),
     "5:20: error: state 'c' is never updated: add it to 'update'"),
    ("update-names-param", edit(("update: {h: h_new}", "update: {h: b}")),
     "13:13: error: the update of 'h' must name an equation, and 'b' is not one"),
    ("update-names-input", edit(("update: {h: h_new}", "update: {h: x}")),
     "13:13: error: the update of 'h' must name an equation, and 'x' is not one"),
    ("update-names-nothing", edit(("update: {h: h_new}", "update: {h: zz}")),
     "13:13: error: the update of 'h' must name an equation, and 'zz' is not one"),
    ("update-names-product", edit(("update: {h: h_new}", "update: {h: _p0}")),
     "13:13: error: the update of 'h' must name an equation, and '_p0' is not one"),
    ("update-names-operand", edit(("update: {h: h_new}", "update: {h: _v0}"), ("U @ h", "U @ (h*b)")),
     "13:13: error: the update of 'h' must name an equation, and '_v0' is not one"),
    ("update-mapping", edit(("update: {h: h_new}", "update: {h: {a: b}}")),
     "13:13: error: the update of state 'h' must be a single value, not a mapping"),
    ("update-not-a-state", edit(("update: {h: h_new}", "update: {h: h_new, x: h_new}")),
     "13:20: error: 'x' is not a state; the states are h"),
    ("update-dim-mismatch", edit(("state: {h: hidden}", "state: {h: hidden, c: cells}"), ("update: {h: h_new}", "update: {h: h_new, c: h_new}")),
     "13:23: error: state 'c' is [cells] but 'h_new' is [hidden]"),
    ("output-state", edit(("output: h_new", "output: h")), "14:9: error: an output must name an equation, and 'h' is not one"),
    ("output-param", edit(("output: h_new", "output: W")), "14:9: error: an output must name an equation, and 'W' is not one"),
    ("output-product", edit(("output: h_new", "output: _p0")), "14:9: error: an output must name an equation, and '_p0' is not one"),
    # --- unused ----------------------------------------------------------------------------
    ("unused-vector-param", edit(("  b: [hidden]", "  b: [hidden]\n  c: [hidden]")), "11:3: error: param 'c' is never used"),
    ("unused-matrix-param", edit(("  b: [hidden]", "  b: [hidden]\n  V: [hidden, input]")), "11:3: error: param 'V' is never used"),
    ("unused-input", edit(("inputs: {x: input}", "inputs: {x: input, y: input}")), "4:20: error: input 'y' is never used"),
    ("unused-input-yaml11-bool-word", edit(("inputs: {x: input}", "inputs: {x: input, yes: input}")),
     "4:20: error: input 'yes' is never used"),
    ("unused-equation", edit((EQ, EQ + "\n  g: sigmoid(h)")), "13:3: error: equation 'g' is never used"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec(tmp_path, text, expected):
    path, error = compile_error(tmp_path, text)
    assert str(error) == f"{path}:{expected}"
    assert error.where.path == path


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_every_case_differs_from_the_base():
    # guards the table: no case is accidentally the valid base spec
    assert all(text != BASE for _, text, _ in CASES)


def test_cannot_read(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SpecError) as info:
        compile_spec(str(missing))
    assert str(info.value) == f"{missing}:1:1: error: cannot read spec: No such file or directory"
    with pytest.raises(SpecError) as info:
        compile_spec(str(tmp_path))
    assert str(info.value) == f"{tmp_path}:1:1: error: cannot read spec: Is a directory"


def test_too_large(tmp_path):
    path, error = compile_error(tmp_path, BASE + "#" * MAX_SPEC_BYTES)
    assert str(error) == f"{path}:1:1: error: spec is larger than {MAX_SPEC_BYTES} bytes"


def test_too_large_source_bytes(tmp_path):
    path = str(tmp_path / "cell.yaml")
    with pytest.raises(SpecError) as info:
        compile_spec(path, (BASE + "#" * MAX_SPEC_BYTES).encode())
    assert str(info.value) == f"{path}:1:1: error: spec is larger than {MAX_SPEC_BYTES} bytes"


def test_source_bytes_are_used_instead_of_the_file(tmp_path):
    path = str(tmp_path / "never-written.yaml")
    with pytest.raises(SpecError) as info:
        compile_spec(path, edit(("output: h_new", "output: h")).encode())
    assert str(info.value) == f"{path}:14:9: error: an output must name an equation, and 'h' is not one"


def test_not_utf8(tmp_path):
    path, error = compile_error(tmp_path, BASE.encode().replace(b"name: rnn", b"name: rn\xffn"))
    assert str(error) == f"{path}:1:9: error: spec is not valid UTF-8"


def test_megabyte_equation_refused_quickly(tmp_path):
    import time

    text = edit((EQ, "  h_new: tanh(W @ x + U @ h + b)*(" + "h*" * 499_000 + "h)"))
    assert len(text.encode()) < MAX_SPEC_BYTES
    start = time.perf_counter()
    path, error = compile_error(tmp_path, text)
    assert str(error) == f"{path}:12:10: error: equation 'h_new' is longer than 10000 characters"
    assert time.perf_counter() - start < 5


def test_byte_order_mark_does_not_shift_locations(tmp_path):
    path, error = compile_error(tmp_path, b"\xef\xbb\xbf" + edit((EQ, "  h_new: tanh(W @ x + U @ h + c)")).encode())
    assert str(error) == f"{path}:12:31: error: unknown name 'c'"


def test_multiline_equations_point_at_the_offending_line(tmp_path):
    block = BASE.replace(EQ, "  h_new: |\n    tanh(W @ x\n      + U @ h + c)")
    path = tmp_path / "block.yaml"
    path.write_text(block)
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    assert str(e.value) == f"{path}:14:17: error: unknown name 'c'"
    folded = BASE.replace(EQ, "  h_new: tanh(W @ x\n    + U @ h + c)")
    path.write_text(folded)
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    assert str(e.value) == f"{path}:13:15: error: unknown name 'c'"


def test_bad_utf8_is_located_on_its_line(tmp_path):
    path = tmp_path / "bytes.yaml"
    data = BASE.encode().replace(b"summary: ", b"summary: ab\xff", 1)
    path.write_bytes(data)
    line = data[: data.index(b"\xff")].count(b"\n") + 1
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    assert str(e.value) == f"{path}:{line}:12: error: spec is not valid UTF-8"


@pytest.mark.parametrize(
    "init, message",
    [
        ("uniform(sqrt(-1))", "the arguments of the init of param 'b' must be finite real numbers"),
        ("normal(-1)", "normal() needs a positive argument in the init of param 'b'"),
        ("uniform(2, 1)", "uniform(a, b) needs a < b in the init of param 'b'"),
        ("uniform(0)", "uniform() needs a positive argument in the init of param 'b'"),
    ],
)
def test_init_values_must_make_sense(tmp_path, init, message):
    path = tmp_path / "init.yaml"
    path.write_text(BASE.replace("  b: [hidden]", f"  b: {{shape: [hidden], init: '{init}'}}"))
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    assert e.value.message == message
