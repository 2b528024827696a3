"""Fuzzing the front end: mutated catalog specs and random equation strings.

The only outcomes allowed are a successful build (whose module passed the ast gate of
cellspec.codegen.verify) or a SpecError located in the spec: a line and column inside the text.
Anything else (a traceback from PyYAML, SymPy, the printer or Python's parser, a hang) fails.
FUZZ_CASES examples per strategy, 1,500 by default (3,000 in all); set CELLSPEC_FUZZ_CASES for
more. Hypothesis is derandomized, so every run tries the same cases.
"""

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellspec.build import compile_spec
from cellspec.errors import SpecError

FUZZ_CASES = int(os.environ.get("CELLSPEC_FUZZ_CASES", "1500"))
SPECS = Path(__file__).resolve().parent.parent / "specs"
# small specs that between them use every section: constants, masks, step, dims, constraints, outputs
SEEDS = {name: (SPECS / f"{name}.yaml").read_text() for name in ("rnn", "gru", "lstm_peephole", "clockwork", "lstm_depth_gated", "lstmp")}
SETTINGS = settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

# characters that mean something to YAML, to the equation grammar, or to the generated code
PUNCTUATION = list(":{}[],&*!|>'\"%@#-+/()<>=.~?\\`^$;\t\n ") + ["\r", "\u2028", "\xa0", "\ufeff", "\u0445", "\x00", "\x7f"]
WORDS = [
    "h", "x", "c", "W", "U", "b", "t", "i", "j", "hidden", "input", "modules", "tanh", "sigmoid", "where", "exp", "log",
    "sqrt", "relu", "softplus", "abs", "max", "min", "off", "yes", "null", "~", "True", "None", "lambda", "import",
    "__import__", "np", "self", "d_h", "_p0", "1e-4", "1e999", "0", "-1", "2**64", "9**9**9", "&a", "*a", "!!python/object",
    "{}", "[]", "|", ">-", "---", "...", "shape", "init", "mask", "value", "uniform(0.1)", "orthogonal", "'", '"',
]


def fragment():
    return st.one_of(st.sampled_from(WORDS), st.sampled_from(PUNCTUATION), st.text(min_size=1, max_size=4))


@st.composite
def mutated_specs(draw):
    text = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5))
        n = len(text)
        at = draw(st.integers(0, n))
        if kind == 0:  # insert
            text = text[:at] + draw(fragment()) + text[at:]
        elif kind == 1:  # delete a span
            text = text[:at] + text[at + draw(st.integers(1, 12)):]
        elif kind == 2:  # replace a span
            text = text[:at] + draw(fragment()) + text[at + draw(st.integers(1, 6)):]
        else:  # line edits: duplicate, drop, swap, re-indent
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            m = draw(st.integers(0, len(lines) - 1))
            if kind == 3:
                lines.insert(m, lines[k])
            elif kind == 4:
                lines[k], lines[m] = lines[m], lines[k]
            else:
                lines[k] = " " * draw(st.integers(0, 6)) + lines[k].lstrip()
            text = "\n".join(lines)
    return text


GRAMMAR = ["h", "x", "W @ x", "U @ h", "b", "1", "0.5", "2", "tanh(", "sigmoid(", "exp(", "log(", "where(", "max(", "min(",
           "abs(", "sqrt(", "relu(", "softplus(", ")", ", ", " + ", " - ", " * ", " / ", " ** ", " @ ", " % ", " > ", " == ",
           "-", "(", "h_new", "W", "U", "1e30", "1e-30", "0", " and ", " if ", "[", "]", ".T", "'s'", "lambda: "]


LEAVES = ["h", "b", "W @ x", "U @ h", "U @ (h*b)", "0.5", "2", "1e30", "1e-30", "0"]
UNARY = ["tanh({})", "sigmoid({})", "exp({})", "log({})", "sqrt({})", "abs({})", "relu({})", "softplus({})", "-({})", "({})**2"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "({}) % ({})", "max({}, {})", "min({}, {})",
          "where({0} > {1}, {0}, {1})"]
WELL_FORMED = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        st.builds(lambda f, a: f.format(a), st.sampled_from(UNARY), inner),
        st.builds(lambda f, a, b: f.format(a, b), st.sampled_from(BINARY), inner, inner),
    ),
    max_leaves=8,
)


@st.composite
def expressions(draw):
    """Half token soup, half well-formed expressions over every function and operator (which may
    still be refused: a constant that overflows, a division by zero, an unused param)."""
    if draw(st.booleans()):
        return draw(WELL_FORMED)
    return "".join(draw(st.lists(st.sampled_from(GRAMMAR), min_size=1, max_size=14)))


def outcome(text: str):
    """Build the text as spec `fuzz.yaml`; return 'built' or 'refused', or fail the test."""
    path = "fuzz.yaml"
    data = text.encode("utf-8", "surrogatepass")
    try:
        compile_spec(path, data)
        return "built"
    except SpecError as e:
        where = e.where
        assert where.path == path, str(e)
        lines = text.count("\n") + 2  # a YAML error may point one past the last line
        assert 1 <= where.line <= lines and where.col >= 1, str(e)
        assert str(e).startswith(f"{path}:{where.line}:{where.col}: error: "), str(e)
        return "refused"


def fuzz(strategy):
    """Run `check` on FUZZ_CASES examples of `strategy` and return the counts of its outcomes."""

    def run(to_spec):
        counts = {"built": 0, "refused": 0}

        @SETTINGS
        @given(strategy)
        def one(example):
            counts[outcome(to_spec(example))] += 1

        one()
        return counts

    return run


def equation_spec(expr: str) -> str:
    seed = SEEDS["rnn"]
    # single-quoted, so that the text reaches the equation parser whatever YAML makes of ':' or '#'
    equation = "tanh(W @ x + U @ h + b) * (" + expr + ")"
    text = seed.replace("h_new: tanh(W @ x + U @ h + b)", "h_new: '" + equation.replace("'", "''") + "'")
    assert text != seed
    return text


# A fuzzer whose cases only ever failed in YAML, or only ever built, would test little: each must
# reach both outcomes (the mutated specs built 12% and the equations 29% of the time when this was
# written).
def test_mutated_specs_build_or_get_a_located_error():
    counts = fuzz(mutated_specs())(lambda text: text)
    print(f"mutated specs: {counts}")
    assert counts["built"] >= 0.02 * sum(counts.values()) and counts["refused"] >= 0.2 * sum(counts.values()), counts


def test_random_equations_build_or_get_a_located_error():
    counts = fuzz(expressions())(equation_spec)
    print(f"random equations: {counts}")
    assert counts["built"] >= 0.02 * sum(counts.values()) and counts["refused"] >= 0.2 * sum(counts.values()), counts
