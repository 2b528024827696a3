"""Fuzzing the front end: mutated catalog specs and random equation strings.

The only outcomes allowed are a successful build (whose module passed the ast gate of
cellspec.codegen.cpu.verify) or a SpecError located in the spec: a line and column inside the text.
Anything else (a traceback from PyYAML, SymPy, the printer or Python's parser, a hang) fails.
FUZZ_CASES examples per strategy, 1,500 by default (3,000 in all); set CELLSPEC_FUZZ_CASES for
more. Hypothesis is derandomized, so every run tries the same cases.

What builds must also run: FUZZ_RUN of the built examples per strategy (12 by default, each a
Numba compile of 1-4 s; set CELLSPEC_FUZZ_RUN for more), chosen deterministically for the new
equation text, constants, inits and step they bring, are compiled and run forward and backward
at several small sizes against the NumPy reference and finite differences (tests/run_built.py).
Failures of either kind are collected, not shrunk (a shrink step would be a compile), and
reported together, grouped by cause.
"""

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellspec.build import compile_spec
from cellspec.errors import SpecError
from run_built import RunFailure, run_built

FUZZ_CASES = int(os.environ.get("CELLSPEC_FUZZ_CASES", "1500"))
FUZZ_RUN = int(os.environ.get("CELLSPEC_FUZZ_RUN", "12"))
SPECS = Path(__file__).resolve().parent.parent / "specs"
# small specs that between them use every section: constants, masks, step, dims, constraints, outputs
SEEDS = {name: (SPECS / f"{name}.yaml").read_text() for name in ("rnn", "gru", "lstm_peephole", "clockwork", "lstm_depth_gated", "lstmp")}
# an Elman RNN with a step index in float functions, a constant formula, an init formula and
# a product of a product: valid at every size, a few edits away from specs that are not
SEEDS["rnn_step"] = """\
name: rnn_step
summary: Elman RNN whose update is damped with the step
cite: none, a seed for the fuzzer
inputs: {x: input}
state: {h: hidden}
step: t
constants:
  k: {shape: [hidden], value: 'i % 3 + 1'}
params:
  W: [hidden, input]
  U: [hidden, hidden]
  b: {shape: [hidden], init: 'constant(1/(hidden + 1))'}
equations:
  h_run: tanh(W @ x + U @ (U @ h) + b)
  h_new: where(t % 2 == 0, h_run / max(t, 1), h*k/(1 + k) + log(1 + t)*h_run)
update: {h: h_new}
output: h_new
"""
SETTINGS = settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))

# characters that mean something to YAML, to the equation grammar, or to the generated code
PUNCTUATION = list(":{}[],&*!|>'\"%@#-+/()<>=.~?\\`^$;\t\n ") + ["\r", "\u2028", "\xa0", "\ufeff", "\u0445", "\x00", "\x7f"]
WORDS = [
    "h", "x", "c", "W", "U", "b", "t", "i", "j", "hidden", "input", "modules", "tanh", "sigmoid", "where", "exp", "log",
    "sqrt", "relu", "softplus", "abs", "max", "min", "off", "yes", "null", "~", "True", "None", "lambda", "import",
    "__import__", "np", "self", "d_h", "_p0", "1e-4", "1e999", "0", "-1", "2**64", "9**9**9", "&a", "*a", "!!python/object",
    "{}", "[]", "|", ">-", "---", "...", "shape", "init", "mask", "value", "uniform(0.1)", "orthogonal", "'", '"',
    # what the compiler must get right beyond the grammar: products of products, the step in
    # float functions, '%' in operands and conditions, formulas that fail at some sizes only
    "U @ (U @ h)", "U @ (W @ x)", "U @ (h % 3)", " % 3", " % t", "2 % t", "max(t, 1)", "log(t)", "/ max(t, 1)",
    "where(h > 0, where(h < b, h, b), b)", "where(U @ h > 0, ", "step: t\n", "constants: {k: {shape: [hidden], value: '2**i'}}\n",
    "2**i", "1 // (hidden - 4)", "i % 3", "(hidden-3)**-1", "constant((hidden-3)**-1)", "0*(1+1)", " - 1", "hidden - 3",
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
           "-", "(", "h_new", "W", "U", "1e30", "1e-30", "0", " and ", " if ", "[", "]", ".T", "'s'", "lambda: ",
           "t", "k", "U @ (", "max(t, 1)"]


