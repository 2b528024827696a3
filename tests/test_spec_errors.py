"""Spec errors that need a generated input (too large, not UTF-8, a megabyte equation, a byte-order
mark, ...). The corpus of bad specs, one file each, is in tests/bad_specs/ and tests/test_bad_specs.py.

The bad specs here and there are small edits of BASE, a copy of specs/rnn.yaml, so its lines are known:

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
    15 torch:
    16   module: RNN
    17   state: [h]
    18   weight_ih: [W]
    19   weight_hh: [U]
    20   bias_ih: [b]
    21   bias_hh: [b]
"""

import pytest

from cellspec.build import compile_spec
from cellspec.errors import SpecError
from cellspec.spec import MAX_SPEC_BYTES

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
torch:
  module: RNN
  state: [h]
  weight_ih: [W]
  weight_hh: [U]
  bias_ih: [b]
  bias_hh: [b]
"""

EQ = "  h_new: tanh(W @ x + U @ h + b)"


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
    # the line numbers of every test here are those of specs/rnn.yaml
    assert rnn.read_text() == BASE


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


def test_a_quoted_yaml11_word_is_a_name(tmp_path):
    # unquoted, `off` is refused (tests/bad_specs/yaml11-off-state.yaml); quoted, every YAML tool reads a string
    path = tmp_path / "cell.yaml"
    path.write_text(edit(("state: {h: hidden}", "state: {'off': hidden}"), (EQ, "  h_new: tanh(W @ x + U @ off + b)"), ("update: {h: h_new}", "update: {'off': h_new}"), ("  state: [h]", "  state: ['off']")))
    built = compile_spec(str(path))
    assert set(built.cell.updates) == {"off"}


def test_modulo_of_a_state_is_allowed_in_a_where_condition(tmp_path):
    # '%' has no derivative, so it is refused on values with a gradient (tests/bad_specs/
    # modulo-of-a-state.yaml), but a condition is never differentiated
    path = tmp_path / "cell.yaml"
    path.write_text(edit((EQ, "  h_new: where(h % 2 > 1, tanh(W @ x + U @ h + b), h)")))
    assert "Mod" in str(compile_spec(str(path)).cell.nodes["h_new"].expr)


@pytest.mark.parametrize(
    "before",
    [
        r"\x20\t\u0020\U00000020",  # blanks written as escapes
        r"\x28 1 \x29 * ",  # characters written as escapes
        r"1 \/ 1 * ",  # `\/` is `/`
        r"1  # a \\ comment with \"quotes\" \n * ",  # `\\` and `\"` in a comment, then a line break
        "1 + \\\n      ",  # an escaped line break, then the next line's indentation
        "1 +\n      ",  # a folded line break
        "1 +\n\n      ",  # a blank line: folded into a line break of the value
    ],
    ids=["blanks", "parentheses", "slash", "comment", "escaped-break", "folded-break", "blank-line"],
)
def test_an_error_after_escapes_in_a_double_quoted_equation_points_at_its_text(tmp_path, before):
    text = edit((EQ, '  h_new: "tanh(W @ x + U @ h + b) * (' + before + 'unknownname)"'))
    path, error = compile_error(tmp_path, text)
    at = text.index("unknownname")
    line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    assert str(error) == f"{path}:{line}:{col}: error: unknown name 'unknownname'"


def test_an_error_after_doubled_quotes_in_a_single_quoted_equation_points_at_its_text(tmp_path):
    # in single quotes, `''` is one quote (here in a comment, which a blank line ends)
    text = edit((EQ, "  h_new: 'tanh(W @ x + U @ h + b) * (1  # it''s\n\n      + unknownname)'"))
    path, error = compile_error(tmp_path, text)
    at = text.index("unknownname")
    line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    assert str(error) == f"{path}:{line}:{col}: error: unknown name 'unknownname'"


@pytest.mark.parametrize("dim", ["dtype", "seed", "self", "i", "j"])
def test_a_reserved_dim_is_refused_where_it_is_written(tmp_path, dim):
    text = edit(("inputs: {x: input}", f"inputs: {{x: {dim}}}"), ("  W: [hidden, input]", f"  W: [hidden, {dim}]"))
    path, error = compile_error(tmp_path, text)
    assert (error.where.line, error.where.col) == (4, len("inputs: {x: ") + 1)
    assert error.message.startswith(f"dim {dim!r} is reserved: ")


def test_a_cell_name_longer_than_the_limit_is_refused(tmp_path):
    from cellspec.spec import MAX_NAME_CHARS

    ok = tmp_path / "ok.yaml"
    ok.write_text(edit(("name: rnn", "name: " + "r" * MAX_NAME_CHARS)))
    assert compile_spec(str(ok)).cell.name == "r" * MAX_NAME_CHARS
    path, error = compile_error(tmp_path, edit(("name: rnn", "name: " + "r" * (MAX_NAME_CHARS + 1))))
    assert str(error) == (
        f"{path}:1:7: error: cell name is {MAX_NAME_CHARS + 1} characters long, over the limit of {MAX_NAME_CHARS}: "
        "it names the module file, and Numba's cache files add to it"
    )


@pytest.mark.parametrize(
    "old, new, col",
    [
        ("state: {h: hidden}", "state: {h: &s hidden}", 12),  # an anchor no alias names
        ("params:", "params: &p", 9),
        ("  W: [hidden, input]", "  &w W: [hidden, input]", 3),  # on a key
    ],
)
def test_an_anchor_is_refused_where_it_is_written(tmp_path, old, new, col):
    path, error = compile_error(tmp_path, edit((old, new)))
    line = edit((old, new)).splitlines().index(new) + 1
    assert str(error) == f"{path}:{line}:{col}: error: YAML anchors and aliases are not allowed in a spec"


def test_a_control_character_is_invalid_yaml(tmp_path):
    # PyYAML refuses it while it sets up, before composing anything
    path, error = compile_error(tmp_path, edit(("name: rnn", "name: r\x00nn")))
    assert str(error) == f"{path}:1:1: error: invalid YAML"
