"""Fuzz programs: random flowjit graphs kept as the Python source that builds them.

A `Program` is built one line at a time (`t3 = tf.pad(t2, [[1, 0]], mode='REFLECT')`); each
line is executed as it is emitted, so the graph and its source never disagree and a failing
example prints as a script that rebuilds it (`Program.repro`). Leaves are placeholders (fed
fresh values on every run), constants or variables; their values come from `leaf_values`, a
pure function of the program's seed, so a repro can regenerate arrays too big to print.

The decisions (which op, which shape) come from a `Chooser`: hypothesis' `st.randoms()` in
the tests, so failing examples shrink towards short chains of size-1 dimensions, or a seeded
`random.Random` in the command-line fuzzer (fuzz_check.py).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

import flowjit as tf
from flowjit import dtypes
from flowjit.graph.registry import OP_DEFS
from flowjit.ops import random as random_ops
from flowjit.ops.base import apply_op

# Dimensions that cross the boundaries of the code generator's tiles: 8-row GEMM micro-tiles,
# 16-lane AVX-512 vectors (8 for float64), and the ragged edges either side of them.
DIMS = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40)
# Past them (fuzz_check.py --large): several GEMM blocks, kernels split across cores.
LARGE_DIMS = DIMS + (64, 100, 127, 128, 129, 257, 300)
# Leaf dtypes; float32 (the common case, and the most generated code) is drawn more often.
LEAF_DTYPES = (dtypes.float32, dtypes.float64, dtypes.int32, dtypes.float32, dtypes.bool_,
               dtypes.uint8, dtypes.int64, dtypes.float16, dtypes.int8, dtypes.int16,
               dtypes.float32)
# Values that find edge cases: NaN, infinities, signed zeros, ties for rounding, exp's
# overflow threshold (88.7 in float32) on either side, numbers far out of tanh's range, and
# numbers beyond the signed ranges of the integer types a cast may convert them to.
SPECIAL_FLOATS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.5, -2.5, 3.0,
                  88.5, -88.5, 89.0, -104.0, 1e4, -1e4, 200.0, -129.0, 40000.0, 3e9, -1e19)


class Chooser:
    """The random decisions of a generator. Every choice shrinks towards its first option
    (or its lowest integer), so minimal examples are simple ones."""

    def __init__(self, rng: random.Random, dims: Sequence[int] = DIMS) -> None:
        self.rng = rng
        self.dims = dims

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[Any]) -> Any:
        return options[self.rng.randint(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.rng.randint(0, 99) >= 100 - percent

    def shuffled(self, items: Sequence[Any]) -> List[Any]:
        items = list(items)
        for i in range(len(items) - 1, 0, -1):
            j = self.integer(0, i)
            items[i], items[j] = items[j], items[i]
        return items

    def dim(self, zero_percent: int = 6, upto: Optional[int] = None) -> int:
        if self.chance(zero_percent):
            return 0
        return self.choice([d for d in self.dims if upto is None or d <= upto])

    def shape(self, max_elements: int, rank: Optional[int] = None) -> Tuple[int, ...]:
        if rank is None:
            rank = self.choice((1, 2, 0, 3, 2, 1, 4))
        return fit(tuple(self.dim() for _ in range(rank)), max_elements)


def fit(shape: Sequence[int], max_elements: int) -> Tuple[int, ...]:
    """`shape` with its largest dimensions shrunk until it has at most `max_elements`."""
    dims = list(shape)
    while int(np.prod(dims, dtype=np.int64)) > max_elements:
        i = int(np.argmax(dims))
        dims[i] = max([d for d in LARGE_DIMS if d <= dims[i] // 2] or [1])
    return tuple(dims)


@dataclass(frozen=True)
class Domain:
    """Which values a leaf takes: any of its dtype, nonzero (integer divisors), small
    non-negative exponents (integer pow), or indices in [0, bound) (`bad`: some outside)."""

    kind: str = "any"
    bound: int = 0
    bad: bool = False


ANY = Domain()


# The kinds of values a placeholder takes, one per run of a compiled program: ordinary ones,
# special ones (NaN, infinities, signed zeros, ties; integer extremes), and wide ones (floats
# of any magnitude, integers of any value of their dtype).
VALUE_KINDS = ("ordinary", "special", "wide")


def leaf_values(dtype: Union[str, dtypes.DType], shape: Sequence[int], domain: Domain,
                seed: Sequence[int], kind: str) -> np.ndarray:
    """The values of a leaf (of a kind in VALUE_KINDS): a pure function of its arguments."""
    np_dtype = dtypes.as_dtype(dtype).np_dtype
    rng = np.random.default_rng(list(seed))
    n = int(np.prod(shape, dtype=np.int64))
    if domain.kind == "index":
        lo, hi = (-2, domain.bound + 2) if domain.bad else (0, domain.bound)
        values = rng.integers(lo, max(hi, lo + 1), n)
    elif domain.kind == "exponent":
        values = rng.integers(0, 4, n)
    elif np_dtype.kind == "b":
        values = rng.random(n) < 0.5
    elif np_dtype.kind == "f":
        values = _float_values(rng, n, np_dtype, kind)
    else:
        values = _int_values(rng, n, np_dtype, kind)
        if domain.kind == "nonzero":
            values[values == 0] = 1
    with np.errstate(over="ignore"):  # (1e4 in float16 is inf: so be it)
        return np.array(values.tolist() if values.dtype == object else values,
                        dtype=np_dtype).reshape(tuple(shape))


def _float_values(rng: np.random.Generator, n: int, np_dtype: np.dtype, kind: str):
    if kind == "wide":
        exponents = np.where(rng.random(n) < 0.15, rng.uniform(-45, 38, n),
                             rng.uniform(-4, 4, n))
        return np.where(rng.random(n) < 0.5, -1, 1) * 10.0 ** exponents
    values = rng.standard_normal(n) * 2 if rng.random() < 0.5 else \
        rng.integers(-8, 9, n) / 2  # halves: ties for round, equal operands
    if kind == "special":
        tiny = float(np.finfo(np_dtype).tiny) / 4  # a subnormal
        mask = rng.random(n) < 0.3
        values[mask] = rng.choice(SPECIAL_FLOATS + (tiny, -tiny), int(mask.sum()))
    return values


def _int_values(rng: np.random.Generator, n: int, np_dtype: np.dtype, kind: str):
    info = np.iinfo(np_dtype)
    if kind == "wide":
        return rng.integers(int(info.min), int(info.max), n, dtype=np_dtype, endpoint=True)
    values = rng.integers(max(int(info.min), -6), min(int(info.max), 6) + 1, n)
    if kind == "special":
        mask = rng.random(n) < 0.4
        extremes = [int(info.min), int(info.max), int(info.max) // 2 + 1, 0, 1]
        values = values.astype(object)  # (int64 extremes overflow other arrays)
        values[mask] = [int(v) for v in rng.choice(extremes, int(mask.sum()))]
    return values


@dataclass
class Var:
    """A value of the program: its name in the source and what the fuzzer knows about it."""

    name: str
    tensor: Any             # a Tensor, or a Variable
    chain: int              # which chain of the program computed it
    constant: bool          # computed from constants only: folded before code generation
    exact: bool             # correctly rounded by every backend (see fuzz_ops.EXACT)
    depth: int              # ops on its longest path from a leaf
    work: int               # the longest sum (reduction or contraction) on that path
    differentiable: bool = True  # every op on the way has a working gradient rule
    eps: float = 0.0        # the machine epsilon of the least precise inexact op on the way
    op_type: str = ""       # the op that made it ("" for a leaf)
    inputs: Tuple[str, ...] = ()  # the Vars it was made from
    rounds: bool = False    # its op may round differently on another backend (not EXACT)
    own_work: int = 0       # the length of the op's own sums

    @property
    def dtype(self) -> dtypes.DType:
        return self.tensor.dtype

    @property
    def shape(self) -> Tuple[Optional[int], ...]:
        return tuple(self.tensor.shape.dims)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def static(self) -> bool:
        return None not in self.shape

    def __str__(self) -> str:
        return self.name


@dataclass
class Leaf:
    var: Var
    kind: str               # "placeholder", "constant" or "variable"
    domain: Domain
    index: int
    values: str = "ordinary"  # (constants and variables: the kind of their values)
    layout: str = "C"       # (placeholders: the fed arrays' layout, see LAYOUTS)


# How a placeholder's values are laid out in memory when fed: the Session must cope with
# arrays that are not C-contiguous.
LAYOUTS = {"C": "{}", "F": "np.asfortranarray({})",
           "strided": "np.repeat({}, 2, axis=-1)[..., ::2]"}


class BuildError(Exception):
    """A line of the program failed to build: a bug of flowjit or of a generator."""


class Program:
    """A graph under construction, with its source. `outputs` are fetched from both
    backends, `gradients` too; every other numeric Var only from the eager one (to bound
    the rounding errors of the chain that computed it)."""

    def __init__(self, seed: int, *, max_elements: int = 2048, allow_errors: bool = True) -> None:
        self.graph = tf.Graph()
        self.seed = seed
        self.max_elements = max_elements
        self.allow_errors = allow_errors  # may a run raise (e.g. out-of-range indices)?
        self.lines: List[str] = []
        self.line_chains: List[int] = []  # the chain each line belongs to
        self.namespace: Dict[str, Any] = {"tf": tf, "np": np, "apply_op": apply_op,
                                          "random_ops": random_ops, "values": {}}
        self.values: Dict[str, np.ndarray] = self.namespace["values"]
        self.leaves: List[Leaf] = []
        self.vars: List[Var] = []
        self.outputs: List[Var] = []
        self.gradients: List[Var] = []
        self.initialize: List[str] = []  # variables the program initializes before runs
        self.chain = 0

    # -- building --------------------------------------------------------------------------
    def run_line(self, line: str) -> None:
        try:
            with self.graph.as_default():
                exec(line, self.namespace)
        except Exception as e:
            text = "\n".join(self.lines + [line + "   # <- raised"])
            raise BuildError(f"{type(e).__name__}: {e}\nwhile building:\n{text}") from e
        self.lines.append(line)
        self.line_chains.append(self.chain)

    def emit(self, expr: str, inputs: Sequence[Var], op_type: str, outputs: int = 0, *,
             exact: bool = True, work: int = 0, constant: Optional[bool] = None,
             differentiable: bool = True) -> Union[Var, List[Var]]:
        """Runs `name = expr` and returns its Var (a list of `outputs` Vars if given).
        `constant`: whether it is known at compile time (default: if its inputs are)."""
        names = [f"t{len(self.vars) + i}" for i in range(max(outputs, 1))]
        target = ", ".join(names) + ("," if outputs == 1 else "")
        self.run_line(f"{target} = {expr}")
        stateful = OP_DEFS[op_type].stateful
        made = []
        for name in names:
            if constant is None:
                constant = all(v.constant for v in inputs) and not stateful
            var = Var(name, self.namespace[name], self.chain, constant=constant,
                      exact=exact and all(v.exact for v in inputs),
                      depth=1 + max([v.depth for v in inputs] or [0]),
                      work=max([work] + [v.work for v in inputs]),
                      differentiable=differentiable and all(v.differentiable for v in inputs),
                      eps=max([v.eps for v in inputs] or [0.0]), op_type=op_type,
                      inputs=tuple(v.name for v in inputs), rounds=not exact, own_work=work)
            if not exact and var.dtype.is_floating:
                var.eps = max(var.eps, float(np.finfo(var.dtype.np_dtype).eps))
            self.vars.append(var)
            made.append(var)
        return made if outputs else made[0]

    def leaf(self, ch: Chooser, dtype: dtypes.DType, shape: Sequence[int],
             domain: Domain = ANY, constant_ok: bool = True, kind: Optional[str] = None) -> Var:
        """A new input: a placeholder, or (sometimes) a constant."""
        shape = tuple(shape)
        size = int(np.prod(shape, dtype=np.int64))
        if kind is None:
            kind = "constant" if constant_ok and ch.chance(25) else "placeholder"
        name = f"t{len(self.vars)}"
        index = len(self.leaves)
        values = ch.choice(VALUE_KINDS)
        if kind == "placeholder":
            line = f"{name} = tf.placeholder(tf.{dtype.name}, {list(shape)}, name={name!r})"
        else:
            self.values[name] = leaf_values(dtype, shape, domain, (self.seed, index, 0),
                                            values)
            api = "tf.constant" if kind == "constant" else "tf.Variable"
            line = f"{name} = {api}(values[{name!r}], name={name!r})"
        self.run_line(line)
        var = Var(name, self.namespace[name], self.chain, constant=kind == "constant",
                  exact=True, depth=0, work=0)
        self.vars.append(var)
        layout = "C" if len(shape) == 0 or ch.chance(70) else ch.choice(("F", "strided"))
        self.leaves.append(Leaf(var, kind, domain, index, values, layout))
        if kind == "variable":
            self.initialize.append(name)
        return var

    def add_gradients(self, output: Var) -> List[Var]:
        """d sum(output) / d(each float placeholder of its chain), where every op on the
        way has a gradient rule; the gradients are fetched too."""
        xs = [leaf.var for leaf in self.leaves if leaf.kind == "placeholder"
              and leaf.var.chain == output.chain and leaf.var.dtype.is_floating]
        if not xs or not output.dtype.is_floating or not output.static or \
                not output.differentiable:
            return []
        names = [f"t{len(self.vars) + i}" for i in range(len(xs))]
        line = (f"{', '.join(names)}, = tf.gradients(tf.reduce_sum({output}), "
                f"[{', '.join(x.name for x in xs)}])")
        try:
            with self.graph.as_default():
                exec(line, self.namespace)
        except LookupError:  # an op on the way has no gradient rule: no backward check
            return []
        except Exception as e:
            raise BuildError(f"{type(e).__name__}: {e}\nwhile building:\n"
                             + "\n".join(self.lines + [line])) from e
        self.lines.append(line)
        self.line_chains.append(self.chain)
        made = []
        for name in names:
            tensor = self.namespace[name]
            var = Var(name, tensor, output.chain, constant=False, exact=False,
                      depth=2 * output.depth + 1, work=output.work, eps=output.eps,
                      op_type="Gradients", inputs=(output.name,))
            self.vars.append(var)
            if tensor is not None:
                made.append(var)
        self.gradients.extend(made)
        return made

    def only(self, chains: Sequence[int]) -> "Program":
        """The program rebuilt with only `chains` (leaves keep their values)."""
        sub = Program(self.seed, max_elements=self.max_elements, allow_errors=self.allow_errors)
        sub.values.update(self.values)
        for line, chain in zip(self.lines, self.line_chains):
            if chain in chains:
                sub.chain = chain
                sub.run_line(line)

        def rebuilt(var: Var) -> Var:
            return replace(var, tensor=sub.namespace[var.name])
        sub.vars = [rebuilt(v) for v in self.vars if v.chain in chains]
        sub.leaves = [replace(leaf, var=rebuilt(leaf.var)) for leaf in self.leaves
                      if leaf.var.chain in chains]
        sub.outputs = [rebuilt(v) for v in self.outputs if v.chain in chains]
        sub.gradients = [rebuilt(v) for v in self.gradients if v.chain in chains]
        sub.initialize = [name for name in self.initialize if name in sub.namespace]
        return sub

    # -- running ---------------------------------------------------------------------------
    def feed(self, run: int) -> Dict[Any, np.ndarray]:
        """The placeholders' values for run number `run` (of kind VALUE_KINDS[run % 3]), in
        their leaf's layout."""
        return {leaf.var.tensor: eval(LAYOUTS[leaf.layout].format("value"),
                                      {"np": np, "value": self.feed_value(leaf, run)})
                for leaf in self.leaves if leaf.kind == "placeholder"}

    def feed_value(self, leaf: Leaf, run: int) -> np.ndarray:
        return leaf_values(leaf.var.dtype, leaf.var.shape, leaf.domain,
                           (self.seed, leaf.index, run + 1), value_kind(run))

    def initializer_line(self) -> Optional[str]:
        if not self.initialize:
            return None
        return f"tf.variables_initializer([{', '.join(self.initialize)}])"

    def repro(self, run: int, fetches: Sequence[Var]) -> str:
        """A script that rebuilds the program and runs `fetches` on both backends, with the
        values of run number `run`."""
        used = {leaf.var.name for leaf in self.leaves
                if any(re.search(rf"\b{leaf.var.name}\b", line) for line in self.lines
                       if not line.startswith(f"{leaf.var.name} = "))}
        leaves = [leaf for leaf in self.leaves if leaf.var.name in used]
        lines = [line for line in self.lines
                 if not any(line.startswith(f"{leaf.var.name} = ") for leaf in self.leaves
                            if leaf.var.name not in used)]
        out = ["import numpy as np", "from numpy import nan, inf", "import flowjit as tf",
               "from flowjit.ops.base import apply_op",
               "from flowjit.ops import random as random_ops",
               "from fuzz_program import Domain, leaf_values  # (in flowjit's tests/)",
               "", "values = {}"]
        for leaf in leaves:
            if leaf.kind != "placeholder":
                seed = (self.seed, leaf.index, 0)
                out.append(f"values[{leaf.var.name!r}] = "
                           + _array_source(self.values[leaf.var.name], leaf, seed, leaf.values))
        out += lines
        feed = []
        for leaf in leaves:
            if leaf.kind == "placeholder":
                value = self.feed_value(leaf, run)
                source = _array_source(value, leaf, (self.seed, leaf.index, run + 1),
                                       value_kind(run))
                feed.append(f"    {leaf.var.name}: {LAYOUTS[leaf.layout].format(source)},")
        init = self.initializer_line()
        out += [f"fetches = [{', '.join(v.name for v in fetches)}]",
                "feed = {", *feed, "}"]
        if init:
            out.append(f"init = {init}")
        out += ["for backend in ('eager', 'llvm'):",
                "    with tf.Session(backend=backend) as sess:"]
        if init:
            out.append("        sess.run(init)")
        for r in range(run):
            out.append(f"        sess.run(fetches, feed)  # as run {r} (random ops and "
                       f"variables move on)")
        out.append("        print(backend, sess.run(fetches, feed))")
        return "\n".join(out)


def value_kind(run: int) -> str:
    return VALUE_KINDS[run % len(VALUE_KINDS)]


def _array_source(value: np.ndarray, leaf: Leaf, seed: Tuple[int, ...], kind: str) -> str:
    dtype = value.dtype.name
    if value.size > 64:
        return f"leaf_values({dtype!r}, {list(value.shape)}, {leaf.domain!r}, {seed}, {kind!r})"
    text = np.array2string(value.reshape(-1), separator=", ", threshold=10 ** 9,
                           max_line_width=10 ** 9, floatmode="unique")
    return f"np.array({text}, dtype=np.{dtype}).reshape({list(value.shape)})"
