"""The IR's data structures.

A `Func` is a straight-line SSA program: `params` (each a `Value` with a role: a feed, a
variable's value at the start of the run, or a random op's run counter), a body of `Instr`s,
and `results` (fetches and the new values of assigned variables). Instructions name their op
by the mnemonic registered in the op table (`add`, `matmul`, ...), so an instruction has the
same shape rule and reference kernel as the graph op it came from.

Region ops hold nested Funcs (`Instr.regions`) whose params and `yield` results are the
region's interface: the IR-only `fusion` (one region: the fused computation), `cond` (one
region per branch: `tf.cond`, `tf.case`) and `while` (a condition region and a body region:
`tf.while_loop`), as XLA's conditional and while. Regions are closed: a region reads only
its params (the outer values it needs are the instruction's operands).

The IR is pure: variable assignments were turned into values by the lowering, so passes can
move, merge and delete instructions knowing only their operands.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.graph.registry import REGION, OpDef, TensorSpec, get_op_def_by_mnemonic, register_op
from flowjit.graph.shape import TensorShape

FUSION = "fusion"
COND = "cond"    # operands: predicate (bool; or int32 branch index), then the branches' inputs
WHILE = "while"  # operands: loop variables, then loop invariants; results: the final variables
# operands: forward values, the inputs they get gradients for, captures; results: the forward
# values; its region, the user's gradient function (ops/custom_gradient.py). Autodiff removes it.
CUSTOM_GRADIENT = "custom_gradient"


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
    """`results = op(operands) {attrs}`; `regions` are the nested Funcs of a region op
    (a fusion's body; a cond's branches; a while's condition and body)."""

    __slots__ = ("op", "operands", "attrs", "results", "loc", "regions")

    def __init__(self, op: str, operands: List[Value], attrs: Dict[str, Any],
                 results: List[Value], loc: Optional[Location] = None,
                 region: Optional["Func"] = None,
                 regions: Optional[Sequence["Func"]] = None) -> None:
        self.op = op
        self.operands = list(operands)
        self.attrs = dict(attrs)
        self.results = list(results)
        self.loc = loc
        if regions is None:
            regions = () if region is None else (region,)
        self.regions: Tuple["Func", ...] = tuple(regions)

    @property
    def region(self) -> Optional["Func"]:
        """The one region of a single-region op (a fusion), else None."""
        return self.regions[0] if len(self.regions) == 1 else None

    @property
    def op_def(self) -> OpDef:
        return get_op_def_by_mnemonic(self.op)

    @property
    def is_fusion(self) -> bool:
        return self.op == FUSION

    @property
    def has_effects(self) -> bool:
        """Whether running it does something besides computing its results: its op has
        effects, or an instruction of one of its regions has (a tf.Print in a branch)."""
        if self.op_def.has_effects:
            return True
        return any(sub.has_effects for region in self.regions for sub in region.body)

    @property
    def result(self) -> Value:
        (value,) = self.results
        return value

    def with_operands(self, operands: Sequence[Value]) -> "Instr":
        """This instruction reading `operands` instead (same results, regions and loc)."""
        return Instr(self.op, list(operands), self.attrs, self.results, self.loc,
                     regions=self.regions)

    def with_regions(self, regions: Sequence["Func"]) -> "Instr":
        return Instr(self.op, self.operands, self.attrs, self.results, self.loc,
                     regions=regions)

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
        """All instructions, including those inside regions."""
        for instr in self.body:
            yield instr
            for region in instr.regions:
                yield from region.instructions()

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
    return key + tuple(_region_key(region, attrs_key) for region in instr.regions)


def _region_key(region: "Func", attrs_key) -> Hashable:
    number = {p.value: i for i, p in enumerate(region.params)}
    body = []
    for sub in region.body:
        inner = structure_key(sub) if sub.regions else None  # (region nesting)
        body.append((sub.op, tuple(number[v] for v in sub.operands),
                     tuple(r.type for r in sub.results), attrs_key(sub.attrs), inner))
        for r in sub.results:
            number[r] = len(number)
    return (tuple(body), tuple(number[r.value] for r in region.results))


def substitute(values: Iterable[Value], mapping: Dict[Value, Value]) -> List[Value]:
    """`values` with each replaced by its final image under `mapping` (chains followed)."""
    out = []
    for v in values:
        while v in mapping:
            v = mapping[v]
        out.append(v)
    return out


def infer_results(op_def: OpDef, operands: Sequence[Value], attrs: Dict[str, Any]
                  ) -> List[TensorType]:
    """The result types of `op_def` on `operands` with `attrs`: the op table's shape rule,
    on the operands' types (the one place the lowering, the builder and the verifier ask
    it). Raises the rule's ShapeInferenceError (or a TypeError for bad attributes)."""
    specs = op_def.infer([v.type.to_spec() for v in operands], **attrs)
    return [TensorType.from_spec(spec) for spec in specs]


# What a rewrite does with one instruction: the instructions to emit in its place, and the
# values that replace its results (or values of earlier instructions) from then on.
Rewritten = Tuple[List[Instr], Dict[Value, Value]]


def rewrite_uses(func: Func, visit: Callable[[Instr, List[Instr]], Optional[Rewritten]]
                 ) -> Tuple[Func, bool]:
    """One pass over `func`'s body that may replace instructions and values (XLA's
    ReplaceAllUsesWith): each instruction, already reading the replacements made before
    it, goes to `visit(instr, body)` (`body`: what was emitted so far), which returns None to
    keep it, or (instructions to emit instead, replacements). The function's results follow
    the replacements. Returns the new function and whether anything changed."""
    replaced: Dict[Value, Value] = {}
    body: List[Instr] = []
    changed = False
    for instr in func.body:
        operands = substitute(instr.operands, replaced)
        if operands != instr.operands:
            instr = instr.with_operands(operands)
        rewritten = visit(instr, body)
        if rewritten is None:
            body.append(instr)
            continue
        instrs, replacements = rewritten
        body.extend(instrs)
        replaced.update(replacements)
        changed = True
    if not changed:
        return func, False
    results = [r.__class__(substitute([r.value], replaced)[0], r.role, r.key)
               for r in func.results]
    return func.replace(body=body, results=results), True


def inline(region: Func, operands: Sequence[Value]) -> Tuple[List[Instr], List[Value]]:
    """A copy of `region`'s instructions reading `operands` in place of its params, with
    fresh values (nested regions copied too), and the values it yields: the region's
    computation, ready to insert where `operands` are defined."""
    mapping: Dict[Value, Value] = {p.value: v for p, v in zip(region.params, operands)}
    body = _copy_body(region.body, mapping)
    return body, [mapping[r.value] for r in region.results]


def copy_region(region: Func) -> Func:
    """`region` with fresh values throughout (a region may appear once only in a Func)."""
    mapping: Dict[Value, Value] = {p.value: Value(p.value.type, p.value.name)
                                   for p in region.params}
    body = _copy_body(region.body, mapping)
    return region.replace(params=[Param(mapping[p.value], p.role, p.key) for p in region.params],
                          body=body, results=[Result(mapping[r.value], r.role, r.key)
                                              for r in region.results])


def _copy_body(body: List[Instr], mapping: Dict[Value, Value]) -> List[Instr]:
    copied = []
    for instr in body:
        results = [Value(r.type, r.name) for r in instr.results]
        mapping.update(zip(instr.results, results))
        copied.append(Instr(instr.op, [mapping.get(v, v) for v in instr.operands],
                            instr.attrs, results, instr.loc,
                            regions=[copy_region(r) for r in instr.regions]))
    return copied
