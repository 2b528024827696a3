"""The `cellspec` command: build specs into modules, check their gradients."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

from .argtypes import nonnegative_float as _nonnegative_float
from .argtypes import positive_float as _positive_float
from .argtypes import positive_int as _positive_int
from .errors import SpecError

EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC = 0, 1, 2


def _compile_all(paths: list[str]):
    """Compile every spec before writing any, so one bad spec leaves every file as it was."""
    from .build import compile_spec

    built, failed = [], False
    for path in paths:
        try:
            built.append(compile_spec(path))
        except SpecError as e:
            print(e, file=sys.stderr)
            failed = True
    names: dict[str, str] = {}
    for b, path in zip(built, paths):
        if b.cell.name in names:
            print(f"{path}: error: cell name {b.cell.name!r} is also the name in {names[b.cell.name]}", file=sys.stderr)
            failed = True
        names[b.cell.name] = path
    return (None if failed else built)


def cmd_build(args) -> int:
    from .files import OutputError, write_package

    start = time.perf_counter()
    built = _compile_all(args.specs)
    if built is None:
        return EXIT_BAD_SPEC
    try:
        written = write_package(args.output, {b.cell.name: b.source for b in built})
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_SPEC
    if not args.quiet:
        for b in built:
            target, changed = written[b.cell.name]
            for line in b.report():
                print(line)
            print(f"  -> {target}{'' if changed else ' (unchanged)'}")
        print(f"built {len(built)} cell{'s' if len(built) != 1 else ''} in {time.perf_counter() - start:.2f} s")
    return EXIT_OK


def cmd_check(args) -> int:
    from .files import import_file
    from .files import write_atomic
    from .gradcheck import gradcheck

    built = _compile_all(args.specs)
    if built is None:
        return EXIT_BAD_SPEC
    status = EXIT_OK
    with tempfile.TemporaryDirectory(prefix="cellspec-check-") as folder:
        for b in built:
            path = os.path.join(folder, f"{b.cell.name}.py")
            write_atomic(path, b.source)
            module = import_file(path, f"cellspec_check_{b.cell.name}")
            result = gradcheck(module, T=args.steps)
            ok = result.passed(args.tol)
            sizes = ", ".join(f"{d}={n}" for d, n in result.sizes.items())
            label = result.worst_label()
            # a non-finite value is named for what it is, never printed as an error size
            worst = f"{label}: {result.nonfinite[label]}" if label in result.nonfinite else f"worst relative error {result.worst:.2e} ({label})"
            print(f"{b.cell.name}: {'ok' if ok else 'FAILED'}  {worst}, float64, T={args.steps}, {sizes}")
            if args.verbose or not ok:
                for label, why in result.nonfinite.items():
                    if label not in result.errors:   # outputs and final states: printed first, as the likely cause
                        print(f"  {label}: {why}")
                for label, err in result.errors.items():
                    print(f"  {label}: {result.nonfinite[label] if label in result.nonfinite else f'{err:.2e}'}")
            if not ok:
                status = EXIT_FAILED
    return status


def cmd_catalog(args) -> int:
    from .files import write_atomic
    from .catalog import replace_section, table
    from .lower import build_ir
    from .spec import load_spec

    cells = []
    try:
        for path in args.specs:
            cells.append((path, build_ir(load_spec(path))))
    except SpecError as e:
        print(e, file=sys.stderr)
        return EXIT_BAD_SPEC
    try:
        with open(args.readme, encoding="utf-8") as f:
            readme = f.read()
    except (OSError, UnicodeDecodeError) as e:
        print(f"{args.readme}: error: cannot read: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return EXIT_BAD_SPEC
    try:
        updated = replace_section(readme, table(cells))
    except ValueError as e:
        print(f"{args.readme}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    if args.check:
        if updated != readme:
            print(f"{args.readme}: the catalog table is stale: run `cellspec catalog specs/*.yaml`", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    try:
        write_atomic(args.readme, updated)
    except OSError as e:
        print(f"{args.readme}: error: cannot write: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_SPEC
    print(f"{args.readme}: catalog of {len(cells)} cells")
    return EXIT_OK


@contextlib.contextmanager
def _bench_modules(built):
    """The built modules written to a temporary folder and imported, as (built, module) pairs, for
    as long as the block runs (the --memory and compile children import them from there)."""
    from .files import import_file, write_atomic

    with tempfile.TemporaryDirectory(prefix="cellspec-bench-") as folder:
        modules = []
        for b in built:
            path = os.path.join(folder, f"{b.cell.name}.py")
            write_atomic(path, b.source)
            modules.append((b, import_file(path, f"cellspec_bench_{b.cell.name}")))
        yield modules


def cmd_bench(args) -> int:
    from .bench import SIZES, Quiet, bench_cell, markdown, peak_memory, plot_scaling, scaling, write_results
    from . import blas

    if args.blas:
        try:
            blas.use(args.blas)
        except blas.BlasError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_SPEC
        os.environ["CELLSPEC_BLAS"] = args.blas  # the fresh processes of --memory run on it too

    sizes = args.sizes.split(",")
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        print(f"error: unknown size {', '.join(unknown)}; sizes: {', '.join(SIZES)}", file=sys.stderr)
        return EXIT_BAD_SPEC
    if "jax" in args.peers.split(",") and args.threads == 1 and "XLA_FLAGS" not in os.environ:
        # XLA's CPU client reads this at import; it has no thread-count flag, and by default it
        # uses every core (the 2 of the machines the README's figures come from)
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        print("note: PyTorch is not installed (pip install -e \".[bench]\"): its peers are n/a", file=sys.stderr)
    blas.set_threads(args.threads)
    built = _compile_all(args.specs)
    if built is None:
        return EXIT_BAD_SPEC
    rows, curves = [], {}
    quiet = Quiet(max_others=args.max_others / 100, patience=args.patience)
    if args.interop:
        return _bench_interop(args, built, sizes, quiet)
    if args.trainer:
        return _bench_trainer(args, built, quiet)
    if args.profile:
        return _bench_profile(args, built, sizes)
    memory_sizes = set(args.memory.split(",")) if args.memory else set()
    with _bench_modules(built) as modules:
        for b, module in modules:
            for size in sizes:
                row = bench_cell(b.cell.name, module, b.schedule, size, args.rounds, set(args.peers.split(",")), args.pause, quiet)
                if size in memory_sizes:
                    row.memory = {"cellspec": peak_memory("cellspec", module, b.cell.name, SIZES[size], args.threads)}
                    if module.Cell.TORCH is not None:
                        row.memory["torch"] = peak_memory("torch", module, b.cell.name, SIZES[size], args.threads)
                rows.append(row)
                print(markdown([row]).splitlines()[2], flush=True)
            if args.scaling and module.Cell.TORCH is not None:
                curves[b.cell.name] = scaling(module, b.schedule, max(3, args.rounds // 2), args.pause, quiet)
    from .bench.compile import compile_times

    compile_s = {b.cell.name: compile_times(path, args.threads) for b, path in zip(built, args.specs)}
    json_path, md_path = write_results(rows, args.out, args.threads, compile_s)
    print(f"BLAS: {blas.BACKEND}; wrote {json_path} and {md_path}")
    if quiet.spoiled:
        print(f"{quiet.spoiled} rounds run again, {quiet.waited:.0f} s waited for quiet CPUs (others' share above --max-others)")
    if curves:
        import json

        with open(os.path.join(args.out, "scaling.json"), "w") as f:
            json.dump(curves, f, indent=1)
        print(f"wrote {plot_scaling(curves, os.path.join(args.out, 'scaling.png'))}")
    return EXIT_OK


def _bench_interop(args, built, sizes, quiet) -> int:
    """`cellspec bench --interop`: the rows of cellspec.bench.interop, into interop.md/.json."""
    import json

    from .bench.interop import interop_rows, markdown
    from .files import write_atomic

    os.makedirs(args.out, exist_ok=True)
    with _bench_modules(built) as pairs:
        modules = {b.cell.name: module for b, module in pairs}
        memory = args.memory.split(",")[0] if args.memory else None
        rows = interop_rows(modules, sizes, args.rounds, args.pause, quiet, memory, args.threads)
    text = markdown(rows)
    print(text)
    write_atomic(os.path.join(args.out, "interop.md"), text + "\n")
    write_atomic(os.path.join(args.out, "interop.json"), json.dumps(rows, indent=1) + "\n")
    print(f"wrote {os.path.join(args.out, 'interop.md')} and interop.json")
    return EXIT_OK


def _bench_profile(args, built, sizes) -> int:
    """`cellspec bench --profile`: each cell's forward+backward by phase (cellspec.bench.profile),
    into profile.md/.json."""
    import json

    from .bench.profile import markdown, profile_cell
    from .files import write_atomic

    os.makedirs(args.out, exist_ok=True)
    rows = []
    with _bench_modules(built) as modules:
        for b, module in modules:
            for size in sizes:
                rows.append(dict(spec=b.cell.name, size=size, **profile_cell(module, b.schedule, size, args.rounds)))
                print(markdown(rows[-1:]).splitlines()[2], flush=True)
    from . import blas
    from .bench import machine

    text = (f"Measured on {machine.sentence(machine.describe())}. BLAS: {blas.BACKEND}; one thread; shares of the median "
            "forward+backward time (float32).\n\n" + markdown(rows))
    write_atomic(os.path.join(args.out, "profile.md"), text + "\n")
    write_atomic(os.path.join(args.out, "profile.json"), json.dumps(rows, indent=1) + "\n")
    print(f"wrote {os.path.join(args.out, 'profile.md')} and profile.json")
    return EXIT_OK


def _bench_trainer(args, built, quiet) -> int:
    """`cellspec bench --trainer`: cellspec train's step against its cell's forward+backward
    (cellspec.bench.training), into trainer.md/.json."""
    import json

    from .bench.training import TASKS, markdown, trainer_row
    from .files import write_atomic

    os.makedirs(args.out, exist_ok=True)
    rows = [trainer_row(b.cell.name, path, task, T, args.rounds, args.pause, quiet)
            for b, path in zip(built, args.specs) for task, T in TASKS]
    text = markdown(rows, args.threads)
    print(text)
    write_atomic(os.path.join(args.out, "trainer.md"), text + "\n")
    write_atomic(os.path.join(args.out, "trainer.json"), json.dumps(rows, indent=1) + "\n")
    print(f"wrote {os.path.join(args.out, 'trainer.md')} and trainer.json")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cellspec", description="Compile recurrent cells declared as equations into Numba forward and backward passes.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write one module per spec")
    b.add_argument("specs", nargs="+", metavar="SPEC")
    b.add_argument("-o", "--output", default="generated", metavar="DIR", help="output folder (default: generated/)")
    b.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    b.set_defaults(run=cmd_build)
    c = sub.add_parser("check", help="finite-difference gradient check of each spec, in float64")
    c.add_argument("specs", nargs="+", metavar="SPEC")
    c.add_argument("--tol", type=_positive_float, default=1e-6, help="largest relative error that passes (default 1e-6)")
    c.add_argument("--steps", type=_positive_int, default=4, help="time steps of the check (default 4)")
    c.add_argument("-v", "--verbose", action="store_true", help="print the error of every array")
    c.set_defaults(run=cmd_check)
    t = sub.add_parser("catalog", help="write the README's catalog table from the specs")
    t.add_argument("specs", nargs="+", metavar="SPEC")
    t.add_argument("--readme", default="README.md", metavar="FILE")
    t.add_argument("--check", action="store_true", help="exit 1 if the table is not current, write nothing")
    t.set_defaults(run=cmd_catalog)
    k = sub.add_parser("bench", help="time cells against PyTorch, TorchScript and the GEMM floor")
    k.add_argument("specs", nargs="+", metavar="SPEC")
    k.add_argument("--sizes", default="S1,S2,S3,S4,S5", help="comma-separated: S1..S5 or tiny (default S1,S2,S3,S4,S5)")
    k.add_argument("--threads", type=_positive_int, default=2, help="BLAS and PyTorch threads (default 2)")
    k.add_argument("--blas", choices=("openblas", "mkl"), help="the cells' BLAS: numpy's OpenBLAS or Intel MKL (the mkl extra); default: CELLSPEC_BLAS, else openblas")
    k.add_argument("--rounds", type=_positive_int, default=7, help="interleaved rounds; medians are reported (default 7)")
    k.add_argument("--peers", default="torch,torchscript,jax", help="comma-separated peers (default torch,torchscript,jax)")
    k.add_argument("--out", default="bench", metavar="DIR", help="where results.json and results.md go (default bench/)")
    k.add_argument("--pause", type=_nonnegative_float, default=0.2, help="seconds of rest before each timed run, so spinning BLAS threads park (default 0.2)")
    k.add_argument("--memory", default="S2", metavar="SIZES", help="sizes at which to measure peak memory against PyTorch, each in a fresh process (default S2; '' for none)")
    k.add_argument("--max-others", type=_nonnegative_float, default=3.0, metavar="PCT", help="run a round again when other guests of the host (steal) or other processes took more than PCT%% of the CPUs' time during it (default 3)")
    k.add_argument("--patience", type=_nonnegative_float, default=900.0, metavar="S", help="the most seconds to wait in all for quiet CPUs before keeping rounds as they come (default 900)")
    k.add_argument("--scaling", action="store_true", help="also time cells with a PyTorch twin against T and H, and plot scaling.png")
    k.add_argument("--interop", action="store_true", help="instead of the main table: variable lengths, cellspec.torch and cellspec.jax against the raw cell (interop.md)")
    k.add_argument("--trainer", action="store_true", help="instead of the main table: cellspec train's step against its cell's forward+backward (trainer.md)")
    k.add_argument("--profile", action="store_true", help="instead of the main table: each cell's forward+backward by phase, on one thread (profile.md)")
    k.set_defaults(run=cmd_bench)
    from .train.cli import add_parser as add_train

    add_train(sub)
    from .compare.cli import add_parser as add_compare

    add_compare(sub)
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        # a closed pipe shows at the flush: inside the try, not at the interpreter's exit
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`cellspec build ... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
