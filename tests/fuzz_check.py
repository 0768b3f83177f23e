"""Runs a fuzz program (fuzz_program.py) on the LLVM backend and on the eager interpreter
and compares what they compute; as a script, fuzzes until told to stop and reports every
mismatch instead of the first one:

    PYTHONPATH=src python tests/fuzz_check.py --examples 5000 [--seed 1] [--report out.txt]
                                              [--sweeps 20] [--large]

Each program is compiled once per backend and run three times, with placeholders of each
kind of values (fuzz_program.VALUE_KINDS: ordinary; NaN, infinities, signed zeros, integer
extremes; any magnitude). Comparison rules:
  - the same dtype and shape, and the same error when the eager run raises one (an error
    that is not a TF1 op error, on either side, is a crash);
  - integers, bools and strings: equal;
  - floats: NaN at the same places; chains of exactly rounded ops (fuzz_ops.EXACT) equal;
    others the same infinities and, where finite, |llvm - eager| <= 32 * depth * eps *
    (|eager| + M * work): M is the largest finite magnitude the chain computed (in the eager
    run), depth the ops on the way, work its longest sum (reduction or contraction), eps that
    of the least precise inexact op on the way, so the tolerance allows a few ulps per op and
    the reassociation of long sums. Where a sum or product of the chain could overflow part
    way (from its inputs' magnitudes), in another order it may overflow differently: there
    only elements finite on both sides count.
    A value outside the tolerance gets a second opinion (fuzz_envelope.py): the chain rerun
    with its inexact ops' results moved by a few ulps says what rounding alone explains.
    Gradients of chains with sums are not compared for values of any magnitude: the rounding
    of the backward pass's own sums is not bounded by anything the forward values tell; nor
    is NaN against an infinity in a gradient (0 * inf or tiny * inf, by rounding).
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

import flowjit as tf
from flowjit import errors
from flowjit.config import config as flowjit_config

from fuzz_chains import random_program, sweep_programs
from fuzz_envelope import Envelope, envelope, uses_state
from fuzz_program import (DIMS, LARGE_DIMS, VALUE_KINDS, BuildError, Chooser, Program, Var,
                          value_kind)

RUNS = len(VALUE_KINDS)  # per compile: one per kind of values


class Mismatch(AssertionError):
    """The backends disagree; the message ends with a script that reproduces it."""


def _run(sess: tf.Session, fetches: Sequence[Var], feed
         ) -> Tuple[Optional[list], Optional[BaseException]]:
    try:
        return [np.asarray(v) for v in sess.run([v.tensor for v in fetches], feed)], None
    except Exception as e:  # compared with the other backend's outcome
        return None, e


def _describe_error(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)[-3:]
    where = "; ".join(f"{f.filename.split('/src/')[-1]}:{f.lineno} {f.name}" for f in frames)
    return f"{type(e).__name__}: {str(e)[:300]} (at {where})"


def _op_error(e: BaseException) -> bool:
    """A TF1 error a run may legitimately raise (bad values), as opposed to a crash."""
    return isinstance(e, errors.OpError) and not isinstance(e, errors.InternalError)


def compare_errors(ref: Optional[BaseException], got: Optional[BaseException]) -> Optional[str]:
    if ref is None and got is None:
        return None
    if ref is not None and not _op_error(ref):
        return f"the eager backend crashed: {_describe_error(ref)}"
    if ref is None:
        return f"LLVM raised where eager computed values: {_describe_error(got)}"
    if got is None:
        return f"LLVM computed values where eager raised {_describe_error(ref)}"
    if type(ref) is not type(got):
        return f"eager raised {_describe_error(ref)}\nbut LLVM raised {_describe_error(got)}"
    return None


def compare_values(var: Var, ref: np.ndarray, got: np.ndarray, magnitude: float,
                   overflows: bool = False, wide: bool = False,
                   explain: Optional[Callable[[Var], Optional[tuple]]] = None) -> Optional[str]:
    """Why `got` (LLVM) is not what `ref` (eager) allows, or None. `explain(var)`, asked only
    about an inexact float value that misses the tolerance, may give the spread of results
    that rounding alone explains (fuzz_envelope.py). `wide`: the leaves had values of any
    magnitude."""
    if ref.dtype != got.dtype or ref.shape != got.shape:
        return (f"{var}: eager gave {ref.dtype}{list(ref.shape)}, LLVM "
                f"{got.dtype}{list(got.shape)}")
    if wide and var.op_type == "Gradients" and var.work > 1:
        return None  # the backward pass's own sums cancel unboundedly: nothing to compare
    if ref.dtype.kind != "f":
        bad = ref != got
        rule = "equal"
    else:
        nan_ref, nan_got = np.isnan(ref), np.isnan(got)
        bad = nan_ref != nan_got
        if var.exact:
            bad |= ~nan_ref & ~nan_got & (ref != got)
            rule = "equal (exactly rounded ops)"
        else:
            finite = np.isfinite(ref) & np.isfinite(got)
            if overflows:
                bad &= finite  # sums may overflow, and differently in another order
            else:
                bad |= (np.isinf(ref) | np.isinf(got)) & (ref != got)
            if var.op_type == "Gradients":  # 0 * inf or tiny * inf in the backward pass
                bad &= ~((np.isinf(ref) & nan_got) | (nan_ref & np.isinf(got)))
            scale = 32 * max(var.depth, 1) * max(var.eps, float(np.finfo(ref.dtype).eps))
            tolerance = scale * (np.abs(ref.astype(np.float64)) + magnitude * max(var.work, 1))
            error = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            bad |= finite & (error > tolerance)
            rule = (f"within 32 * depth {var.depth} * eps {var.eps:.3g} * (|eager| + M "
                    f"{magnitude:.3g} * work {var.work})")
            spread = explain(var) if explain is not None and bad.any() else None
            if spread is not None:
                lo, hi, unstable = spread
                with np.errstate(invalid="ignore"):
                    inside = (got >= lo - tolerance) & (got <= hi + tolerance)
                bad &= ~(unstable | inside)
                rule += ", or within what rounding alone explains"
    bad = np.asarray(bad)
    if not bad.any():
        return None
    where = [tuple(int(i) for i in index) for index in np.argwhere(bad)[:6]]
    ref_at = [ref[i] if ref.ndim else ref[()] for i in where]
    got_at = [got[i] if got.ndim else got[()] for i in where]
    lines = [f"{var} ({ref.dtype}{list(ref.shape)}): {int(bad.sum())} of {ref.size} elements "
             f"differ; expected {rule}"]
    lines += [f"  at {i}: eager {r!r}, llvm {g!r}" for i, r, g in zip(where, ref_at, got_at)]
    return "\n".join(lines)


def _finite_max(value: Optional[np.ndarray]) -> float:
    if value is None or value.dtype.kind != "f":
        return 0.0
    finite = np.abs(value[np.isfinite(value)].astype(np.float64))
    return float(finite.max()) if finite.size else 0.0


def chains_that_may_overflow(values: Dict[str, np.ndarray], prog: Program) -> Set[int]:
    """The chains with a sum or product whose terms could overflow part way, and so differ
    in another order (inf - inf, inf * 0): from the magnitudes of its inputs, or, without
    the intermediate values, from the largest value of the chain."""
    chains = set()
    magnitudes = chain_magnitudes(values, prog)
    for var in prog.vars:
        value = values.get(var.name)
        if not var.rounds or value is None or value.dtype.kind != "f":
            continue
        largest = float(np.finfo(value.dtype).max)
        inputs = [_finite_max(values.get(name)) for name in var.inputs]
        if len(inputs) != len(var.inputs) or any(n not in values for n in var.inputs):
            inputs = [magnitudes[var.chain]] * len(var.inputs)
        n = max(var.own_work, 1)
        if var.op_type == "Prod":
            big = np.log(max(inputs + [1.0])) * n >= np.log(largest)
        elif var.op_type == "MatMul":
            big = n * inputs[0] * inputs[1] >= largest
        else:
            big = n * max(inputs + [0.0]) >= largest
        if big:
            chains.add(var.chain)
    return chains


def chain_magnitudes(values: Dict[str, np.ndarray], prog: Program) -> Dict[int, float]:
    """Per chain, the largest finite magnitude among its float values."""
    largest: Dict[int, float] = collections.defaultdict(float)
    for var in prog.vars:
        value = values.get(var.name)
        if value is None or value.dtype.kind != "f" or not value.size:
            continue
        finite = np.abs(value[np.isfinite(value)].astype(np.float64))
        if finite.size:
            largest[var.chain] = max(largest[var.chain], float(finite.max()))
    return largest


def _fetchable(var: Var, prog: Program) -> bool:
    """Values the eager run also fetches to bound errors: numbers, not variables (a read
    next to an assignment in the same run has no defined order)."""
    kinds = {leaf.var.name: leaf.kind for leaf in prog.leaves}
    return (var.tensor is not None and hasattr(var.tensor, "op") and var.static
            and kinds.get(var.name) != "variable" and var.dtype.is_numeric)


def check_program(prog: Program, runs: int = RUNS) -> None:
    """Raises Mismatch if the LLVM backend does not compute what the eager one does; its
    repro has only the chain that fails alone, if one does."""
    problem = find_problem(prog, runs)
    if problem is None:
        return
    chains = sorted({v.chain for v in prog.outputs})
    if len(chains) > 1:
        for chain in [problem[2]] + chains if problem[2] is not None else chains:
            alone = prog.only([chain])
            isolated = find_problem(alone, runs)
            if isolated is not None:
                prog, problem = alone, isolated
                break
    message, run, _ = problem
    fetched = prog.outputs + prog.gradients
    raise Mismatch(f"run {run} ({value_kind(run)} values): {message}\n\nrepro:\n"
                   f"{prog.repro(run, fetched)}")


def find_problem(prog: Program, runs: int, intermediates: bool = True
                 ) -> Optional[Tuple[str, int, Optional[int]]]:
    """(what differs, in which run, in which chain if known), or None. The eager run also
    fetches the `intermediates`, to bound rounding errors by their magnitudes."""
    fetched = prog.outputs + prog.gradients
    extra = [v for v in prog.vars if v not in fetched and _fetchable(v, prog)] \
        if intermediates else []
    stateful = any(uses_state(v.op_type) for v in prog.vars
                   if v.op_type and v.op_type != "Gradients")
    init = prog.initializer_line()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tf.Session(graph=prog.graph, backend="eager") as eager, \
                tf.Session(graph=prog.graph, backend="llvm") as native:
            if init:
                with prog.graph.as_default():
                    init_op = eval(init, prog.namespace)
                for sess in (eager, native):
                    sess.run(init_op)
            returned = []  # (array, a copy): later runs must not write into earlier results
            for run in range(runs):
                feed = prog.feed(run)
                kept = extra
                ref, ref_error = _run(eager, fetched + kept, feed)
                if ref_error is not None and kept:  # maybe from a value no fetch needs
                    if stateful:  # (a second run would move random ops and variables on)
                        return find_problem(prog, runs, intermediates=False)
                    kept = []
                    ref, ref_error = _run(eager, fetched, feed)
                got, got_error = _run(native, fetched, feed)
                returned += [(v, g, g.copy()) for v, g in zip(fetched, got or [])]
                problem = compare_errors(ref_error, got_error)
                if problem is None and ref is None and not prog.allow_errors:
                    problem = f"both backends raised {_describe_error(ref_error)}"
                if problem is not None:
                    return problem, run, None
                if ref is None:
                    continue  # (both raised the same error)
                values = {v.name: r for v, r in zip(fetched + kept, ref)}
                magnitudes = chain_magnitudes(values, prog)
                overflowing = chains_that_may_overflow(values, prog)
                explain = _explainer(prog, run, values, fetched) if kept else None
                for var, r, g in zip(fetched, ref, got):
                    problem = compare_values(var, r, g, magnitudes[var.chain],
                                             var.chain in overflowing,
                                             value_kind(run) == "wide", explain)
                    if problem is not None:
                        return problem, run, var.chain
            for var, array, copy in returned:
                if not np.array_equal(array, copy, equal_nan=array.dtype.kind == "f"):
                    return (f"{var}: a later run changed the array an earlier run returned",
                            runs - 1, var.chain)
    return None


def _explainer(prog: Program, run: int, values: Dict[str, np.ndarray], fetched: List[Var]):
    """explain(var) for compare_values: the rounding envelope of var's chain, computed once
    per chain and run."""
    envelopes: Dict[int, Optional[Envelope]] = {}

    def explain(var: Var) -> Optional[tuple]:
        if var.chain not in envelopes:
            names = [v.name for v in fetched if v.chain == var.chain and v.dtype.is_floating]
            envelopes[var.chain] = envelope(prog, var.chain, run, values, names)
        spread = envelopes[var.chain]
        return None if spread is None else spread.get(var.name)
    return explain


# -- the command-line fuzzer ----------------------------------------------------------------------
def fuzz(examples: int, seed: int, large: bool, sweeps: int, report) -> int:
    """Checks `sweeps` sweeps of every op (fuzz_chains.sweep_programs), then `examples`
    random programs (`large`: with dimensions past 40, up to 200000 elements); writes each
    failure (with its repro) to `report`; returns how many failed."""
    dims, max_elements = (LARGE_DIMS, 200000) if large else (DIMS, 2048)
    started = time.time()
    failures: Dict[str, List[str]] = collections.defaultdict(list)
    op_counts: collections.Counter = collections.Counter()
    dtype_counts: collections.Counter = collections.Counter()

    def check(example: str, build: Callable[[], List[Program]]) -> None:
        try:
            for prog in build():
                op_counts.update(op.type for op in prog.graph.get_operations())
                dtype_counts.update(v.dtype.name for v in prog.vars if v.tensor is not None)
                check_program(prog)
        except (Mismatch, BuildError) as e:
            text = str(e)
        except Exception as e:  # the checker itself broke: report, go on
            text = f"checker crashed: {_describe_error(e)}"
        else:
            return
        signature = text.splitlines()[0][:160]
        failures[signature].append(example)
        report.write(f"=== {example}: {signature}\n{text}\n\n")
        report.flush()

    for turn in range(seed * sweeps, seed * sweeps + sweeps):
        check(f"sweep {turn}", lambda: [prog for prog, _ in sweep_programs(turn)])
        print(f"sweep {turn}, {sum(map(len, failures.values()))} failures, "
              f"{time.time() - started:.0f} s", file=sys.stderr, flush=True)
    for i in range(examples):
        check(f"example {seed}:{i}", lambda: [random_program(
            Chooser(random.Random(f"{seed}:{i}"), dims), max_elements)])
        if (i + 1) % 100 == 0:
            print(f"{i + 1} examples, {sum(map(len, failures.values()))} failures, "
                  f"{time.time() - started:.0f} s", file=sys.stderr, flush=True)
    print(f"\n{sweeps} sweeps and {examples} examples in {time.time() - started:.0f} s; "
          f"{len(op_counts)} op types, dtypes {dict(dtype_counts)}", file=sys.stderr)
    print(f"op counts: {dict(sorted(op_counts.items()))}", file=sys.stderr)
    for signature, where in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(where):5d} x {signature} (first: {where[0]})", file=sys.stderr)
    return sum(map(len, failures.values()))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweeps", type=int, default=0,
                        help="sweeps of every op first (each takes its dtypes in turn)")
    parser.add_argument("--large", action="store_true",
                        help="dimensions past the tiles too (up to 300), tensors up to 200000 "
                             "elements: GEMM blocking, kernels split across cores")
    parser.add_argument("--report", default="-", help="where failures go (default: stdout)")
    args = parser.parse_args(argv)
    flowjit_config.verify_ir = True  # as in the tests: the IR is verified after every pass
    report = sys.stdout if args.report == "-" else open(args.report, "w")
    failed = fuzz(args.examples, args.seed, args.large, args.sweeps, report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
