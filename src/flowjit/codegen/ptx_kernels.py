"""The GPU's emitters for the loop kernels: elementwise, copy, gather, concat (grid-stride
loops, a thread per element), reduce (block and warp-shuffle reductions) and rowwise (a block
per row). Each is `emit(builder, schedule, args)`, writing the body of `ptx_kernel void
kernel(ptr out..., ptr in...)`; the launch geometry they assume is in the schedule's tiles
(PTXTarget.tiles), which is where the runtime reads it too. The per-element math
(`Region.evaluate`, the scalar emitters) is the CPU's.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import gpu, kernels, scalar
from flowjit.codegen.gpu import I64, SharedArray, barrier, block_reduce
from flowjit.codegen.kernels import Region, load, offset, store
from flowjit.codegen.schedule import Schedule, collapse, row_major_strides
from flowjit.codegen.simd import i64
from flowjit.ir.core import Value


def _size(shape: Sequence[int]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def _param_strides(sched: Schedule) -> Dict[Value, List[int]]:
    return {p: sched.strides_of(p) for p in sched.params if sched.strides_of(p) is not None}


# -- a thread per element -----------------------------------------------------------------------
def emit_elementwise(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """Each thread computes the elements i, i + grid size, ... of the (collapsed) space."""
    region = Region(sched.params, sched.body)
    out_type = sched.instr.result.type
    space = list(sched.space)
    strides = _param_strides(sched)
    with gpu.grid_stride_loop(b, _size(space)) as index:
        coordinates = gpu.unflatten(b, index, space)
        env = region.evaluate(b, dict(zip(sched.params, args[1:])), coordinates, space,
                              strides=strides)
        store(b, env[region.body[-1].result], args[0], out_type.dtype,
              offset(b, coordinates, sched.out_strides))


def emit_copy(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """out[i] = in[base + sum(i[d] * strides[d])] (transpose, slice, broadcast_to...)."""
    space = list(sched.space)
    dtype = sched.instr.result.type.dtype
    in_strides = sched.strides_of(sched.params[0])
    with gpu.grid_stride_loop(b, _size(space)) as index:
        coordinates = gpu.unflatten(b, index, space)
        source = b.add(i64(sched.facts["base"]), offset(b, coordinates, in_strides))
        store(b, load(b, args[1], dtype, source), args[0], dtype,
              offset(b, coordinates, sched.out_strides))


def emit_gather(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """out[pre, i..., post] = params[pre, indices[i...], post]; the runtime range-checks the
    indices before the launch."""
    out_shape = sched.instr.result.type.shape
    with gpu.grid_stride_loop(b, _size(out_shape)) as index:
        coordinates = gpu.unflatten(b, index, out_shape)
        kernels.gather_element(b, sched, args[0], args[1], args[2], coordinates)


def emit_concat(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """One grid-stride loop per operand, over its elements, into its place in the output."""
    instr, out = sched.instr, args[0]
    out_type = instr.result.type
    axis = instr.attrs["axis"] % len(out_type.shape)
    out_st = row_major_strides(out_type.shape)
    start = 0
    for value, pointer in zip(instr.operands, args[1:]):
        shape = value.type.shape
        space, (in_strides, o_strides) = collapse(shape, [row_major_strides(shape), out_st])
        with gpu.grid_stride_loop(b, _size(space)) as index:
            coordinates = gpu.unflatten(b, index, space)
            x = load(b, pointer, out_type.dtype, offset(b, coordinates, in_strides))
            store(b, x, out, out_type.dtype,
                  b.add(i64(start * out_st[axis]), offset(b, coordinates, o_strides)))
        start += shape[axis]


# -- reductions ---------------------------------------------------------------------------------
def emit_reduce(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """Reductions, by one of two strategies the target picked (tiles `outputs_per_block`):

    1 (the innermost axis is reduced: row sums, or everything): a block per output; its
      threads stride over the reduced elements (consecutive threads, consecutive elements),
      each accumulating in a register, then a block reduction (warp shuffles, the warps'
      values through shared memory);
    32 (the innermost axis is kept: column sums): a block per 32 consecutive outputs, one per
      lane, so that a warp reads 32 consecutive elements; the block's warps split the reduced
      elements between them, and their partials combine through shared memory.
    The accumulator is the schedule's (`accumulator`: float32 sums and means add in float64,
    as on the CPU; on the GPU this costs nothing a memory-bound loop would notice); the value
    is rounded to the output's dtype once, a mean divided by the count at the very end (an
    empty mean: 0/0 = NaN; any other empty reduction leaves the identity)."""
    root = sched.root
    op = sched.facts["combiner"]
    source = root.operands[0]
    dtype = sched.instr.result.type.dtype
    acc_dtype = dtypes.float64 if sched.facts["accumulator"] == "f64" else dtype
    acc_type = scalar.llvm_type(acc_dtype)
    identity = ir.Constant(acc_type, kernels._identity(op, acc_dtype))
    space = list(sched.space)
    kept = [d for d in range(len(space)) if d not in sched.reduce]
    kept_space, reduced_space = [space[d] for d in kept], [space[d] for d in sched.reduce]
    kept_strides = [sched.out_strides[d] for d in kept]
    outputs, count = _size(kept_space), _size(reduced_space)
    threads, per_block = sched.tiles["block"], sched.tiles["outputs_per_block"]
    region = Region(sched.params, sched.body)
    inputs = dict(zip(sched.params, args[1:]))
    strides = _param_strides(sched)

    def combine(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
        return kernels._combine(b, op, x, y, acc_dtype)

    def accumulate(kept_index: List[ir.Value], first: ir.Value, stop: ir.Value,
                   step: int) -> ir.Value:
        """This thread's accumulator over reduced elements first, first + step, ..."""
        with b.goto_entry_block():
            slot = b.alloca(acc_type)  # (promoted to a register)
        b.store(identity, slot)
        with gpu.thread_stride_loop(b, first, stop, step, "r") as r:
            reduced_index = dict(zip(sched.reduce, gpu.unflatten(b, r, reduced_space)))
            index = [reduced_index[d] if d in reduced_index else kept_index[kept.index(d)]
                     for d in range(len(space))]
            env = region.evaluate(b, inputs, index, space, upto=root, strides=strides)
            value = env[source] if source in env else load(
                b, inputs[source], source.type.dtype, offset(b, index, strides[source]))
            if acc_dtype is not dtype:
                value = b.fpext(value, acc_type)
            b.store(combine(b, b.load(slot), value), slot)
        return b.load(slot)

    def finish(total: ir.Value, kept_index: List[ir.Value]) -> None:
        if op == "mean":  # empty: 0/0 = NaN
            total = b.fdiv(total, ir.Constant(acc_type, float(sched.facts["count"])))
        if acc_dtype is not dtype:
            total = b.fptrunc(total, scalar.llvm_type(dtype))
        store(b, total, args[0], dtype, offset(b, kept_index, kept_strides))

    lane, warp = gpu.lane_and_warp(b)
    if per_block == 1:
        with gpu.block_stride_loop(b, outputs) as o:
            kept_index = gpu.unflatten(b, o, kept_space)
            total = block_reduce(b, accumulate(kept_index, gpu.thread(b), i64(count), threads),
                                 combine, identity, threads, "reduce")
            with b.if_then(b.icmp_unsigned("==", gpu.thread(b), i64(0))):
                finish(total, kept_index)
        return
    warps = threads // gpu.WARP
    partials = SharedArray(b, f"columns_{acc_type}", acc_type, threads)
    with gpu.block_stride_loop(b, -(-outputs // per_block)) as group:
        o = b.add(b.mul(group, i64(per_block)), lane)
        active = b.icmp_unsigned("<", o, i64(outputs))
        kept_index = gpu.unflatten(b, b.select(active, o, i64(0)), kept_space)
        own = accumulate(kept_index, warp, b.select(active, i64(count), i64(0)), warps)
        partials.store(b, own, gpu.thread(b))
        barrier(b)
        with b.if_then(b.and_(active, b.icmp_unsigned("==", warp, i64(0)))):
            total = partials.load(b, lane)
            for w in range(1, warps):
                total = combine(b, total, partials.load(b, b.add(lane, i64(w * gpu.WARP))))
            finish(total, kept_index)
        barrier(b)  # (the next group's partials overwrite these)


# -- softmax and cross-entropy: a block per row -------------------------------------------------
def emit_rowwise(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """Softmax-family ops along the last axis, the CPU's math (kernels.emit_rowwise): per
    row, m = max(x), s = sum(exp(x - m)), then the outputs from m and s, log-probabilities
    as (x - m) - log(s). A block per row (blocks stride over rows); its threads stride over
    the row's elements, and m, s (and softmax_xent's loss) are block reductions (warp
    shuffles, then shared memory). exp(x - m) is kept in the probabilities' buffer between
    the passes, as on the CPU: each thread reads back only what it wrote."""
    instr = sched.instr
    outs, ins = args[:len(instr.results)], args[len(instr.results):]
    dtype = instr.operands[0].type.dtype
    rows, n = sched.space
    threads = sched.tiles["block"]
    elem = scalar.llvm_type(dtype)
    t = gpu.thread(b)
    exps = {"softmax": outs[0], "log_softmax": None}.get(instr.op, outs[-1])
    zero, minus_inf = ir.Constant(elem, 0.0), ir.Constant(elem, float("-inf"))

    def maximum(b, x, y):
        return scalar.call_intrinsic(b, "llvm.maximum", [x, y])

    def add(b, x, y):
        total = b.fadd(x, y)
        total.flags.extend(kernels.FAST)
        return total

    with b.goto_entry_block():
        slot = b.alloca(elem)  # (promoted to a register)

    def row_total(combine, start, term) -> ir.Value:
        """combine over the row of term(j), this thread's j first, then the block's."""
        b.store(start, slot)
        with gpu.thread_stride_loop(b, t, i64(n), threads, "j") as j:
            b.store(combine(b, b.load(slot), term(j)), slot)
        return block_reduce(b, b.load(slot), combine, start, threads, "row")

    with gpu.block_stride_loop(b, rows) as r:
        base = b.mul(r, i64(n))

        def x_at(j):
            return load(b, ins[0], dtype, b.add(base, j))

        m = row_total(maximum, minus_inf, x_at)

        def exp_term(j):
            e = scalar.exp(b, b.fsub(x_at(j), m))
            if exps is not None:  # kept for the output pass: one exponential per element
                store(b, e, exps, dtype, b.add(base, j))
            return e

        s = row_total(add, zero, exp_term)
        log_s = scalar.log(b, s)
        inv_s = b.fdiv(ir.Constant(elem, 1.0), s)

        def log_p(value):
            return b.fsub(b.fsub(value, m), log_s)

        def p_at(j):
            return b.fmul(load(b, exps, dtype, b.add(base, j)), inv_s)

        def each(body):
            with gpu.thread_stride_loop(b, t, i64(n), threads, "jo") as j:
                body(j, b.add(base, j))

        if instr.op == "softmax":
            each(lambda j, at: store(b, p_at(j), outs[0], dtype, at))
        elif instr.op == "log_softmax":
            each(lambda j, at: store(b, log_p(x_at(j)), outs[0], dtype, at))
        elif instr.op == "sparse_softmax_xent":
            label = load(b, ins[1], instr.operands[1].type.dtype, r)
            label = b.sext(label, I64) if label.type.width < 64 else label
            with b.if_then(b.icmp_unsigned("==", t, i64(0))):
                store(b, b.fneg(log_p(x_at(label))), outs[0], dtype, r)
            each(lambda j, at: store(b, b.fsub(p_at(j), b.uitofp(
                b.icmp_signed("==", j, label), elem)), outs[1], dtype, at))
        else:  # softmax_xent: loss = -sum(labels * log_p), backprop = softmax - labels
            def xent_term(j):
                at = b.add(base, j)
                label = load(b, ins[1], dtype, at)
                store(b, b.fsub(p_at(j), label), outs[1], dtype, at)
                return b.fneg(b.fmul(label, log_p(x_at(j))))

            loss = row_total(add, zero, xent_term)
            with b.if_then(b.icmp_unsigned("==", t, i64(0))):
                store(b, loss, outs[0], dtype, r)
