"""The GPU's contraction: C = op(A) @ op(B), tiled through shared memory, then the fused
epilogue in registers.

The output is cut into BM x BN tiles (the schedule's tiles `bm`, `bn`: 64 x 64); blocks
stride over them. A block's threads form a (BM/TM) x (BN/TN) grid, and each computes a
TM x TN register tile (4 x 4) of the output tile, at rows ty + i*(BM/TM) and columns
tx + j*(BN/TN): a warp's 32 threads read 16 consecutive columns of B's shared tile
(no bank conflicts) and 2 rows of A's (broadcasts), and store 16 consecutive columns of C.
Per K tile (`bk`: 16):

    bar.sync                                 (the previous K tile has been used)
    A[row0:row0+BM, k0:k0+BK] -> shared, B[k0:k0+BK, col0:col0+BN] -> shared
    bar.sync
    for kk < BK: TM loads of A, TN loads of B, TM x TN fused multiply-adds

Threads load the tiles in the order the matrix lies in memory (along k for A, along n for B,
and the other way round when transposed), so a warp's loads are consecutive addresses; the
shared tiles are stored k-major with one element of padding per row. Outside the matrices
(ragged edges, any m, n and k, k = 0 included) the tiles hold zeros, and a load never
reaches past a matrix. After the K loop each thread evaluates the epilogue (bias,
activation, update: `Schedule.epilogue`, the core's result known as its accumulator) on its
elements and stores those inside C.
"""
from __future__ import annotations

from llvmlite import ir

from flowjit.codegen import gpu, scalar
from flowjit.codegen.gpu import SharedArray, barrier
from flowjit.codegen.kernels import Region, load, store
from flowjit.codegen.schedule import Schedule
from flowjit.codegen.simd import for_range, i64

