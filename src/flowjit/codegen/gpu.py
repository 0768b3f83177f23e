"""GPU building blocks in LLVM IR for the NVPTX backend: thread and block indices (widened to
64 bits), grid-stride loops, static shared memory, barriers, warp shuffles and block-wide
reductions. The PTX emitters (ptx_kernels.py, ptx_gemm.py) are written with these; NVPTX
spells them (`%tid.x`, `.shared`, `bar.sync`, `shfl.sync.down.b32`), nothing here is PTX text.

Every index is an i64: a kernel over more than 2^31 elements must not wrap. Blocks are
one-dimensional (`Launch`), their sizes multiples of the warp, so that every warp is full and
the shuffles' full-warp mask is right.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, List, Sequence

from llvmlite import ir

from flowjit.codegen import simd

I32 = ir.IntType(32)
I64 = ir.IntType(64)
WARP = 32
SHARED = 3  # NVPTX's address space of a block's shared memory
FULL_WARP = ir.Constant(I32, -1)  # every lane of the warp takes part in a shuffle


@dataclass(frozen=True)
class Launch:
    """How a kernel is launched, read from its schedule's tiles (PTXTarget.launch): a
    one-dimensional grid of `grid` blocks of `block` threads. `shared_bytes` is the static
    shared memory the kernel declares (it needs no dynamic shared memory). Any grid size
    computes the whole kernel (the loops over blocks' work are grid-strided); `grid` is the
    size the target chose."""

    grid: int
    block: int
    shared_bytes: int = 0


def sreg(b: ir.IRBuilder, register: str) -> ir.Value:
    """A PTX special register (tid.x, ntid.x, ctaid.x, nctaid.x), widened to i64."""
    name = f"llvm.nvvm.read.ptx.sreg.{register}"
    fn = simd.declare(b.module, name, ir.FunctionType(I32, []))
    return b.zext(b.call(fn, []), I64)


def thread(b: ir.IRBuilder) -> ir.Value:
    return sreg(b, "tid.x")


def lane_and_warp(b: ir.IRBuilder) -> tuple:
    """(lane within the warp, warp within the block) of this thread."""
    t = thread(b)
    return b.urem(t, simd.i64(WARP)), b.udiv(t, simd.i64(WARP))


@contextlib.contextmanager
def grid_stride_loop(b: ir.IRBuilder, count: int) -> Iterator[ir.Value]:
    """for (i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x *
    blockDim.x): any grid size covers any count."""
    first = b.add(b.mul(sreg(b, "ctaid.x"), sreg(b, "ntid.x")), thread(b))
    step = b.mul(sreg(b, "nctaid.x"), sreg(b, "ntid.x"))
    with simd.for_range(b, first, simd.i64(count), step=step, name="g") as index:
        yield index


@contextlib.contextmanager
def block_stride_loop(b: ir.IRBuilder, count: int) -> Iterator[ir.Value]:
    """for (g = blockIdx.x; g < count; g += gridDim.x): each block takes whole units of work
    (rows, outputs, tiles). The trip count is the same for all threads of a block, so the
    body may hold barriers."""
    with simd.for_range(b, sreg(b, "ctaid.x"), simd.i64(count), step=sreg(b, "nctaid.x"),
                        name="blk") as index:
        yield index


@contextlib.contextmanager
def thread_stride_loop(b: ir.IRBuilder, first: ir.Value, count: ir.Value,
                       step: int, name: str = "t") -> Iterator[ir.Value]:
    """for (i = first; i < count; i += step): a thread's share of a block's work."""
    with simd.for_range(b, first, count, step=simd.i64(step), name=name) as index:
        yield index


def unflatten(b: ir.IRBuilder, index: ir.Value, shape: Sequence[int]) -> List[ir.Value]:
    """Row-major coordinates of a flat index (divisions by constants: multiplies)."""
    coordinates = []
    for d in reversed(shape):
        extent = simd.i64(d)
        coordinates.append(b.urem(index, extent))
        index = b.udiv(index, extent)
    return coordinates[::-1]


# -- shared memory and barriers -----------------------------------------------------------------
class SharedArray:
    """A block's `count` elements of `elem` in shared memory (a static addrspace(3) global)."""

    def __init__(self, b: ir.IRBuilder, name: str, elem: ir.Type, count: int) -> None:
        module = b.module
        array = ir.ArrayType(elem, count)
        var = module.globals.get(name)
        if var is None:
            var = ir.GlobalVariable(module, array, name, addrspace=SHARED)
            var.linkage = "internal"
            var.initializer = ir.Constant(array, ir.Undefined)
            var.align = 16
        self.elem, self.count = elem, count
        with b.goto_entry_block():
            self.base = b.gep(var, [ir.Constant(I32, 0), ir.Constant(I32, 0)])

    def load(self, b: ir.IRBuilder, at: ir.Value) -> ir.Value:
        return b.load(b.gep(self.base, [at]))

    def store(self, b: ir.IRBuilder, value: ir.Value, at: ir.Value) -> None:
        b.store(value, b.gep(self.base, [at]))


def shared_bytes(module: ir.Module) -> int:
    """The static shared memory a module's kernels declare."""
    total = 0
    for var in module.global_values:
        if isinstance(var, ir.GlobalVariable) and var.type.addrspace == SHARED:
            array = var.value_type
            total += array.count * _bytes(array.element)
    return total


def _bytes(t: ir.Type) -> int:
    return 8 if isinstance(t, ir.DoubleType) else 4 if isinstance(t, ir.FloatType) \
        else max(1, t.width // 8)


def barrier(b: ir.IRBuilder) -> None:
    """__syncthreads(): every thread of the block waits here (bar.sync 0)."""
    fn = simd.declare(b.module, "llvm.nvvm.barrier.cta.sync.aligned.all",
                      ir.FunctionType(ir.VoidType(), [I32]))
    b.call(fn, [ir.Constant(I32, 0)])


# -- warp shuffles and block reductions ---------------------------------------------------------
def shuffle_down(b: ir.IRBuilder, value: ir.Value, delta: int) -> ir.Value:
    """The value of lane (this lane + delta) of the warp (this lane's own past the end); any
    scalar type: 64-bit values move as two 32-bit halves, narrower ones widened."""
    t = value.type
    if isinstance(t, ir.FloatType):
        return _shfl(b, "f32", value, delta)
    if isinstance(t, ir.DoubleType):
        return b.bitcast(shuffle_down(b, b.bitcast(value, I64), delta), t)
    if t.width == 32:
        return _shfl(b, "i32", value, delta)
    if t.width == 64:
        low = _shfl(b, "i32", b.trunc(value, I32), delta)
        high = _shfl(b, "i32", b.trunc(b.lshr(value, simd.i64(32)), I32), delta)
        return b.or_(b.zext(low, I64), b.shl(b.zext(high, I64), simd.i64(32)))
    return b.trunc(_shfl(b, "i32", b.zext(value, I32), delta), t)


def _shfl(b: ir.IRBuilder, suffix: str, value: ir.Value, delta: int) -> ir.Value:
    fn = simd.declare(b.module, f"llvm.nvvm.shfl.sync.down.{suffix}",
                      ir.FunctionType(value.type, [I32, value.type, I32, I32]))
    return b.call(fn, [FULL_WARP, value, ir.Constant(I32, delta), ir.Constant(I32, WARP - 1)])


Combine = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def warp_reduce(b: ir.IRBuilder, value: ir.Value, combine: Combine) -> ir.Value:
    """Tree reduction over the warp's 32 lanes by shuffles (16, 8, 4, 2, 1 apart); lane 0
    ends with the whole warp's value. Every lane of the warp must get here."""
    delta = WARP // 2
    while delta:
        value = combine(b, value, shuffle_down(b, value, delta))
        delta //= 2
    return value


def block_reduce(b: ir.IRBuilder, value: ir.Value, combine: Combine, identity: ir.Value,
                 threads: int, name: str) -> ir.Value:
    """The whole block's value, in every thread: a warp reduction, the warps' values through
    shared memory, a warp reduction of those in warp 0, then the total broadcast from a
    slot of its own (so that a next block_reduce may start before all threads read it).
    Every thread of the block must get here."""
    warps = threads // WARP
    lane, warp = lane_and_warp(b)
    partials = SharedArray(b, f"{name}_{value.type}", value.type, WARP + 1)
    value = warp_reduce(b, value, combine)
    with b.if_then(b.icmp_unsigned("==", lane, simd.i64(0))):
        partials.store(b, value, warp)
    barrier(b)
    with b.if_then(b.icmp_unsigned("==", warp, simd.i64(0))):  # all of warp 0, uniformly
        own = b.select(b.icmp_unsigned("<", lane, simd.i64(warps)),
                       partials.load(b, b.select(b.icmp_unsigned("<", lane, simd.i64(warps)),
                                                 lane, simd.i64(0))), identity)
        total = warp_reduce(b, own, combine)
        with b.if_then(b.icmp_unsigned("==", lane, simd.i64(0))):
            partials.store(b, total, simd.i64(WARP))
    barrier(b)
    return partials.load(b, simd.i64(WARP))
