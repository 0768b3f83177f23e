"""C = op(A) @ op(B), BLIS-style: packed panels, cache blocks, register tiles, in LLVM IR.

The shape-generic GEMM core (one per dtype and target) is compiled once per process and kept
in the disk cache; each matmul kernel calls its functions by symbol name (`Blocking.name`),
so a new batch size recompiles only the small per-shape kernel.

The core computes a rectangle C[r0:r1, c0:c1] (a kernel's share of the work) as

    for jc in c0..c1 step NC:                  a block of B (KC x NC) stays in L2
      for pc in 0..K step KC:
        for ir in r0..r1 step MR:              pack A's MR x KC micro-panel (stays in L1)
          for jr in jc..jc+NC step NR:         B's KC x NR micro-panels stream from L2
            MR x NR register tile (=, then +=) A micro-panel @ B micro-panel

with the tile's MR * NR/lanes accumulators in vector registers for the whole KC loop: per k,
NR/lanes vector loads of B, and for each of the MR rows one broadcast of A and NR/lanes fused
multiply-adds. Tile shapes follow the target (`blocking`): 2 vectors wide, and as many rows
as the vector registers allow (accumulators + the B vectors + a broadcast): 14 x 32 floats
with AVX-512's 32 registers, 6 x 16 with AVX2's 16. KC is sized so that an A and a B
micro-panel together fill L1 (KC = 256 floats with 48 KiB), NC so that a B block fills half
of L2 (1024 columns with 2 MiB): measured on Emerald Rapids at 1024^3, KC = 256 beat 432
(L1 / 2 for A's panel alone) by 4%, and 128 or 320 by 2-5%.

Packing. A's micro-panel is copied (per call, onto the stack) to rows of a fixed stride, so
the tile reads its MR rows at constant offsets from one pointer, without the set conflicts
of a power-of-two leading dimension; a transposed A is transposed in registers on the way.
B is packed into NR-wide column panels, each K x NR contiguous and zero-padded at the
ragged right edge; B^T is transposed in registers. When the kernel's units are shared
across cores, B is packed once per matmul before the shares run (the kernel's `prepare`,
itself split by panels). When it runs whole on one thread (`alone`), the core packs each
KC x NC block of B just before its tiles, into the first KC x NC of the scratch, which stays
in L2: the whole of a packed 1024 x 1024 B went out to L3 and came back, 10% of a 256-row
GEMM's time (AVX2, one core: 256x1024x1024 went from 0.85x to 0.96x numpy). A B that fits
in L2 with rows shorter than 1 KiB, or few rows of A, use B where it is: packing would cost
more than it saves (`plan`). Rows left over after the last full tile run as tiles of 8, 4,
2, 1 rows, which over a B in place are up to 8 vectors wide (a GEMV reads long runs of B's
rows); the ragged right edge uses masked vector loads and stores. One or two rows of A
times B^T are dot products along K instead (gemm_dot.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from llvmlite import ir

from flowjit.codegen import kernels
from flowjit.codegen.gemm_core import CORE_TYPE, PACK_B_TYPE, Blocking, blocking
from flowjit.codegen.gemm_dot import DOT_TYPE
from flowjit.codegen.simd import ALIGN, I1, I64, PTR, aligned, declare, i64, smin
from flowjit.codegen.schedule import Schedule

__all__ = ["Blocking", "GemmPlan", "blocking", "emit_matmul", "plan"]


# -- the per-shape plan ---------------------------------------------------------------------
# B is packed when it is larger than a cache block (KC x NC, half of L2) and A has at least
# this many row tiles; else each row tile reads B where it is (measured, 1 core, Emerald
# Rapids, AVX-512 and AVX2: a B of 784 x 256 fits L2 and in place is 4-10% faster up to 1024
# rows; a B of 1024 x 1024 packed ties at 64 rows and is 10-15% faster from 256 rows).
PACK_B_MIN_ROW_TILES = 8
# ... and when its rows are this long, whatever its size: a tile reading B in place then
# steps into another page every 4 (or every) k, past where the hardware prefetchers stop.
# Measured, 1 core, Emerald Rapids, A/B in one process: 1024x256x1024 with A^T 0.69x ->
# 0.96x numpy on AVX2, 0.86x -> 1.02x on AVX-512; 512x512x256 0.94x -> 0.99x and
# 1024x784x256 0.91x -> 0.96x on AVX-512 with 1 KiB rows; 512-byte rows gained nothing.
PACK_B_ROW_BYTES = 1024
# A @ B^T with at most this many rows of A is dot products (gemm_dot.py), not tiles over
# a packed B^T: packing would cost as much as the product (if K is at least 2 vectors: a dot
# product's sum across lanes costs a few vectors' FMAs). Each row of A reads all of B^T,
# so more rows lose once B^T is out of L2 (measured, AVX2, 1 core: 1x1024x1024 496 -> 165
# us, numpy 174; 2 rows 516 -> 339, numpy 548; 4 rows 545 -> 675, numpy 503).
DOT_MAX_ROWS = 2
# Kernels split their work into about this many units, so that shares can balance.
TARGET_UNITS = 16


@dataclass(frozen=True)
class GemmPlan:
    """How one matmul shape runs: whether B is packed, and the units its kernel's work is
    split into (row blocks x column blocks, row-major), shares of which run on cores."""

    m: int
    n: int
    k: int
    transpose_a: bool
    transpose_b: bool
    blocking: Blocking
    pack_b: bool
    row_block: int
    col_block: int
    dot: bool = False  # rows of A times rows of B^T, in place (gemm_dot.py)

    @property
    def row_blocks(self) -> int:
        return -(-self.m // self.row_block)

    @property
    def col_blocks(self) -> int:
        return -(-self.n // self.col_block)

    @property
    def units(self) -> int:
        return self.row_blocks * self.col_blocks if self.m and self.n else 0

    @property
    def panels(self) -> int:
        return -(-self.n // self.blocking.nr)

    @property
    def scratch_bytes(self) -> int:
        if not self.pack_b:
            return 0
        return self.panels * self.blocking.nr * self.k * self.blocking.itemsize + ALIGN


def plan(m: int, n: int, k: int, transpose_a: bool, transpose_b: bool,
         blocks: Blocking) -> GemmPlan:
    """Picks, for one shape, dot products (few rows times B^T), or B packed or in place;
    and the kernel's units: whole row tiles when there are TARGET_UNITS of them, else row
    x column blocks."""
    mr, nr = blocks.mr, blocks.nr
    worth_packing = k * n > blocks.kc * blocks.nc or n * blocks.itemsize >= PACK_B_ROW_BYTES
    dot = (transpose_b and m <= DOT_MAX_ROWS and k >= 2 * blocks.lanes
           and (m == 1 or not transpose_a))
    pack_b = k > 0 and not dot and (
        transpose_b or (worth_packing and m >= PACK_B_MIN_ROW_TILES * mr))
    row_tiles = -(-m // mr) if m else 1
    if row_tiles >= TARGET_UNITS:  # shares of whole row tiles
        return GemmPlan(m, n, k, transpose_a, transpose_b, blocks, pack_b, mr, max(n, 1),
                        dot)
    # few rows: blocks of columns too (2-D); rows in whole tiles, or all in one block
    row_block = mr if m >= 2 * mr else max(m, 1)
    row_blocks = -(-m // row_block) if m else 1
    panels = max(1, -(-n // nr))
    col_blocks = min(panels, -(-TARGET_UNITS // row_blocks))
    col_block = -(-panels // col_blocks) * nr
    return GemmPlan(m, n, k, transpose_a, transpose_b, blocks, pack_b, row_block, col_block,
                    dot)


def plan_of(sched: Schedule, target) -> GemmPlan:
    """The plan that a contraction's schedule's tiles (CPUTarget.tiles) describe."""
    m, n, k = sched.space
    t = sched.tiles
    blocks = blocking(sched.instr.results[0].type.dtype, target)
    if (t["mr"], t["nr"], t["kc"], t["nc"]) != (blocks.mr, blocks.nr, blocks.kc, blocks.nc):
        raise ValueError(f"the schedule's GEMM tiles {t} are not this target's {blocks}")
    return GemmPlan(m, n, k, sched.facts["transpose_a"], sched.facts["transpose_b"], blocks,
                    bool(t["pack_b"]), t["row_block"], t["col_block"], bool(t["dot"]))


def emit_matmul(f: "kernels.Frame", sched: Schedule) -> "kernels.KernelInfo":
    """The body of the contraction kernel `f.name`: C = op(A) @ op(B) through the core,
    then the fused epilogue on the part of C just computed. The kernel's [begin, end)
    counts the plan's units (blocks of rows x blocks of columns, row-major);
    `name_rect(buffers, r0, r1, c0, c1, packs_blocks)` computes one rectangle, and a range
    of units is at most three rectangles. A packed B is packed by the kernel's prepare
    function before its shares run, or, when the kernel runs whole on one thread (its
    `alone` function: the same units and rectangles), block by block by the core."""
    module, name, b, region = f.module, f.name, f.b, f.region
    mm = sched.facts["core"]
    out_type = sched.instr.results[0].type
    a_val, b_val = mm.operands
    p = plan_of(sched, f.target)
    k = p.k
    b_index = 1 + region.params.index(b_val)
    scratch_index = 1 + len(region.params)

    rect = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] + [I64] * 4 + [I1]),
                       name + "_rect")
    rect.linkage = "internal"
    rect.attributes.add("noinline")  # (called by both entries: one copy of the epilogue)
    rb = ir.IRBuilder(rect.append_basic_block("entry"))
    pointers = [rb.load(rb.gep(rect.args[0], [i64(i)], source_etype=PTR), typ=PTR)
                for i in range(scratch_index + 1)]
    out, inputs = pointers[0], dict(zip(region.params, pointers[1:]))
    r0, r1, c0, c1, packs_blocks = rect.args[1:]
    _emit_rect(rb, p, inputs[a_val], inputs[b_val], pointers[scratch_index], out,
               r0, r1, c0, c1, packs_blocks)
    kernels.emit_epilogue(rb, region, mm, out, inputs, out_type, (r0, r1), (c0, c1))
    rb.ret_void()
    _emit_units(b, rect, f.table, p, [ir.Constant(I1, 0)])

    prepare = alone = None
    if p.pack_b:
        prepare, alone = name + "_prepare", name + "_alone"
        _emit_prepare(module, prepare, b_index, scratch_index, p)
        fn = ir.Function(module, kernels.KERNEL_TYPE, alone)
        ab = ir.IRBuilder(fn.append_basic_block("entry"))
        _emit_units(ab, rect, fn.args[0], p, [ir.Constant(I1, 1)])
        ab.ret_void()
    return kernels.KernelInfo("contraction", p.units, 2 * p.row_block * p.col_block * max(k, 1),
                              p.scratch_bytes, prepare=prepare, prepare_extent=p.panels,
                              prepare_work=p.blocking.nr * k, alone=alone)


def _emit_pack_b(b: ir.IRBuilder, p: GemmPlan, b_ptr: ir.Value, scratch: ir.Value,
                 begin: ir.Value, end: ir.Value) -> None:
    """Packs B's panels [begin, end) into the scratch (the kernel's prepare function)."""
    fn = declare(b.module, p.blocking.pack_b_name, PACK_B_TYPE)
    k_stride, col_stride = (1, p.k) if p.transpose_b else (p.n, 1)
    b.call(fn, [b_ptr, i64(k_stride), i64(col_stride), aligned(b, scratch), i64(p.k),
                i64(p.n), begin, end])


def _emit_rect(b: ir.IRBuilder, p: GemmPlan, a_ptr: ir.Value, b_ptr: ir.Value,
               scratch: ir.Value, c_ptr: ir.Value, r0: ir.Value, r1: ir.Value, c0: ir.Value,
               c1: ir.Value, packs_blocks: ir.Value) -> None:
    """C[r0:r1, c0:c1] through the core (c0 a multiple of NR): B in place, or packed, by
    the prepare function into the scratch, or (`packs_blocks`, an i1) block by block by
    the core into the scratch."""
    if p.dot:  # (A^T only with one row: its row is contiguous too)
        fn = declare(b.module, p.blocking.dot_name, DOT_TYPE)
        b.call(fn, [a_ptr, i64(p.k), b_ptr, i64(p.k), c_ptr, i64(p.n), i64(p.k),
                    r0, r1, c0, c1])
        return
    fn = declare(b.module, p.blocking.name, CORE_TYPE)
    a_strides = (1, p.m) if p.transpose_a else (p.k, 1)
    if p.pack_b:  # (the source and strides of B packed by prepare, or of B itself)
        packed = aligned(b, scratch)
        source = b.select(packs_blocks, b_ptr, packed)
        by_core = (1, p.k) if p.transpose_b else (p.n, 1)
        b_strides = [b.select(packs_blocks, i64(x), i64(y))
                     for x, y in zip(by_core, (p.blocking.nr, p.k))]
        buffer = b.select(packs_blocks, packed, ir.Constant(PTR, None))
    else:
        source, b_strides, buffer = b_ptr, [i64(p.n), i64(1)], ir.Constant(PTR, None)
    b.call(fn, [a_ptr, *map(i64, a_strides), source, *b_strides, c_ptr,
                i64(p.n), i64(p.k), r0, r1, c0, c1, buffer])


def _emit_units(b: ir.IRBuilder, rect: ir.Function, buffers: ir.Value, p: GemmPlan,
                extra: Sequence[ir.Value] = ()) -> None:
    """Calls `rect(buffers, r0, r1, c0, c1, *extra)` on the rectangles that units
    [begin, end) make up."""
    begin, end = b.function.args[1:]
    extra = list(extra)
    const = i64

    def rows_of(first, last):  # row blocks [first, last)
        return b.mul(first, const(p.row_block)), smin(b, b.mul(last, const(p.row_block)),
                                                       const(p.m))

    if p.col_blocks == 1:
        b.call(rect, [buffers, *rows_of(begin, end), const(0), const(p.n)] + extra)
        return
    per_row = const(p.col_blocks)

    def part(row_block, first, last):  # column blocks [first, last) of one row block
        r0, r1 = rows_of(row_block, b.add(row_block, const(1)))
        c1 = smin(b, b.mul(last, const(p.col_block)), const(p.n))
        b.call(rect, [buffers, r0, r1, b.mul(first, const(p.col_block)), c1] + extra)

    whole_first = b.sdiv(b.add(begin, const(p.col_blocks - 1)), per_row)
    whole_end = b.sdiv(end, per_row)  # row blocks [whole_first, whole_end) are whole
    with b.if_else(b.icmp_signed(">", whole_first, whole_end)) as (inside_one, other):
        with inside_one:
            base = b.mul(whole_end, per_row)
            part(whole_end, b.sub(begin, base), b.sub(end, base))
        with other:
            head = b.mul(whole_first, per_row)
            with b.if_then(b.icmp_signed("<", begin, head)):
                before = b.sub(whole_first, const(1))
                part(before, b.sub(begin, b.mul(before, per_row)), per_row)
            with b.if_then(b.icmp_signed("<", whole_first, whole_end)):
                b.call(rect, [buffers, *rows_of(whole_first, whole_end), const(0),
                              const(p.n)] + extra)
            tail = b.mul(whole_end, per_row)
            with b.if_then(b.icmp_signed("<", tail, end)):
                part(whole_end, const(0), b.sub(end, tail))


def _emit_prepare(module: ir.Module, name: str, b_index: int, scratch_index: int,
                  p: GemmPlan) -> None:
    """`void name(ptr* buffers, i64 begin, i64 end)`: packs panels [begin, end) of the
    matmul's B into scratch."""
    fn = ir.Function(module, kernels.KERNEL_TYPE, name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    pointers = [b.load(b.gep(fn.args[0], [i64(i)], source_etype=PTR), typ=PTR)
                for i in (b_index, scratch_index)]
    _emit_pack_b(b, p, pointers[0], pointers[1], *fn.args[1:])
    b.ret_void()


