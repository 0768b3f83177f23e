"""Kernel schedules: what one kernel computes and how its work is laid out, before any
target's code.

A schedule sits between the fused IR and a target's instructions. It says
  - the kind of kernel (from the op table's codegen role of the instruction: see
    `graph/registry.py`): elementwise, reduce, contraction, rowwise, copy, gather, concat;
  - the iteration space (collapsed: adjacent dimensions merge wherever every buffer is
    contiguous across them), which of its axes are parallel (split between cores, or GPU
    blocks) and which are reduced;
  - each buffer's element strides over that space and where it lives (global memory, a
    target's shared memory, registers, or the kernel's scratch);
  - tile sizes, chosen by the target from its capabilities (`Target.tiles`);
  - the region of scalar ops evaluated per element, and for a contraction its epilogue.
Targets lower a schedule (CPU: `kernels.py` and `gemm.py`; GPU: `ptx.py`); they do not
decide it. `format_schedule` prints it, as `flowjit-dump --stages kernels` shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from flowjit import dtypes
from flowjit.codegen import scalar
from flowjit.graph import registry
from flowjit.graph.shape import broadcast_strides, row_major_strides  # noqa: F401 (re-export)
from flowjit.ir.core import FUSION, Instr, TensorType, Value

# Where a buffer lives while the kernel runs.
GLOBAL, SHARED, REGISTER, SCRATCH = "global", "shared", "register", "scratch"

# Kernel kinds, by the codegen role of the instruction (or of a fusion's root).
ELEMENTWISE, REDUCE, CONTRACTION, ROWWISE, COPY, GATHER, CONCAT = (
    "elementwise", "reduce", "contraction", "rowwise", "copy", "gather", "concat")
_KIND_OF_ROLE = {registry.ELEMENTWISE: ELEMENTWISE, registry.REDUCTION: REDUCE,
                 registry.CONTRACTION: CONTRACTION, registry.CONVOLUTION: CONTRACTION,
                 registry.ROWWISE: ROWWISE,
                 registry.LAYOUT: COPY, registry.GATHER: GATHER, registry.CONCAT: CONCAT}
# Contractions that are not a 2-D matmul describe the GEMM they run: op mnemonic ->
# view(core, kernel instruction) -> (m, n, k), or None when that kernel has no native code
# (codegen/conv.py registers the convolutions).
GEMM_VIEWS: Dict[str, Callable[[Instr, Instr], Optional[Tuple[int, int, int]]]] = {}
# A fusion's `kind` attribute -> the kernel kind it becomes.
_KIND_OF_FUSION = {"loop": ELEMENTWISE, "reduce": REDUCE, "contraction": CONTRACTION}


@dataclass(frozen=True)
class Capabilities:
    """What a target offers that schedules are sized from."""

    vector_bits: int         # width of one vector register (a GPU thread: its word)
    parallel_units: int      # cores (CPU), or threads per block (GPU)
    shared_memory_bytes: int  # per block on a GPU; 0 on the CPU
    math: str                # who provides exp, log, pow...: "llvm+libm", "libdevice"
    calling_convention: str  # "ptr-table+range" (CPU), "ptx_kernel" (GPU)
    index_bits: int = 64     # every index is computed in this width


@dataclass(frozen=True)
class Buffer:
    """One buffer of a kernel: a result ('out'), an operand ('in') or scratch space."""

    name: str
    type: TensorType
    placement: str
    strides: Optional[Tuple[int, ...]] = None  # element strides over the space, if indexed


@dataclass
class Schedule:
    kind: str
    instr: Instr
    space: Tuple[int, ...]
    parallel: Tuple[int, ...]
    reduce: Tuple[int, ...]
    buffers: List[Buffer]
    params: List[Value]            # the region's parameters, bound to the 'in' buffers
    body: List[Instr]              # the region: scalar ops per element (and the root)
    epilogue: List[Instr] = field(default_factory=list)
    tiles: Dict[str, int] = field(default_factory=dict)
    facts: Dict[str, Any] = field(default_factory=dict)  # kind-specific: combiner, map, ...

    @property
    def root(self) -> Instr:
        return self.body[-1]

    def strides_of(self, value: Value) -> List[int]:
        """Element strides of a region parameter over the space."""
        return list(self.buffers[len(self.instr.results) + self.params.index(value)].strides)

    @property
    def out_strides(self) -> List[int]:
        return list(self.buffers[0].strides)


# -- which instructions have a kernel ------------------------------------------------------------
def _static(values: Sequence[Value]) -> bool:
    return all(v.type.is_static and scalar.supported_dtype(v.type.dtype) for v in values)


def _elementwise_ok(instr: Instr) -> bool:
    return scalar.can_emit(instr.op, [v.type.dtype for v in instr.operands],
                           instr.result.type.dtype)


def region_of(instr: Instr) -> Tuple[List[Value], List[Instr]]:
    """(parameters, body) of the kernel's region: a fusion's own, or the instruction alone."""
    if instr.op == FUSION:
        return [p.value for p in instr.region.params], instr.region.body
    params = [Value(v.type) for v in instr.operands]
    return params, [Instr(instr.op, params, instr.attrs, instr.results, instr.loc)]


def kernel_kind(instr: Instr) -> Optional[str]:
    """The kind of kernel `instr` compiles to, or None (it runs as the numpy reference)."""
    if not _static(instr.operands + instr.results):
        return None
    if instr.op == FUSION:
        if len(instr.results) != 1 or not _static([r for i in instr.region.body
                                                   for r in i.results]):
            return None
        kind = _KIND_OF_FUSION.get(instr.attrs["kind"])
        body = instr.region.body
        root, rest = body[-1], [i for i in body[:-1] if i.op != "constant"]
        if kind == ELEMENTWISE and all(_elementwise_ok(i) for i in rest + [root]):
            return kind
        if kind == REDUCE and _reduction_ok(root) and all(_elementwise_ok(i) for i in rest):
            return kind
        if kind == CONTRACTION:
            cores = [i for i in rest + [root] if i.op_def.role in registry.CONTRACTIONS]
            epilogue = [i for i in rest + [root] if i.op_def.role not in registry.CONTRACTIONS]
            if len(cores) == 1 and _contraction_ok(cores[0], instr.result.type, instr) and \
                    all(_elementwise_ok(i) for i in epilogue):
                return kind
        return None
    kind = _KIND_OF_ROLE.get(instr.op_def.role)
    if kind == ELEMENTWISE:
        return kind if len(instr.results) == 1 and _elementwise_ok(instr) else None
    if kind == REDUCE:
        return kind if _reduction_ok(instr) else None
    if kind == CONTRACTION:
        return kind if _contraction_ok(instr, instr.result.type) else None
    if kind == ROWWISE:
        return kind if _rowwise_ok(instr) else None
    return kind  # copy, gather, concat: any static shape and supported dtype


def _reduction_ok(instr: Instr) -> bool:
    dtype = instr.operands[0].type.dtype
    if instr.op_def.role != registry.REDUCTION or not scalar.supported_dtype(dtype):
        return False
    if instr.op_def.combiner == "mean" and dtype not in scalar.FLOAT_TYPES:
        return False  # integer mean truncates; numpy does it
    return True


def _rowwise_ok(instr: Instr) -> bool:
    x = instr.operands[0].type
    if x.dtype not in scalar.FLOAT_TYPES or not x.shape or x.shape[-1] == 0:
        return False
    if "axis" in instr.attrs:  # softmax, log_softmax: only along the last axis
        return instr.attrs["axis"] in (-1, len(x.shape) - 1)
    return True


def _contraction_ok(instr: Instr, output: TensorType, kernel: Optional[Instr] = None) -> bool:
    if instr.op in GEMM_VIEWS:
        return GEMM_VIEWS[instr.op](instr, kernel or instr) is not None
    a, b = instr.operands
    return (len(a.type.shape) == 2 and len(b.type.shape) == 2
            and a.type.dtype in scalar.FLOAT_TYPES and instr.result.type == output)


# -- index arithmetic on shapes ------------------------------------------------------------------
def collapse(space: Sequence[int], strides: List[List[int]], keep_outer: bool = False
             ) -> Tuple[List[int], List[List[int]]]:
    """Merges adjacent dimensions wherever every stride vector is contiguous across them
    (or broadcast across both), so that short inner dimensions become one long, vectorizable
    loop: [64, 8] with dense operands iterates as [512]. `keep_outer` leaves dimension 0
    alone (its range may be split between cores)."""
    space = list(space)
    strides = [list(s) for s in strides]
    d = len(space) - 2
    while d >= (1 if keep_outer else 0):
        if all(s[d] == s[d + 1] * space[d + 1] for s in strides):
            space[d + 1] *= space[d]
            del space[d]
            for s in strides:
                del s[d]
        d -= 1
    return space, strides


# -- building schedules --------------------------------------------------------------------------
def schedule(instr: Instr, target) -> Optional[Schedule]:
    """The schedule of `instr`'s kernel on `target`, or None if it has no kernel there."""
    kind = kernel_kind(instr)
    if kind is None:
        return None
    params, body = region_of(instr)
    made = _BUILDERS[kind](kind, instr, params, body)
    made.tiles.update(target.tiles(made))
    return made


