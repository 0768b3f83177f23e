"""The CPU emitter: LLVM IR loop nests for kernel schedules (codegen/schedule.py). Each
kernel is a function `void kernel(ptr* buffers, i64 begin, i64 end)` whose buffers are its
outputs, then its inputs, then scratch, all dense row-major arrays of the static shapes in
the IR; [begin, end) is the share of the schedule's parallel axis this call computes (the
runtime splits it between cores).

The emitters, one per kernel kind (registered in the op table for the ops of each role):
  elementwise  one loop nest over the schedule's space; operands are read through their
               strides (0 along broadcast dimensions), fused ops are evaluated per element;
  reduce       the share's outputs are set to the identity, then one loop nest over the input
               accumulates into them (out[kept index] op= value; an innermost reduced axis
               accumulates in a register first), then mean divides;
  contraction  C = op(A) @ op(B) by the BLIS-style GEMM core (gemm.py), then the fused
               epilogue as an elementwise pass over the part of C just computed;
  rowwise      softmax, log_softmax and the softmax cross-entropies along the last axis:
               per row, the max, the sum of exponentials, then the outputs;
  copy         transpose, slice, strided slice, broadcast_to: a copy through an affine
               index map (a base offset and one stride per output dimension);
  gather       rows picked by an index tensor (indices are range-checked before the call),
  concat       and concatenation.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import scalar, simd
from flowjit.codegen.schedule import (CONCAT, COPY, ELEMENTWISE, GATHER, REDUCE,
                                      ROWWISE, Schedule, broadcast_strides, collapse,
                                      row_major_strides)
from flowjit.graph import registry
from flowjit.ir.core import Instr, TensorType, Value

I64 = ir.IntType(64)
PTR = ir.PointerType()
# void kernel(ptr* buffers, i64 begin, i64 end): [begin, end) of the parallel axis.
KERNEL_TYPE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64])
TARGET = "cpu"  # the emitters' key in the op table

FAST = ("reassoc", "contract")  # lets LLVM vectorize reductions (order of additions changes)


# -- loops ------------------------------------------------------------------------------------
@contextlib.contextmanager
def loop(b: ir.IRBuilder, count: int, name: str = "i") -> Iterator[ir.Value]:
    """for (i = 0; i < count; ++i) { body }"""
    with loop_range(b, ir.Constant(I64, 0), ir.Constant(I64, count), name) as index:
        yield index


def loop_range(b: ir.IRBuilder, start: ir.Value, stop: ir.Value,
               name: str = "i") -> ContextManager[ir.Value]:
    """for (i = start; i < stop; ++i) { body }"""
    return simd.for_range(b, start, stop, name=name)


@contextlib.contextmanager
def loop_nest(b: ir.IRBuilder, shape: Sequence[int],
              outer: Optional[Tuple[ir.Value, ir.Value]] = None,
              inner: Optional[Tuple[ir.Value, ir.Value]] = None) -> Iterator[List[ir.Value]]:
    """Nested loops over `shape`, outermost first; yields the index of each dimension.
    `outer` restricts the outermost dimension to [begin, end), `inner` the innermost (of
    two or more)."""
    with contextlib.ExitStack() as stack:
        index = []
        for d, n in enumerate(shape):
            if d == 0 and outer is not None:
                index.append(stack.enter_context(loop_range(b, *outer, f"i{d}")))
            elif d == len(shape) - 1 and d > 0 and inner is not None:
                index.append(stack.enter_context(loop_range(b, *inner, f"i{d}")))
            else:
                index.append(stack.enter_context(loop(b, n, f"i{d}")))
        yield index


def offset(b: ir.IRBuilder, index: Sequence[ir.Value], strides: Sequence[int]) -> ir.Value:
    total = ir.Constant(I64, 0)
    for i, s in zip(index, strides):
        if s:
            total = b.add(total, b.mul(i, ir.Constant(I64, s)))
    return total


def load(b: ir.IRBuilder, pointer: ir.Value, dtype: dtypes.DType, at: ir.Value) -> ir.Value:
    value = b.load(b.gep(pointer, [at], source_etype=scalar.storage_type(dtype)),
                   typ=scalar.storage_type(dtype))
    return b.trunc(value, ir.IntType(1)) if dtype is dtypes.bool_ else value


def store(b: ir.IRBuilder, value: ir.Value, pointer: ir.Value, dtype: dtypes.DType,
          at: ir.Value) -> None:
    if dtype is dtypes.bool_:
        value = b.zext(value, scalar.BOOL_STORAGE)
    b.store(value, b.gep(pointer, [at], source_etype=scalar.storage_type(dtype)))


# -- evaluating fused instructions at one index -------------------------------------------------
class Region:
    """The scalar instructions of a kernel, with their parameters bound to buffers."""

    def __init__(self, params: List[Value], body: List[Instr]) -> None:
        self.params, self.body = params, body

    def evaluate(self, b: ir.IRBuilder, pointers: Dict[Value, ir.Value], index, space,
                 upto: Optional[Instr] = None, known: Optional[Dict[Value, ir.Value]] = None,
                 strides: Optional[Dict[Value, List[int]]] = None) -> Dict[Value, ir.Value]:
        """LLVM values of the region's values at `index` of the iteration `space`, for the
        instructions before `upto` (all of them when None). A parameter is read through
        `strides[param]` if given, else through its broadcast strides over `space`."""
        env: Dict[Value, ir.Value] = dict(known or {})

        def value_of(v: Value) -> ir.Value:
            if v not in env:  # a parameter, loaded where first used: only what is read
                step = strides[v] if strides else broadcast_strides(v.type.shape, space)
                env[v] = load(b, pointers[v], v.type.dtype, offset(b, index, step))
            return env[v]

        for instr in self.body:
            if instr is upto:
                break
            if instr.result in env:
                continue
            if instr.op == "constant":
                value = instr.attrs["value"]
                env[instr.result] = ir.Constant(scalar.llvm_type(instr.result.type.dtype),
                                                value.item())
                continue
            args = [value_of(v) for v in instr.operands]
            env[instr.result] = scalar.emit(b, instr.op, args,
                                            [v.type.dtype for v in instr.operands],
                                            instr.result.type.dtype, instr.attrs)
        return env


# -- kernels --------------------------------------------------------------------------------
class KernelInfo:
    """How to call a kernel: its kind, the extent of the dimension its calls may split
    (1: not splittable), the work per unit of that extent, the granularity shares must be
    multiples of, its scratch space in bytes, and the function (same signature) to run
    before the shares, if it has one: `prepare` over [0, prepare_extent), which may be
    split too (`prepare_work` elements per unit); the shares then only read the scratch.
    A kernel that runs whole on one thread calls `alone` instead of both, if it has one
    (a GEMM that packs B block by block, just before its tiles use each block)."""

    def __init__(self, kind: str, extent: int, work_per_row: int, scratch: int = 0,
                 align: int = 1, prepare: Optional[str] = None, prepare_extent: int = 1,
                 prepare_work: int = 1, alone: Optional[str] = None) -> None:
        self.kind, self.extent, self.work_per_row = kind, extent, work_per_row
        self.scratch, self.align, self.prepare = scratch, align, prepare
        self.prepare_extent, self.prepare_work = prepare_extent, prepare_work
        self.alone = alone


class Frame:
    """What an emitter writes into: the kernel function's builder, its buffers (outputs,
    the region's parameters, scratch) and its [begin, end) share."""

    def __init__(self, module: ir.Module, name: str, fn: ir.Function, sched: Schedule,
                 target) -> None:
        self.module, self.name, self.fn, self.target = module, name, fn, target
        self.b = b = ir.IRBuilder(fn.append_basic_block("entry"))
        n_out = len(sched.instr.results)
        self.table = fn.args[0]
        self.buffers = [b.load(b.gep(self.table, [ir.Constant(I64, i)], source_etype=PTR),
                               typ=PTR) for i in range(n_out + len(sched.params) + 1)]
        self.outs = self.buffers[:n_out]
        self.ins = self.buffers[n_out:-1]
        self.inputs = dict(zip(sched.params, self.ins))
        self.scratch = self.buffers[-1]
        self.rows = (fn.args[1], fn.args[2])
        self.region = Region(sched.params, sched.body)