# k is a constant [hidden] and t the step: a spec that uses them declares them (equation_spec)
LEAVES = ["h", "b", "W @ x", "U @ h", "U @ (h*b)", "0.5", "2", "1e30", "1e-30", "0", "t", "k", "max(t, 1)", "log(1 + t)",
          "(2 % t)", "k % 3", "0*(1+1)", "(1 - 1)", "U @ (U @ h)", "U @ (W @ x)", "U @ (k*h)", "U @ (h % 3)"]
UNARY = ["tanh({})", "sigmoid({})", "exp({})", "log({})", "sqrt({})", "abs({})", "relu({})", "softplus({})", "-({})", "({})**2",
         "U @ ({})", "({}) / max(t, 1)", "({}) * log(t)", "abs(({0}) / (2 % t))", "where(t % 2 == 0, {0}, h)",
         "where(U @ (({0}) % 3) > 0, tanh({0}), h)", "abs(where(h < b, log({0}), b))"]
BINARY = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "({}) % ({})", "max({}, {})", "min({}, {})",
          "where({0} > {1}, {0}, {1})", "where({0} > 0, where({1} < {0}, {0}, {1}), {1})", "where(({0}) % 2 > 1, {0}, {1})",
          "U @ (({0}) * ({1}))"]
WELL_FORMED = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        st.builds(lambda f, a: f.format(a), st.sampled_from(UNARY), inner),
        st.builds(lambda f, a, b: f.format(a, b), st.sampled_from(BINARY), inner, inner),
    ),
    max_leaves=8,
)
# the constant k's formula of the unit index i, and b's init: some fail at some sizes only
CONSTANT_VALUES = ["i", "i % 3", "2**i", "1 // (hidden - 4)", "(i + 1)**-1", "hidden - 2*i", "1 / (hidden - 3)", "(-1)**i",
                   "2.0**-i", "i // 2 % 2", "1e30 * i", "0", "i*input // hidden"]
INITS = [None, None, None, "constant((hidden-3)**-1)", "uniform(1 / (hidden - 4))", "normal(sqrt(hidden - 2))",
         "uniform(-1, hidden - 3)", "constant(1 // (input - 2))", "constant(2**hidden)", "zeros"]


@st.composite
def expressions(draw):
    """Half token soup, half well-formed expressions over every function and operator (which may
    still be refused: a constant that overflows, a division by zero, an unused param); with a
    formula for the constant k, an init for b, and whether the expression is an equation of
    its own (which may then be one of constants only)."""
    if draw(st.booleans()):
        expr = draw(WELL_FORMED)
    else:
        expr = "".join(draw(st.lists(st.sampled_from(GRAMMAR), min_size=1, max_size=14)))
    return expr, draw(st.sampled_from(CONSTANT_VALUES)), draw(st.sampled_from(INITS)), draw(st.booleans())


def outcome(text: str):
    """Build the text as spec `fuzz.yaml`; return ('built', the Built) or ('refused', None), or
    fail (AssertionError, or whatever the compiler raised)."""
    path = "fuzz.yaml"
    data = text.encode("utf-8", "surrogatepass")
    try:
        return "built", compile_spec(path, data)
    except SpecError as e:
        where = e.where
        assert where.path == path, str(e)
        lines = text.count("\n") + 2  # a YAML error may point one past the last line
        assert 1 <= where.line <= lines and where.col >= 1, str(e)
        assert str(e).startswith(f"{path}:{where.line}:{where.col}: error: "), str(e)
        return "refused", None


TOKENS = re.compile(r"[A-Za-z_]\w*|\d+|\S")


def features(built) -> frozenset:
    """What a built cell brings, as pairs of tokens of its equations, constants, inits and step,
    so that the run sample goes to new constructs rather than to a mutated summary."""
    cell = built.cell
    parts = [e for _, e in cell.equations_text] + [f"const {c.value}" for c in cell.constants.values()]
    parts += [f"init {p.init.kind} {p.init.args}" for p in cell.params] + ([f"step {cell.step}"] if cell.step else [])
    pairs = set()
    for part in parts:
        tokens = TOKENS.findall(part)
        pairs.update(zip(tokens, tokens[1:] + [""]))
    return frozenset(pairs)


