"""The CPU's convolution: conv2d (NHWC, any strides, dilations and padding) as a GEMM over
im2col patches, through the shared GEMM core (gemm_core.py, called by symbol as gemm.py
does), with the fused epilogue (bias, activation) applied to each rectangle just computed.

    out[M = N*OH*OW, CO] = patches[M, K = KH*KW*CI] @ filter[K, CO]

The filter, [KH, KW, CI, CO] row-major, is already the [K, CO] matrix, read in place; the
output, NHWC, is already [M, CO]. Patches are never materialized whole: a share of rows is
done in chunks of at most CHUNK_BYTES of patches (a stack buffer that stays in L1/L2), each
chunk gathered (zeros where a window hangs over the padding) and multiplied at once, so the
memory traffic is the input's and the output's, not M x K.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional, Tuple

from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import gemm, kernels, scalar, schedule
from flowjit.codegen.gemm_core import CORE_TYPE
from flowjit.codegen.simd import I64, PTR, declare, for_range, i64, smin
from flowjit.graph import registry
from flowjit.ir.core import Instr, TensorType, Value
from flowjit.ops.conv import windows

CHUNK_BYTES = 64 * 1024  # patches per chunk: a stack buffer that stays in cache


def _geometry(core: Instr):
    x, w = core.operands
    kh, kw, ci, co = w.type.shape
    wh, ww = windows(x.type.shape, kh, kw, core.attrs)
    return wh, ww, (kh, kw, ci, co)


def _epilogue_view(shape: Tuple[int, ...], out_shape: Tuple[int, ...]
                   ) -> Optional[Tuple[int, ...]]:
    """The shape an epilogue operand has over the [M, CO] view of the output, or None when
    it cannot be read that way (it varies along some but not all of N, OH, OW)."""
    if tuple(shape) == tuple(out_shape):
        rows = 1
        for d in out_shape[:-1]:
            rows *= d
        return rows, out_shape[-1]
    if all(d == 1 for d in shape[:-1]):
        return tuple(shape[-1:])
    return None


def gemm_view(core: Instr, kernel: Instr) -> Optional[Tuple[int, int, int]]:
    """(M, N, K) of an NHWC float32/float64 conv2d, or None (it runs as numpy)."""
    x, w = core.operands
    out = core.result.type
    if core.attrs["data_format"] != "NHWC" or x.type.dtype not in (dtypes.float32,
                                                                     dtypes.float64):
        return None
    if kernel.op == "fusion":
        params = [p.value for p in kernel.region.params]
        epilogue = [i for i in kernel.region.body if i.op != core.op]
        used = {v for i in epilogue for v in i.operands}
        if any(_epilogue_view(p.type.shape, out.shape) is None for p in params if p in used):
            return None
    kh, kw, ci, co = w.type.shape
    m = out.shape[0] * out.shape[1] * out.shape[2]
    return m, co, kh * kw * ci


def _epilogue_region(region: kernels.Region, core: Instr, out_type: TensorType):
    """The region over the [M, CO] view: parameters retyped to their view's shape (the
    instructions keep theirs: evaluation reads only their dtypes)."""
    view = {}
    for p in region.params:
        shape = _epilogue_view(p.type.shape, out_type.shape) or p.type.shape
        view[p] = Value(TensorType(p.type.dtype, shape))
    body = [i if i is core else Instr(i.op, [view.get(v, v) for v in i.operands], i.attrs,
                                      i.results, i.loc) for i in region.body]
    return kernels.Region([view[p] for p in region.params], body), view


def emit_conv2d(f: kernels.Frame, sched: schedule.Schedule) -> kernels.KernelInfo:
    """The kernel's units are the GEMM plan's (gemm.py); each unit's rectangle of rows is
    gathered chunk by chunk into a stack buffer and multiplied by the filter in place."""
    core = sched.facts["core"]
    out_type = sched.instr.results[0].type
    dtype = out_type.dtype
    m, n, k = sched.space
    p = replace(gemm.plan(m, n, k, False, False, gemm.blocking(dtype, f.target)), pack_b=False)
    module, region = f.module, f.region
    rect = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] + [I64] * 4),
                       f.name + "_rect")
    rect.linkage = "internal"
    b = ir.IRBuilder(rect.append_basic_block("entry"))
    pointers = [b.load(b.gep(rect.args[0], [i64(i)], source_etype=PTR), typ=PTR)
                for i in range(1 + len(region.params))]
    out, inputs = pointers[0], dict(zip(region.params, pointers[1:]))
    r0, r1, c0, c1 = rect.args[1:]
    x_ptr, w_ptr = inputs[core.operands[0]], inputs[core.operands[1]]
    elem = scalar.llvm_type(dtype)
    chunk = max(p.blocking.mr, CHUNK_BYTES // max(1, k * dtype.np_dtype.itemsize)
                // p.blocking.mr * p.blocking.mr)
    buffer = b.alloca(elem, size=i64(chunk * max(k, 1)))  # (entry block: one per call)
    buffer.align = 64
    core_fn = declare(module, p.blocking.name, CORE_TYPE)
    with for_range(b, r0, r1, i64(chunk), name="chunk") as start:
        stop = smin(b, b.add(start, i64(chunk)), r1)
        _gather(b, core, x_ptr, buffer, start, stop, elem)
        # row r of the chunk is at buffer + (r - start) * K
        a = b.gep(buffer, [b.mul(b.sub(i64(0), start), i64(k))], source_etype=elem)
        b.call(core_fn, [a, i64(k), i64(1), w_ptr, i64(n), i64(1), out, i64(n), i64(k),
                         start, stop, c0, c1, ir.Constant(PTR, None)])
    view_region, view = _epilogue_region(region, core, out_type)
    view_inputs = {view[p_]: ptr for p_, ptr in inputs.items()}
    kernels.emit_epilogue(b, view_region, core, out, view_inputs,
                          TensorType(dtype, (m, n)), (r0, r1), (c0, c1))
    b.ret_void()
    gemm._emit_units(f.b, rect, f.table, p)
    return kernels.KernelInfo("contraction", p.units, 2 * p.row_block * p.col_block * max(k, 1))


def _gather(b: ir.IRBuilder, core: Instr, x_ptr, buffer, start, stop, elem) -> None:
    """buffer[r - start, (i*KW + j)*CI + c] = x[n, oy*sh + i*dh - top, ox*sw + j*dw - left, c]
    (0 outside the input) for the rows r in [start, stop)."""
    wh, ww, (kh, kw, ci, _co) = _geometry(core)
    x_type = core.operands[0].type
    _n, height, width, _c = x_type.shape
    k = kh * kw * ci
    zero = ir.Constant(elem, 0.0)
    base = buffer
    with kernels.loop_range(b, start, stop, "r") as r:
        image = b.sdiv(r, i64(wh.out * ww.out))
        rest = b.srem(r, i64(wh.out * ww.out))
        oy, ox = b.sdiv(rest, i64(ww.out)), b.srem(rest, i64(ww.out))
        row = b.mul(b.sub(r, start), i64(k))
        for i in range(kh):
            y = b.add(b.mul(oy, i64(wh.stride)), i64(i * wh.dilation - wh.before))
            y_in = b.and_(b.icmp_signed(">=", y, i64(0)), b.icmp_signed("<", y, i64(height)))
            for j in range(kw):
                z = b.add(b.mul(ox, i64(ww.stride)), i64(j * ww.dilation - ww.before))
                inside = b.and_(y_in, b.and_(b.icmp_signed(">=", z, i64(0)),
                                             b.icmp_signed("<", z, i64(width))))
                dst = b.add(row, i64((i * kw + j) * ci))
                src = b.mul(b.add(b.mul(b.add(b.mul(image, i64(height)), y), i64(width)), z),
                            i64(ci))
                with b.if_else(inside) as (copy, fill):
                    with copy:
                        with kernels.loop(b, ci, "c") as c:
                            value = b.load(b.gep(x_ptr, [b.add(src, c)], source_etype=elem),
                                           typ=elem)
                            b.store(value, b.gep(base, [b.add(dst, c)], source_etype=elem))
                    with fill:
                        with kernels.loop(b, ci, "c") as c:
                            b.store(zero, b.gep(base, [b.add(dst, c)], source_etype=elem))


schedule.GEMM_VIEWS["conv2d"] = gemm_view
registry.register_emitter(kernels.TARGET, emit_conv2d, op="Conv2D")