def anchor(sched: Schedule) -> Instr:
    """The instruction whose op's emitter emits the kernel: a contraction's core, else the
    root (an elementwise fusion's root is elementwise, a reduce fusion's a reduction)."""
    return sched.facts.get("core") or sched.root


def can_emit(sched: Schedule) -> bool:
    return TARGET in anchor(sched).op_def.emitters


def emit_kernel(module: ir.Module, name: str, sched: Schedule, target) -> KernelInfo:
    """Adds `void name(ptr* buffers, i64 begin, i64 end)` computing the schedule's kernel
    to `module`, by the emitter the op table holds for it on the CPU."""
    fn = ir.Function(module, KERNEL_TYPE, name)
    fn.args[0].add_attribute("noalias")
    frame = Frame(module, name, fn, sched, target)
    info = anchor(sched).op_def.emitters[TARGET](frame, sched)
    frame.b.ret_void()
    return info


def _work(sched: Schedule) -> int:
    total = 1
    for d in sched.space:
        total *= d
    return total


def emit_elementwise(f: Frame, sched: Schedule) -> KernelInfo:
    space = list(sched.space)
    param_strides = {p: sched.strides_of(p) for p in sched.params
                     if sched.strides_of(p) is not None}
    _loop_over(f.b, f.region, f.outs[0], f.inputs, sched.instr.result.type, space,
               sched.out_strides, param_strides, rows=f.rows if space else None)
    extent = space[0] if space else 1
    return KernelInfo(ELEMENTWISE, extent, max(1, _work(sched) // max(1, extent)))


def _loop_over(b, region: Region, out, inputs, out_type: TensorType, space, out_strides,
               param_strides, known_root: Optional[Tuple[Value, ir.Value]] = None,
               rows=None, cols=None) -> None:
    """out[i] = region(i) for i in `space`; `rows` and `cols` restrict the first and (for a
    contraction's epilogue) the last dimension."""
    root = region.body[-1].result
    with loop_nest(b, space, outer=rows, inner=cols) as index:
        at = offset(b, index, out_strides)
        known = None
        if known_root is not None:  # the contraction's result, read back from the output
            value, pointer = known_root
            known = {value: load(b, pointer, out_type.dtype, at)}
        env = region.evaluate(b, inputs, index, space, known=known, strides=param_strides)
        store(b, env[root], out, out_type.dtype, at)


def emit_epilogue(b, region: Region, core: Instr, out, inputs, out_type: TensorType,
                  rows, cols) -> None:
    """A contraction's epilogue (bias, activation, update: all but the core), elementwise
    and in place over rows x cols of C, which holds the core's result."""
    if len(region.body) == 1:
        return
    body = [i for i in region.body if i is not core]
    shape = out_type.shape
    read = [p for p in region.params if any(p in i.operands for i in body)]
    vectors = [broadcast_strides(shape, shape)] + [broadcast_strides(p.type.shape, shape)
                                                   for p in read]
    space, vectors = collapse(shape, vectors, keep_outer=True)
    _loop_over(b, Region(region.params, body), out, inputs, out_type, space, vectors[0],
               dict(zip(read, vectors[1:])), known_root=(core.result, out), rows=rows,
               cols=cols)


def _identity(op: str, dtype: dtypes.DType):
    if dtype is dtypes.bool_:
        return {"any": 0, "all": 1}[op]
    if dtype in scalar.FLOAT_TYPES:
        return {"sum": 0.0, "mean": 0.0, "prod": 1.0, "max": float("-inf"),
                "min": float("inf")}[op]
    info = np.iinfo(dtype.np_dtype)
    return {"sum": 0, "mean": 0, "prod": 1, "max": int(info.min), "min": int(info.max)}[op]


def _combine(b: ir.IRBuilder, op: str, acc: ir.Value, x: ir.Value, dtype) -> ir.Value:
    is_float = dtype in scalar.FLOAT_TYPES
    if op in ("sum", "mean", "prod"):
        name = {"prod": "mul"}.get(op, "add")
        result = getattr(b, ("f" if is_float else "") + name)(acc, x)
        if is_float:
            result.flags.extend(FAST)
        return result
    if op in ("max", "min"):
        predicate = ">" if op == "max" else "<"
        if is_float:  # NaN propagates, as in numpy
            return scalar.float_extremum(b, predicate, acc, x)
        return b.select(scalar.icmp(b, predicate, acc, x, dtype), acc, x)
    return b.or_(acc, x) if op == "any" else b.and_(acc, x)


def emit_reduce(f: Frame, sched: Schedule) -> KernelInfo:
    """Accumulates into the output, or for float32 sums and means into float64 scratch:
    a float32 accumulator spread over vector lanes still adds millions of terms one after
    another (the mean of 2^24 copies of 0.1 came out 0.35% high); in float64 the error of
    2^24 terms stays below float32's last bit. A share covers a range of the parallel
    (kept) axis: it initializes, accumulates and finishes only its own outputs."""
    b, root = f.b, sched.root
    op = sched.facts["combiner"]
    source = root.operands[0]
    out_type = sched.instr.result.type
    dtype = out_type.dtype
    space = list(sched.space)
    wide = sched.facts["accumulator"] == "f64" and dtype is dtypes.float32
    acc_dtype, acc = (dtypes.float64, f.scratch) if wide else (dtype, f.outs[0])
    acc_type = scalar.llvm_type(acc_dtype)
    init = ir.Constant(acc_type, _identity(op, acc_dtype))
    out_strides = sched.out_strides
    kept = [d for d in range(len(space)) if d not in sched.reduce]
    kept_space = [space[d] for d in kept]
    kept_strides = [out_strides[d] for d in kept]
    split = sched.parallel[0] if sched.parallel else None
    # the share's outputs: the kept space, with the split axis restricted to [begin, end)
    share: dict = {}
    if split is not None:
        share = {"outer": f.rows} if kept.index(split) == 0 else {"inner": f.rows}
    nest = {"outer": f.rows} if split == 0 else {"inner": f.rows} if split is not None \
        else {}

    def each_output() -> ContextManager[List[ir.Value]]:
        return loop_nest(b, kept_space, **share)

    with each_output() as index:
        store(b, init, acc, acc_dtype, offset(b, index, kept_strides))
    param_strides = {p: sched.strides_of(p) for p in sched.params
                     if sched.strides_of(p) is not None}
    inner_reduced = bool(space) and len(space) - 1 in sched.reduce
    value_type = acc_type

    def value_at(index) -> ir.Value:
        env = f.region.evaluate(b, f.inputs, index, space, upto=root, strides=param_strides)
        value = env[source] if source in env else load(
            b, f.inputs[source], dtype, offset(b, index, param_strides[source]))
        return b.fpext(value, value_type) if wide else value

    if not inner_reduced:
        with loop_nest(b, space, **nest) as index:
            at = offset(b, index, out_strides)
            store(b, _combine(b, op, load(b, acc, acc_dtype, at), value_at(index), acc_dtype),
                  acc, acc_dtype, at)
    else:  # the innermost axis sums into a register, then once into the accumulator
        with b.goto_entry_block():  # (an entry-block slot becomes a register)
            total = b.alloca(value_type)
        with loop_nest(b, space[:-1], **nest) as index:
            b.store(init, total)
            with loop(b, space[-1], "r") as last:
                b.store(_combine(b, op, b.load(total), value_at(index + [last]), acc_dtype),
                        total)
            at = offset(b, index, out_strides[:-1])
            store(b, _combine(b, op, load(b, acc, acc_dtype, at), b.load(total), acc_dtype),
                  acc, acc_dtype, at)
    if op == "mean" or wide:
        with each_output() as index:
            at = offset(b, index, kept_strides)
            value = load(b, acc, acc_dtype, at)
            if op == "mean":  # empty: 0/0 = NaN
                value = b.fdiv(value, ir.Constant(value.type, float(sched.facts["count"])))
            if wide:
                value = b.fptrunc(value, scalar.llvm_type(dtype))
            store(b, value, f.outs[0], dtype, at)
    extent = space[split] if split is not None else 1
    return KernelInfo(REDUCE, extent, max(1, _work(sched) // max(1, extent)),
                      out_type.num_elements * 8 if wide else 0)


def emit_rowwise(f: Frame, sched: Schedule) -> KernelInfo:
    """Softmax-family ops along the last axis: per row, m = max(x), s = sum(exp(x - m)),
    then the outputs from m and s. As in the reference, log-probabilities are
    (x - m) - log(s): forming m + log(s) first would lose log(s) next to a large m."""
    b, instr, outs, ins, rows = f.b, sched.instr, f.outs, f.ins, f.rows
    x_type = instr.operands[0].type
    dtype = x_type.dtype
    n = x_type.shape[-1]
    elem = scalar.llvm_type(dtype)
    x_ptr = ins[0]
    m_slot, s_slot, t_slot = (b.alloca(elem) for _ in range(3))  # entry block: registers
    # where exp(x - max) is kept between the two loops: the probabilities' own buffer
    exps = {"softmax": outs[0], "log_softmax": None}.get(instr.op, outs[-1])
    with loop_range(b, *rows, "r") as r:
        base = b.mul(r, ir.Constant(I64, n))

        def x_at(j):
            return load(b, x_ptr, dtype, b.add(base, j))

        b.store(ir.Constant(elem, float("-inf")), m_slot)
        with loop(b, n, "jm") as j:
            b.store(scalar.call_intrinsic(b, "llvm.maximum", [b.load(m_slot), x_at(j)]), m_slot)
        m = b.load(m_slot)
        b.store(ir.Constant(elem, 0.0), s_slot)
        with loop(b, n, "js") as j:
            e = scalar.exp(b, b.fsub(x_at(j), m))
            if exps is not None:  # kept for the output loop: one exponential per element
                store(b, e, exps, dtype, b.add(base, j))
            total = b.fadd(b.load(s_slot), e)
            total.flags.extend(FAST)
            b.store(total, s_slot)
        s = b.load(s_slot)
        log_s = scalar.log(b, s)
        inv_s = b.fdiv(ir.Constant(elem, 1.0), s)

        def log_p(value):  # log softmax of one logit
            return b.fsub(b.fsub(value, m), log_s)

        def p_at(j):  # softmax of one logit, from the kept exponential
            return b.fmul(load(b, exps, dtype, b.add(base, j)), inv_s)
        if instr.op == "softmax":
            with loop(b, n, "jo") as j:
                store(b, p_at(j), outs[0], dtype, b.add(base, j))
        elif instr.op == "log_softmax":
            with loop(b, n, "jo") as j:
                store(b, log_p(x_at(j)), outs[0], dtype, b.add(base, j))
        elif instr.op == "sparse_softmax_xent":
            label_type = instr.operands[1].type.dtype
            label = load(b, ins[1], label_type, r)
            label = b.sext(label, I64) if label.type.width < 64 else label
            store(b, b.fneg(log_p(x_at(label))), outs[0], dtype, r)
            with loop(b, n, "jo") as j:
                p = p_at(j)
                hit = b.uitofp(b.icmp_signed("==", j, label), elem)
                store(b, b.fsub(p, hit), outs[1], dtype, b.add(base, j))
        else:  # softmax_xent: loss = -sum(labels * log_p), backprop = softmax - labels
            b.store(ir.Constant(elem, 0.0), t_slot)
            with loop(b, n, "jo") as j:
                at = b.add(base, j)
                label = load(b, ins[1], dtype, at)
                p = p_at(j)
                store(b, b.fsub(p, label), outs[1], dtype, at)
                total = b.fsub(b.load(t_slot), b.fmul(label, log_p(x_at(j))))
                total.flags.extend(FAST)
                b.store(total, t_slot)
            store(b, b.load(t_slot), outs[0], dtype, r)
    return KernelInfo(ROWWISE, sched.space[0], 30 * n)


# -- layout: copies through affine index maps -----------------------------------------------
def emit_copy(f: Frame, sched: Schedule) -> KernelInfo:
    b, space = f.b, list(sched.space)
    dtype = sched.instr.result.type.dtype
    in_strides = sched.strides_of(sched.params[0])
    with loop_nest(b, space, outer=f.rows if space else None) as index:
        source = b.add(ir.Constant(I64, sched.facts["base"]), offset(b, index, in_strides))
        store(b, load(b, f.ins[0], dtype, source), f.outs[0], dtype,
              offset(b, index, sched.out_strides))
    extent = space[0] if space else 1
    return KernelInfo(COPY, extent, max(1, _work(sched) // max(1, extent)))


def emit_gather(f: Frame, sched: Schedule) -> KernelInfo:
    """out[pre, i..., post] = params[pre, indices[i...], post] (indices checked before)."""
    out_shape = sched.instr.result.type.shape
    with loop_nest(f.b, out_shape) as index:
        gather_element(f.b, sched, f.outs[0], *f.ins, index)
    return KernelInfo(GATHER, 1, sched.instr.result.type.num_elements)


def gather_element(b: ir.IRBuilder, sched: Schedule, out: ir.Value, params_ptr: ir.Value,
                   indices_ptr: ir.Value, index: List[ir.Value]) -> None:
    """Copies the element of a gather's output at `index` (every target's gather)."""
    instr = sched.instr
    params, indices = instr.operands
    axis = instr.attrs["axis"] % len(params.type.shape)
    p_st = row_major_strides(params.type.shape)
    n_idx = len(indices.type.shape)
    dtype = instr.result.type.dtype
    pre, idx, post = index[:axis], index[axis:axis + n_idx], index[axis + n_idx:]
    i = load(b, indices_ptr, indices.type.dtype,
             offset(b, idx, row_major_strides(indices.type.shape)))
    i = b.sext(i, I64) if i.type.width < 64 else i
    source = b.add(offset(b, pre + post, p_st[:axis] + p_st[axis + 1:]),
                   b.mul(i, ir.Constant(I64, p_st[axis])))
    store(b, load(b, params_ptr, dtype, source), out, dtype,
          offset(b, index, row_major_strides(instr.result.type.shape)))


def emit_concat(f: Frame, sched: Schedule) -> KernelInfo:
    b, instr, out, input_ptrs = f.b, sched.instr, f.outs[0], f.ins
    out_type = instr.result.type
    axis = instr.attrs["axis"] % len(out_type.shape)
    out_st = row_major_strides(out_type.shape)
    start = 0
    for value, pointer in zip(instr.operands, input_ptrs):
        shape = value.type.shape
        space, (in_strides, o_strides) = collapse(shape, [row_major_strides(shape), out_st])
        base = ir.Constant(I64, start * out_st[axis])
        with loop_nest(b, space) as index:
            x = load(b, pointer, out_type.dtype, offset(b, index, in_strides))
            store(b, x, out, out_type.dtype, b.add(base, offset(b, index, o_strides)))
        start += shape[axis]
    return KernelInfo(CONCAT, 1, out_type.num_elements)


def _emit_contraction(f: Frame, sched: Schedule) -> KernelInfo:
    from flowjit.codegen import gemm  # (gemm builds on this module)
    return gemm.emit_matmul(f, sched)


# The CPU's emitter for every op of each codegen role.
for _role, _emitter in {registry.ELEMENTWISE: emit_elementwise, registry.REDUCTION: emit_reduce,
                        registry.CONTRACTION: _emit_contraction,
                        registry.ROWWISE: emit_rowwise, registry.LAYOUT: emit_copy,
                        registry.GATHER: emit_gather, registry.CONCAT: emit_concat}.items():
    registry.register_emitter(TARGET, _emitter, role=_role)

from flowjit.codegen import conv as _conv  # noqa: E402,F401 - convolutions' emitters (uses this module)