def run_sample(built: list, n: int) -> list:
    """n of the built examples, (text, features, Built) in build order: greedily those that bring the
    most token pairs no earlier pick had, then every k-th of the rest. Deterministic."""
    picked, covered = [], set()
    rest = list(built)
    while rest and len(picked) < n:
        best = max(range(len(rest)), key=lambda k: (len(rest[k][1] - covered), -k))
        if not rest[best][1] - covered:
            break
        covered |= rest[best][1]
        picked.append(rest.pop(best))
    if len(picked) < n and rest:
        step = max(1, len(rest) // (n - len(picked)))
        picked += rest[::step][: n - len(picked)]
    return picked


def fuzz(strategy):
    """Build FUZZ_CASES examples of `strategy`, run FUZZ_RUN of those that built, and return the
    counts of the outcomes and the failures, as (stage, exception, spec text)."""

    def run(to_spec):
        counts = {"built": 0, "refused": 0, "crashed": 0}
        failures, built, seen = [], [], set()

        @SETTINGS
        @given(strategy)
        def one(example):
            text = to_spec(example)
            try:
                kind, result = outcome(text)
            except Exception as e:  # noqa: BLE001 - every other outcome is a failure, collected
                counts["crashed"] += 1
                failures.append(("build", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], text))
                return
            counts[kind] += 1
            if kind == "built" and text not in seen:
                seen.add(text)
                built.append((text, features(result), result))

        one()
        counts.update({"ran": 0, "sizes refused": 0, "run failed": 0})
        for text, _, result in run_sample(built, FUZZ_RUN):
            try:
                counts[{"ran": "ran", "refused": "sizes refused"}[run_built(result, text=text)]] += 1
            except RunFailure as e:
                counts["run failed"] += 1
                failures.append((e.stage, e.detail, text))
        return counts, failures

    return run


def report(failures: list) -> str:
    """The failures grouped by stage and the start of the exception (numbers and quoted names
    blurred), with the shortest spec of each group in full."""
    groups: dict[str, list] = {}
    for stage, detail, text in failures:
        key = stage + ": " + re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?|'[^']*'", "_", detail)[:70]
        groups.setdefault(key, []).append((detail, text))
    out = [f"{len(failures)} failures in {len(groups)} groups"]
    for key, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        detail, text = min(items, key=lambda it: len(it[1]))
        out.append(f"\n=== {len(items)} x {key.split(':')[0]}: {detail}\n{text}")
    return "\n".join(out)


def equation_spec(example) -> str:
    expr, constant, init, separate = example
    seed = SEEDS["rnn"]
    # single-quoted, so that the text reaches the equation parser whatever YAML makes of ':' or '#'
    quoted = "'" + expr.replace("'", "''") + "'"
    if separate:
        equations = f"z: {quoted}\n  h_new: tanh(W @ x + U @ h + b) * z"
    else:
        equations = "h_new: '" + ("tanh(W @ x + U @ h + b) * (" + expr + ")").replace("'", "''") + "'"
    text = seed.replace("h_new: tanh(W @ x + U @ h + b)", equations)
    assert text != seed
    # the step and the constant are declared where the expression names them (an unused one is
    # refused)
    extra = ("step: t\n" if re.search(r"\bt\b", expr) else "") + (
        f"constants: {{k: {{shape: [hidden], value: '{constant}'}}}}\n" if re.search(r"\bk\b", expr) else "")
    text = text.replace("\nparams:\n", "\n" + extra + "params:\n")
    if init:
        text = text.replace("  b: [hidden]", f"  b: {{shape: [hidden], init: '{init}'}}")
    return text


# A fuzzer whose cases only ever failed in YAML, or only ever built, would test little: each must
# reach both outcomes (the mutated specs built 12% and the equations 15% of the time when this was
# written), and most of the sample that built must run (not be refused at every size).
def test_mutated_specs_build_or_get_a_located_error():
    counts, failures = fuzz(mutated_specs())(lambda text: text)
    print(f"mutated specs: {counts}")
    assert not failures, report(failures)
    total = counts["built"] + counts["refused"] + counts["crashed"]
    assert counts["built"] >= 0.02 * total and counts["refused"] >= 0.2 * total, counts
    assert counts["ran"] >= min(FUZZ_RUN, counts["built"]) // 2, counts


def test_random_equations_build_or_get_a_located_error():
    counts, failures = fuzz(expressions())(equation_spec)
    print(f"random equations: {counts}")
    assert not failures, report(failures)
    total = counts["built"] + counts["refused"] + counts["crashed"]
    assert counts["built"] >= 0.02 * total and counts["refused"] >= 0.2 * total, counts
    assert counts["ran"] >= min(FUZZ_RUN, counts["built"]) // 2, counts
