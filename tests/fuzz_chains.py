"""Chains of random ops, and whole fuzz programs (fuzz_program.py) built from them.

Every elementwise op without a generator of its own gets the generic one here. Which dtypes
an op's generator takes is probed once, by building it on placeholders of each dtype.
"""
from __future__ import annotations

import functools
import random
import zlib
from typing import FrozenSet, List, Optional, Tuple

from flowjit import dtypes, errors
from flowjit.graph.registry import OP_DEFS

import fuzz_ops_array  # noqa: F401 - registers the array and indexing generators
import fuzz_ops_nn  # noqa: F401 - registers the convolution, pooling and ranking generators
from fuzz_ops import DISCONTINUOUS, GENERATORS, Generator, elementwise, weight
from fuzz_program import LEAF_DTYPES, BuildError, Chooser, Program, Var

for _op_type, _op_def in OP_DEFS.items():
    if _op_def.elementwise and _op_type not in GENERATORS:
        GENERATORS[_op_type] = Generator(_op_type, elementwise)

PROBE_SHAPES = ((2, 3), (3,), (2, 3, 4), (), (1, 3))


@functools.lru_cache(maxsize=None)
def accepted_dtypes(op_type: str) -> FrozenSet[dtypes.DType]:
    """The dtypes of `x` the op's generator builds with (on some shape); a dtype is out as
    soon as building raises a dtype error."""
    generator = GENERATORS[op_type]
    if generator.source:
        return frozenset(dtypes.ALL_DTYPES)
    accepted = set()
    for dtype in dtypes.ALL_DTYPES:
        for seed, shape in enumerate(PROBE_SHAPES * 2):
            prog = Program(seed, allow_errors=False)
            ch = Chooser(random.Random(seed))
            try:
                x = prog.leaf(ch, dtype, shape, kind="placeholder")
                if generator(ch, prog, x) is not None:
                    accepted.add(dtype)
                    break
            except BuildError as e:
                if isinstance(e.__cause__, TypeError):
                    break
                if not isinstance(e.__cause__, (ValueError, errors.OpError, LookupError)):
                    raise
    return frozenset(accepted)


def candidates(x: Var) -> List[str]:
    """Op types (repeated by weight) that may follow `x` in a chain."""
    names = []
    for op_type, generator in sorted(GENERATORS.items()):
        if generator.source or x.dtype not in accepted_dtypes(op_type):
            continue
        if x.dtype.is_floating and not x.exact and op_type in DISCONTINUOUS:
            continue
        names += [op_type] * weight(op_type)
    return names


def start_chain(ch: Chooser, prog: Program, first: Optional[str], turn: int = 0) -> Var:
    """The first value of a chain: `first` applied to a new leaf (of its `turn`-th dtype, in
    a fixed order per op) or made from nothing; else a leaf, or now and then a source op."""
    if first is None:
        sources = sorted(t for t, g in GENERATORS.items() if g.source)
        if ch.chance(12):
            return GENERATORS[ch.choice(sources)](ch, prog, None)
        if ch.chance(25):  # a matrix: for matmuls and their epilogues
            return prog.leaf(ch, ch.choice((dtypes.float32, dtypes.float64)),
                             (ch.dim(4), ch.dim(4)))
        return prog.leaf(ch, ch.choice(LEAF_DTYPES), ch.shape(prog.max_elements))
    generator = GENERATORS[first]
    if generator.source:
        return generator(ch, prog, None)
    accepted = sorted(accepted_dtypes(first), key=lambda d: d.name)
    if not accepted:
        raise AssertionError(f"the generator of {first} builds with no dtype")
    dtype = accepted[(turn + zlib.crc32(first.encode())) % len(accepted)]
    for attempt in range(20):
        shape = ch.shape(prog.max_elements)
        if attempt >= 10:  # (some ops need a dimension of 1, or a matrix)
            shape = tuple(1 if ch.chance(50) else d for d in ch.shape(prog.max_elements,
                                                                     ch.choice((2, 1, 3))))
        x = prog.leaf(ch, dtype, shape)
        y = generator(ch, prog, x)
        if y is not None:
            return y
    raise AssertionError(f"the generator of {first} never applied to {dtype.name} leaves")


def grow_chain(ch: Chooser, prog: Program, steps: int, first: Optional[str] = None,
               turn: int = 0) -> Var:
    """A chain of up to `steps` ops, each applied to the previous value (the first to a new
    leaf, unless it makes a value from nothing)."""
    x = start_chain(ch, prog, first, turn)
    for _ in range(steps - (x.depth > 0)):
        if not x.static or x.dtype is dtypes.string:  # (after where, report_uninitialized)
            break
        options = candidates(x)
        for _ in range(6):
            if not options:
                break
            op_type = ch.choice(options)
            y = GENERATORS[op_type](ch, prog, x)
            if y is not None:
                x = y
                break
            options = [o for o in options if o != op_type]
    return x


def random_program(ch: Chooser, max_elements: int = 2048) -> Program:
    """One to three chains of one to four ops, most of them also differentiated; now and
    then a value inside a chain is fetched too (so it leaves its fusion, or its segment)."""
    prog = Program(ch.integer(0, 2 ** 31), max_elements=max_elements)
    for chain in range(ch.integer(1, 3)):
        prog.chain = chain
        out = grow_chain(ch, prog, ch.integer(1, 4))
        inside = [v for v in prog.vars if v.chain == chain and v.depth and v is not out
                  and v.static and v.tensor is not None and hasattr(v.tensor, "op")]
        if inside and ch.chance(25):
            prog.outputs.append(ch.choice(inside))
        prog.outputs.append(out)
        if ch.chance(70):
            prog.add_gradients(out)
    return prog


def sweep_chain(prog: Program, op_type: str, seed: int) -> None:
    """A chain that starts with `op_type`, then zero to two random ops; successive seeds
    start it with each dtype it takes in turn."""
    ch = Chooser(random.Random(f"{seed}:{op_type}"))
    out = grow_chain(ch, prog, ch.integer(1, 3), first=op_type, turn=seed)
    prog.outputs.append(out)
    prog.add_gradients(out)


def sweep_programs(seed: int, per_program: int = 12) -> List[Tuple[Program, List[str]]]:
    """Programs with one chain per generated op type (`per_program` chains each), so every
    op is checked, with many checks per compile. No run of them raises."""
    op_types = sorted(GENERATORS)
    programs = []
    for start in range(0, len(op_types), per_program):
        group = op_types[start:start + per_program]
        prog = Program(seed, allow_errors=False)
        for chain, op_type in enumerate(group):
            prog.chain = chain
            sweep_chain(prog, op_type, seed)
        programs.append((prog, group))
    return programs
