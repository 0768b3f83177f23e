"""A second opinion on a float mismatch: can rounding alone explain it?

Near a singularity a few ulps upstream become many downstream (log1p(tanh(x)) near
tanh(x) = -1), and a gradient through max(x, y) flips where x and y are within rounding of
each other. No fixed tolerance tells those from bugs, so when a value misses the tolerance,
the chain is run again on the eager backend with the result of every op that rounds
differently elsewhere (fuzz_ops.EXACT) moved by up to ULPS ulps of its error bound, in
TRIALS draws; the LLVM value is explained if it lies within the spread of those results
(plus the tolerance), or where some draw gives NaN (or infinity, and others not), or where
the draws differ by more than a quarter of their magnitude (no digit of the result is
meaningful there).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

import flowjit as tf
from flowjit.graph.registry import OP_DEFS

from fuzz_program import Program, Var

TRIALS = 10  # all up, all down, then each result anywhere in its bound
ULPS = 8     # an op's error bound, in units of its rounding error

Envelope = Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]  # name -> lo, hi, unstable


def rounding_bound(var: Var, values: Dict[str, np.ndarray]) -> np.ndarray:
    """How far another backend's result of `var`'s op may be from the eager one: a few ulps,
    plus for sums the reassociation of `own_work` terms of the inputs' magnitude."""
    y = values[var.name].astype(np.float64)
    eps = float(np.finfo(values[var.name].dtype).eps)
    magnitudes = []
    for name in var.inputs:
        x = values.get(name)
        finite = np.abs(x[np.isfinite(x)]).astype(np.float64) if x is not None and \
            x.dtype.kind == "f" else np.zeros(0)
        magnitudes.append(float(finite.max()) if finite.size else 0.0)
    scale = np.abs(y)
    if var.op_type == "Prod":
        scale = scale * var.own_work
    elif var.op_type == "MatMul":
        scale = scale + var.own_work * magnitudes[0] * magnitudes[1]
    elif var.own_work:
        scale = scale + var.own_work * max(magnitudes or [0.0])
    with np.errstate(over="ignore", invalid="ignore"):
        bound = np.minimum(ULPS * eps * scale, float(np.finfo(values[var.name].dtype).max))
    return np.where(np.isfinite(y), np.nan_to_num(bound, nan=0.0), 0.0)


def uses_state(op_type: str) -> bool:
    """Whether the op reads or changes the Session's state (random ops, variables): a rerun
    in a new Session would not see what the compared run saw."""
    op_def = OP_DEFS[op_type]
    return op_def.uses_rng or op_def.assigns_variable or op_def.kernel is None


def _defined(line: str) -> List[str]:
    return [n.strip() for n in line.split("=")[0].split(",") if n.strip()]


def envelope(prog: Program, chain: int, run: int, values: Dict[str, np.ndarray],
             names: List[str]) -> Optional[Envelope]:
    """Per name in `names`, the least and greatest eager results over the draws (and where
    some draw gave NaN), or None if the chain cannot be rerun (it has state or random ops,
    or the eager run did not keep its intermediate values)."""
    members = [v for v in prog.vars if v.chain == chain]
    if any(uses_state(v.op_type) for v in members if v.op_type and v.op_type != "Gradients"):
        return None
    by_name = {v.name: v for v in members}
    sub = Program(prog.seed)
    sub.values.update(prog.values)
    noises = []
    for line, line_chain in zip(prog.lines, prog.line_chains):
        if line_chain != chain:
            continue
        sub.run_line(line)
        for name in _defined(line):
            var = by_name.get(name)
            if var is None or not var.rounds or not var.dtype.is_floating or not var.static:
                continue
            if name not in values:
                return None
            bound = rounding_bound(var, values)
            if bound.size and bound.max() >= np.finfo(var.dtype.np_dtype).max:
                return _anything(names, values)  # the error bound itself overflows
            sub.run_line(f"noise_{name} = tf.placeholder(tf.{var.dtype.name}, "
                         f"{list(var.shape)}); {name} = {name} + noise_{name}")
            noises.append((sub.namespace[f"noise_{name}"], bound))
    feed = {sub.namespace[leaf.var.name]: prog.feed_value(leaf, run)
            for leaf in prog.leaves if leaf.kind == "placeholder" and leaf.var.chain == chain}
    fetches = [sub.namespace[name] for name in names]
    results = []
    with np.errstate(all="ignore"), tf.Session(graph=sub.graph, backend="eager") as sess:
        for trial in range(TRIALS):
            rng = np.random.default_rng(trial)
            for tensor, bound in noises:
                share = 1.0 if trial == 0 else -1.0 if trial == 1 else \
                    rng.uniform(-1.0, 1.0, bound.shape)
                feed[tensor] = (share * bound).astype(tensor.dtype.np_dtype)
            results.append([np.asarray(r, np.float64) for r in sess.run(fetches, feed)])
    spread = {}
    for i, name in enumerate(names):
        draws = np.stack([r[i] for r in results] + [values[name].astype(np.float64)])
        with np.errstate(invalid="ignore"):
            lo, hi = draws.min(axis=0), draws.max(axis=0)
            # Where rounding alone moves a result by a quarter of itself (sin of a huge
            # number), the draws only sample the possible results: no digit is meaningful.
            chaotic = hi - lo > 0.25 * np.maximum(np.abs(lo), np.abs(hi))
            singular = np.isinf(draws).any(axis=0) & (lo != hi)  # (1 / (1 + tanh) near -1)
            spread[name] = (lo, hi, np.isnan(draws).any(axis=0) | chaotic | singular)
    return spread


def _anything(names: List[str], values: Dict[str, np.ndarray]) -> Envelope:
    return {name: (values[name], values[name], np.ones(values[name].shape, bool))
            for name in names}