def _operand_buffers(instr: Instr, params: Sequence[Value], strides: Dict[Value, List[int]]
                     ) -> List[Buffer]:
    return [Buffer(f"in{i}", p.type, GLOBAL, tuple(strides[p]) if p in strides else None)
            for i, p in enumerate(params)]


def _elementwise(kind, instr, params, body) -> Schedule:
    out_type = instr.result.type
    shape = out_type.shape
    read = [p for p in params if any(p in i.operands for i in body)]
    vectors = [broadcast_strides(shape, shape)] + [broadcast_strides(p.type.shape, shape)
                                                   for p in read]
    space, vectors = collapse(shape, vectors)
    strides = dict(zip(read, vectors[1:]))
    buffers = [Buffer("out0", out_type, GLOBAL, tuple(vectors[0]))]
    return Schedule(kind, instr, tuple(space), (0,) if space else (), (),
                    buffers + _operand_buffers(instr, params, strides), params, body)


def _reduce(kind, instr, params, body) -> Schedule:
    """The input's space without its size-1 dimensions, collapsed into alternating kept
    and reduced axes. A kept first axis is split between shares (rows of a row sum), else
    a kept last axis (columns of a column sum); a reduction of everything is one share."""
    root = body[-1]
    source = root.operands[0]
    in_shape = list(source.type.shape)
    axes = range(len(in_shape)) if root.attrs["axis"] is None else root.attrs["axis"]
    axes = {a % len(in_shape) for a in axes} if in_shape else set()
    kept = [1 if i in axes else d for i, d in enumerate(in_shape)]
    out_type = instr.result.type
    wide = root.op_def.combiner in ("sum", "mean") and out_type.dtype is dtypes.float32
    read = [p for p in params if any(p in i.operands for i in body[:-1])]
    if source in params:  # an unfused reduction reads its operand directly
        read.append(source)
    vectors = [broadcast_strides(kept, in_shape)] + \
        [broadcast_strides(p.type.shape, in_shape) for p in read]
    dims = [d for d in range(len(in_shape)) if in_shape[d] != 1]
    space, vectors = collapse([in_shape[d] for d in dims], [[v[d] for d in dims]
                                                            for v in vectors])
    out_strides = vectors[0]
    reduced = tuple(d for d, s in enumerate(out_strides) if s == 0)
    if space and 0 not in reduced:
        parallel: Tuple[int, ...] = (0,)
    elif len(space) > 1 and len(space) - 1 not in reduced:
        parallel = (len(space) - 1,)
    else:
        parallel = ()
    count = 1
    for a in axes:
        count *= in_shape[a]
    buffers = [Buffer("out0", out_type, GLOBAL, tuple(out_strides))]
    buffers += _operand_buffers(instr, params, dict(zip(read, vectors[1:])))
    facts = {"combiner": root.op_def.combiner, "count": count,
             "accumulator": "f64" if wide else out_type.dtype.ir_name}
    if wide:  # float32 sums add in float64: see kernels._reduce
        buffers.append(Buffer("acc", TensorType(dtypes.float64, out_type.shape), SCRATCH,
                              tuple(out_strides)))
    return Schedule(kind, instr, tuple(space), parallel, reduced, buffers, params, body,
                    facts=facts)


