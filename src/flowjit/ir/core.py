"""The IR's data structures.

A `Func` is a straight-line SSA program: `params` (each a `Value` with a role: a feed, a
variable's value at the start of the run, or a random op's run counter), a body of `Instr`s,
and `results` (fetches and the new values of assigned variables). Instructions name their op
by the mnemonic registered in the op table (`add`, `matmul`, ...), so an instruction has the
same shape rule and reference kernel as the graph op it came from. The one IR-only op is
`fusion`, whose nested `region` (a Func) is the fused computation.

The IR is pure: variable assignments were turned into values by the lowering, so passes can
move, merge and delete instructions knowing only their operands.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, Iterable, List, Optional, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.graph.registry import REGION, OpDef, TensorSpec, get_op_def_by_mnemonic, register_op
from flowjit.graph.shape import TensorShape

FUSION = "fusion"


def _no_graph_form(*operands: TensorSpec, **attrs: Any):
    raise TypeError("'fusion' is an IR-only op: its results are its region's")


# The fusion instruction is an op of the table like any other: no shape rule (its results
# are its region's), no numpy kernel (the interpreter evaluates its region), no effects.
register_op("Fusion", FUSION, _no_graph_form, None, role=REGION)


@dataclass(frozen=True)
class TensorType:
    """Element type and shape; a dim is an int or None ('?'), `shape` None is unknown rank."""

    dtype: dtypes.DType
    shape: Optional[Tuple[Optional[int], ...]]

    @staticmethod
    def from_spec(spec: TensorSpec) -> "TensorType":
        return TensorType(spec.dtype, spec.shape.dims)

    def to_spec(self, value: Optional[np.ndarray] = None) -> TensorSpec:
        return TensorSpec(self.dtype, TensorShape(self.shape), value)

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(d is not None for d in self.shape)

    @property
    def num_elements(self) -> Optional[int]:
        if not self.is_static:
            return None
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        if self.shape is None:
            return f"{self.dtype.ir_name}[*]"
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.ir_name}[{dims}]"


_ids = itertools.count()


class Value:
    """An SSA value. Identity is the object; `name` is a hint for printing."""

    __slots__ = ("type", "name", "_id")

    def __init__(self, type: TensorType, name: Optional[str] = None) -> None:
        self.type = type
        self.name = name
        self._id = next(_ids)

    def __repr__(self) -> str:
        return f"Value(%{self.name or self._id}: {self.type})"


@dataclass(frozen=True)
class Location:
    """Where an instruction came from: the user's op name, type and creation site."""

    name: str
    op_type: str = ""
    site: str = ""

    def describe(self) -> str:
        kind = f" (op: '{self.op_type}'" if self.op_type else " ("
        site = f", created at {self.site})" if self.site else ")"
        return f"'{self.name}'{kind}{site}" if (self.op_type or self.site) else f"'{self.name}'"


class Instr:
    """`results = op(operands) {attrs}`; `region` is the body of a `fusion`."""

    __slots__ = ("op", "operands", "attrs", "results", "loc", "region")

    def __init__(self, op: str, operands: List[Value], attrs: Dict[str, Any],
                 results: List[Value], loc: Optional[Location] = None,
                 region: Optional["Func"] = None) -> None:
        self.op = op
        self.operands = list(operands)
        self.attrs = dict(attrs)
        self.results = list(results)
        self.loc = loc
        self.region = region

    @property
    def op_def(self) -> OpDef:
        return get_op_def_by_mnemonic(self.op)

    @property
    def is_fusion(self) -> bool:
        return self.op == FUSION

    @property
    def result(self) -> Value:
        (value,) = self.results
        return value

    def describe(self) -> str:
        return self.loc.describe() if self.loc else f"'{self.op}'"

    def __repr__(self) -> str:
        return f"Instr({self.op}, {len(self.operands)} operands)"


# Param roles
FEED = "feed"
VARIABLE = "var"
RNG_COUNTER = "rng"
# Result roles
FETCH = "fetch"


@dataclass
class Param:
    value: Value
    role: str     # FEED, VARIABLE, RNG_COUNTER
    key: str      # the fed tensor's name, the variable's name, the random op's name


@dataclass
class Result:
    value: Value
    role: str     # FETCH, VARIABLE
    key: str      # the fetched tensor's name, the variable's name


@dataclass
class Func:
    name: str
    params: List[Param]
    body: List[Instr]
    results: List[Result]
    meta: Dict[str, Any] = field(default_factory=dict)

    # -- queries ----------------------------------------------------------------------------
    def instructions(self) -> Iterable[Instr]:
        """All instructions, including those inside fusion regions."""
        for instr in self.body:
            yield instr
            if instr.region is not None:
                yield from instr.region.instructions()

    def uses(self) -> Dict[Value, int]:
        """How many times each value is used by the body (top level) and results."""
        counts: Dict[Value, int] = {}
        for instr in self.body:
            for v in instr.operands:
                counts[v] = counts.get(v, 0) + 1
        for r in self.results:
            counts[r.value] = counts.get(r.value, 0) + 1
        return counts

    def replace(self, **changes: Any) -> "Func":
        """A shallow copy with some fields replaced (passes build new Funcs this way)."""
        fields = {"name": self.name, "params": self.params, "body": self.body,
                  "results": self.results, "meta": self.meta}
        fields.update(changes)
        return Func(**fields)

    def __str__(self) -> str:
        from flowjit.ir.printer import print_func
        return print_func(self)

    def __eq__(self, other: object) -> bool:
        """Structural equality: same text (the printer renames values canonically)."""
        if not isinstance(other, Func):
            return NotImplemented
        from flowjit.ir.printer import print_func
        return print_func(self) == print_func(other)

    __hash__ = None  # type: ignore[assignment]


def attr_key(value: Any) -> Hashable:
    """A hashable, exact key for an attribute value (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:  # (strings: the bytes, not the pointers to them)
            return ("ndarray", "object", value.shape, tuple(value.reshape(-1).tolist()))
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(attr_key(v) for v in value)
    if isinstance(value, float) and value != value:
        return ("nan",)
    return value


def structure_key(instr: Instr) -> Hashable:
    """What `instr` computes from operands of its operand types: its op, types, attributes
    and, for a fusion, the structure of its region; not which values it reads or where it
    came from. Two instructions with equal keys compute the same function (and compile to
    the same kernel)."""
    def attrs_key(attrs: Dict[str, Any]) -> Hashable:
        return tuple((k, type(v).__name__, attr_key(v)) for k, v in sorted(attrs.items()))

    key = (instr.op, tuple(v.type for v in instr.operands),
           tuple(r.type for r in instr.results), attrs_key(instr.attrs))
    if instr.region is None:
        return key
    number = {p.value: i for i, p in enumerate(instr.region.params)}
    body = []
    for sub in instr.region.body:
        inner = structure_key(sub) if sub.region is not None else None  # (region nesting)
        body.append((sub.op, tuple(number[v] for v in sub.operands),
                     tuple(r.type for r in sub.results), attrs_key(sub.attrs), inner))
        for r in sub.results:
            number[r] = len(number)
    return key + (tuple(body), tuple(number[r.value] for r in instr.region.results))


def substitute(values: Iterable[Value], mapping: Dict[Value, Value]) -> List[Value]:
    """`values` with each replaced by its final image under `mapping` (chains followed)."""
    out = []
    for v in values:
        while v in mapping:
            v = mapping[v]
        out.append(v)
    return out