# The tiles (PTXTarget.tiles reads them from here): output tile, K tile, register tile.
BM, BN, BK, TM, TN = 64, 64, 16, 4, 4
THREADS = (BM // TM) * (BN // TN)


def shared_elements() -> int:
    """Elements of shared memory a block uses: both tiles, padded rows."""
    return BK * (BM + 1) + BK * (BN + 1)


def emit_contraction(b: ir.IRBuilder, sched: Schedule, args, a_element=None,
                     epilogue=None, inputs=None) -> None:
    """The tiled GEMM. A convolution passes `a_element` (A's element at (row, col): its
    im2col patch, gathered), and its epilogue region and inputs over the [M, N] view."""
    core = sched.facts["core"]
    m, n, k = sched.space
    tiles = sched.tiles
    bm, bn, bk, tm, tn = (tiles[key] for key in ("bm", "bn", "bk", "tm", "tn"))
    threads = tiles["block"]
    dtype = sched.instr.result.type.dtype
    elem = scalar.llvm_type(dtype)
    pointers = dict(zip(sched.params, args[1:]))
    inputs = pointers if inputs is None else inputs
    a_ptr, b_ptr = (pointers[v] for v in core.operands)
    a_tile = SharedArray(b, "a_tile", elem, bk * (bm + 1))  # [kk][i]
    b_tile = SharedArray(b, "b_tile", elem, bk * (bn + 1))  # [kk][j]
    t = gpu.thread(b)
    thread_cols = bn // tn
    tx, ty = b.urem(t, i64(thread_cols)), b.udiv(t, i64(thread_cols))
    row_step, col_step = bm // tm, bn // tn
    zero = ir.Constant(elem, 0.0)
    with b.goto_entry_block():  # the register tile (promoted to registers)
        accumulators = [b.alloca(elem) for _ in range(tm * tn)]
    tiles_n = -(-n // bn)
    with gpu.block_stride_loop(b, -(-m // bm) * tiles_n) as tile:
        row0 = b.mul(b.udiv(tile, i64(tiles_n)), i64(bm))
        col0 = b.mul(b.urem(tile, i64(tiles_n)), i64(bn))
        for slot in accumulators:
            b.store(zero, slot)
        with for_range(b, i64(0), i64(-(-k // bk)), name="kt") as kt:
            k0 = b.mul(kt, i64(bk))
            barrier(b)
            _load_tile(b, a_tile, a_ptr, dtype, t, threads, row0, m, k0, k, bm, bk,
                       k_contiguous=not sched.facts["transpose_a"], element=a_element)
            _load_tile(b, b_tile, b_ptr, dtype, t, threads, col0, n, k0, k, bn, bk,
                       k_contiguous=sched.facts["transpose_b"])
            barrier(b)
            sums = [b.load(slot) for slot in accumulators]
            for kk in range(bk):
                a = [a_tile.load(b, b.add(ty, i64(kk * (bm + 1) + i * row_step)))
                     for i in range(tm)]
                w = [b_tile.load(b, b.add(tx, i64(kk * (bn + 1) + j * col_step)))
                     for j in range(tn)]
                sums = [scalar.call_intrinsic(b, "llvm.fma", [a[i], w[j], sums[i * tn + j]])
                        for i in range(tm) for j in range(tn)]
            for slot, value in zip(accumulators, sums):
                b.store(value, slot)
        epilogue = epilogue or Region(sched.params, sched.epilogue)
        for i in range(tm):
            row = b.add(row0, b.add(ty, i64(i * row_step)))
            for j in range(tn):
                col = b.add(col0, b.add(tx, i64(j * col_step)))
                inside = b.and_(b.icmp_unsigned("<", row, i64(m)),
                                b.icmp_unsigned("<", col, i64(n)))
                with b.if_then(inside):
                    value = b.load(accumulators[i * tn + j])
                    if sched.epilogue:
                        env = epilogue.evaluate(b, inputs, [row, col], [m, n],
                                                known={core.result: value})
                        value = env[epilogue.body[-1].result]
                    store(b, value, args[0], dtype, b.add(b.mul(row, i64(n)), col))


def _load_tile(b: ir.IRBuilder, tile: SharedArray, pointer: ir.Value, dtype, t: ir.Value,
               threads: int, first: ir.Value, extent: int, k0: ir.Value, k: int, size: int,
               bk: int, k_contiguous: bool, element=None) -> None:
    """tile[kk][i] = X[first + i, k0 + kk] (0 outside X) for i < size, kk < bk, where X is
    op(A) (rows along i) or op(B)^T, stored with k contiguous or with i contiguous;
    consecutive threads take consecutive addresses. `element(b, row, col, inside)` reads
    X's elements where X is not a matrix in memory (a convolution's patches)."""
    for q in range(size * bk // threads):
        flat = b.add(t, i64(q * threads))
        if k_contiguous:
            i, kk = b.udiv(flat, i64(bk)), b.urem(flat, i64(bk))
        else:
            i, kk = b.urem(flat, i64(size)), b.udiv(flat, i64(size))
        row, col = b.add(first, i), b.add(k0, kk)
        inside = b.and_(b.icmp_unsigned("<", row, i64(extent)), b.icmp_unsigned("<", col, i64(k)))
        if element is not None:
            value = element(b, row, col, inside)
        else:
            at = b.add(b.mul(row, i64(k)), col) if k_contiguous else \
                b.add(b.mul(col, i64(extent)), row)
            value = load(b, pointer, dtype, b.select(inside, at, i64(0)))
            value = b.select(inside, value, ir.Constant(value.type, 0.0))
        tile.store(b, value, b.add(b.mul(kk, i64(size + 1)), i))


def emit_convolution(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """conv2d (NHWC) as an implicit GEMM: the contraction above, out[M = N*OH*OW, CO] =
    patches[M, K = KH*KW*CI] @ filter[K, CO], with A's tiles gathered from the input (the
    im2col patch element, 0 over the padding) instead of read from a matrix; the epilogue
    reads its operands over the [M, CO] view of the output, as on the CPU (conv.py)."""
    from flowjit.codegen import conv
    core = sched.facts["core"]
    wh, ww, (kh, kw, ci, _co) = conv._geometry(core)
    x = core.operands[0]
    _n, height, width, _c = x.type.shape
    dtype = x.type.dtype
    x_ptr = dict(zip(sched.params, args[1:]))[x]

    def patch(b: ir.IRBuilder, row, col, inside):
        image, rest = b.udiv(row, i64(wh.out * ww.out)), b.urem(row, i64(wh.out * ww.out))
        oy, ox = b.udiv(rest, i64(ww.out)), b.urem(rest, i64(ww.out))
        tap, c = b.udiv(col, i64(ci)), b.urem(col, i64(ci))
        i, j = b.udiv(tap, i64(kw)), b.urem(tap, i64(kw))
        y = b.sub(b.add(b.mul(oy, i64(wh.stride)), b.mul(i, i64(wh.dilation))), i64(wh.before))
        z = b.sub(b.add(b.mul(ox, i64(ww.stride)), b.mul(j, i64(ww.dilation))), i64(ww.before))
        ok = inside
        for coordinate, extent in ((y, height), (z, width)):  # (unsigned: negative is huge)
            ok = b.and_(ok, b.icmp_unsigned("<", coordinate, i64(extent)))
        at = b.add(b.mul(b.add(b.mul(b.add(b.mul(image, i64(height)), y), i64(width)), z),
                         i64(ci)), c)
        value = load(b, x_ptr, dtype, b.select(ok, at, i64(0)))
        return b.select(ok, value, ir.Constant(value.type, 0.0))

    region, view = conv._epilogue_region(Region(sched.params, sched.epilogue), core,
                                         sched.instr.results[0].type)
    inputs = {view[p]: pointer for p, pointer in zip(sched.params, args[1:])}
    emit_contraction(b, sched, args, a_element=patch, epilogue=region, inputs=inputs)


def launch_tiles(dtype_bytes: int) -> dict:
    """The contraction's tiles (schedule tiles) and its static shared memory in bytes."""
    return {"bm": BM, "bn": BN, "bk": BK, "tm": TM, "tn": TN, "block": THREADS,
            "shared_bytes": shared_elements() * dtype_bytes}