def _contraction(kind, instr, params, body) -> Schedule:
    """C[m, n] = sum_k op(A)[m, k] op(B)[k, n], then the epilogue (every other op of the
    region, elementwise over C) on each part of C as soon as it is computed."""
    core = next(i for i in body if i.op_def.role in registry.CONTRACTIONS)
    if core.op in GEMM_VIEWS:  # a convolution: no transposes, its operands read by its view
        view = GEMM_VIEWS[core.op](core, instr)
        buffers = [Buffer("out0", instr.result.type, GLOBAL)]
        return Schedule(kind, instr, view, (0, 1), (2,), buffers + _operand_buffers(
            instr, params, {}), params, body, epilogue=[i for i in body if i is not core],
            facts={"core": core, "transpose_a": False, "transpose_b": False})
    a, b = core.operands
    ta, tb = core.attrs["transpose_a"], core.attrs["transpose_b"]
    m, n = instr.result.type.shape
    k = a.type.shape[0] if ta else a.type.shape[1]
    buffers = [Buffer("out0", instr.result.type, GLOBAL)]
    buffers += _operand_buffers(instr, params, {})
    return Schedule(kind, instr, (m, n, k), (0, 1), (2,), buffers, params, body,
                    epilogue=[i for i in body if i is not core],
                    facts={"core": core, "transpose_a": ta, "transpose_b": tb})


def _rowwise(kind, instr, params, body) -> Schedule:
    x = instr.operands[0].type
    n = x.shape[-1]
    buffers = [Buffer(f"out{i}", r.type, GLOBAL) for i, r in enumerate(instr.results)]
    return Schedule(kind, instr, (x.num_elements // n, n), (0,), (1,),
                    buffers + _operand_buffers(instr, params, {}), params, body)


def _copy(kind, instr, params, body) -> Schedule:
    out_type = instr.result.type
    base, in_strides = instr.op_def.affine_map(instr.operands[0].type.shape,
                                               instr.result.type.shape, **instr.attrs)
    space, (out_strides, in_strides) = collapse(
        out_type.shape, [row_major_strides(out_type.shape), in_strides])
    buffers = [Buffer("out0", out_type, GLOBAL, tuple(out_strides))]
    buffers += _operand_buffers(instr, params, {params[0]: in_strides})
    return Schedule(kind, instr, tuple(space), (0,) if space else (), (), buffers, params,
                    body, facts={"base": base})


def _whole(kind, instr, params, body) -> Schedule:
    """gather and concat: one share over the output."""
    buffers = [Buffer("out0", instr.result.type, GLOBAL)]
    return Schedule(kind, instr, tuple(instr.result.type.shape), (), (),
                    buffers + _operand_buffers(instr, params, {}), params, body)


_BUILDERS = {ELEMENTWISE: _elementwise, REDUCE: _reduce, CONTRACTION: _contraction,
             ROWWISE: _rowwise, COPY: _copy, GATHER: _whole, CONCAT: _whole}


def schedule_key(s: Schedule) -> str:
    """Everything of a schedule that decides its kernel's code, as text (no source
    locations: equal kernels from different ops share it): a disk cache key's part."""
    facts = {k: v for k, v in s.facts.items() if k != "core"}
    buffers = [(b.name, str(b.type), b.placement, b.strides) for b in s.buffers]
    return repr((s.kind, s.space, s.parallel, s.reduce, sorted(s.tiles.items()), buffers,
                 sorted(facts.items())))


# -- printing ------------------------------------------------------------------------------------
def format_schedule(s: Schedule, name: str) -> str:
    """A schedule as text, e.g.

        kernel k3: reduce sum space [4096, 4096] parallel [0] reduce [1] tiles {vector=16}
          out0: f32[4096] global strides [1, 0]
          in0: f32[4096,4096] global strides [4096, 1]
          acc: f64[4096] scratch strides [1, 0]
          %0: f32[4096] = reduce_sum %p0 {axis=[1], keepdims=false}
    """
    from flowjit.ir.printer import format_instrs  # (the IR's own text for the region)

    def dims(values: Sequence[int]) -> str:
        return "[" + ", ".join(str(v) for v in values) + "]"

    head = f"kernel {name}: {s.kind}"
    if "combiner" in s.facts:
        head += f" {s.facts['combiner']}"
    head += f" space {dims(s.space)} parallel {dims(s.parallel)}"
    if s.reduce:
        head += f" reduce {dims(s.reduce)}"
    if s.tiles:
        head += " tiles {" + ", ".join(f"{k}={v}" for k, v in sorted(s.tiles.items())) + "}"
    lines = [head + f"    ; {s.instr.describe()}"]
    for buf in s.buffers:
        line = f"  {buf.name}: {buf.type} {buf.placement}"
        if buf.strides is not None:
            line += f" strides {dims(buf.strides)}"
        lines.append(line)
    for key in sorted(k for k in s.facts if k not in ("combiner", "core")):
        lines.append(f"  {key} = {s.facts[key]}")
    names = {p: f"in{i}" for i, p in enumerate(s.params)}
    body = [Instr(i.op, i.operands, i.attrs, i.results, None, i.region) for i in s.body]
    lines += ["  " + line for line in format_instrs(body, names)]  # (located in the head)
    return "\n".join(lines) + "\n"
