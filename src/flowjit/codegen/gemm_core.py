"""The shape-generic GEMM core: register tiles, the packing of A and B, and the loops
around them (codegen/gemm.py describes the design and calls it per shape). One core per
dtype and target (`Blocking`), compiled once per process; kernels call it by symbol name:

    core(A, a_row_stride, a_k_stride, B, b_k_stride, b_col_stride, C, ldc, k, r0, r1, c0, c1,
         b_buffer)
        C[r0:r1, c0:c1] = op(A)[r0:r1, :] @ B[:, c0:c1]. With a null b_buffer, B is packed
        (panels, b_col_stride = K) or in place (row-major, b_col_stride 1); else B is
        row-major or B^T, and the core packs each KC x NC block of it into b_buffer just
        before its tiles use it (there it stays in L2).
    pack_b(B, b_k_stride, b_col_stride, packed, k, n, panel_begin, panel_end)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import List

from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import gemm_dot, scalar
from flowjit.codegen.simd import (ALIGN, I1, I8, I32, I64, PTR, aligned, carried_loop,
                                  for_range, i64, lane_mask, masked_load, masked_store,
                                  prefetch, smin, splat, transpose, vector_intrinsic)

# void core(ptr A, i64 a_row_stride, i64 a_k_stride, ptr B, i64 b_k_stride, i64 b_col_stride,
#           ptr C, i64 ldc, i64 k, i64 r0, i64 r1, i64 c0, i64 c1, ptr b_buffer)
CORE_TYPE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, PTR, I64, I64, PTR] + [I64] * 6
                            + [PTR])
# void pack_b(ptr B, i64 b_k_stride, i64 b_col_stride, ptr packed, i64 k, i64 n,
#             i64 panel_begin, i64 panel_end)
PACK_B_TYPE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64, PTR] + [I64] * 4)


@dataclass(frozen=True)
class Blocking:
    """Register tile and cache blocks of the core for one dtype on one target."""

    dtype: dtypes.DType
    lanes: int    # elements per vector register
    vectors: int  # vectors per tile row
    mr: int       # rows per register tile
    kc: int       # depth of a block
    nc: int       # columns of a B block
    registers: int  # vector registers
    target: str   # names the CPU model and features: each target's core has its own symbols

    @property
    def nr(self) -> int:
        return self.vectors * self.lanes

    @property
    def itemsize(self) -> int:
        return self.dtype.np_dtype.itemsize

    @property
    def a_stride(self) -> int:
        """Row stride of a packed A micro-panel: KC and a cache line, so that its rows do
        not all fall into the same cache sets."""
        return self.kc + ALIGN // self.itemsize

    @property
    def name(self) -> str:
        return (f"flowjit_gemm_{self.target}_{self.dtype.ir_name}_{self.mr}x{self.nr}_k{self.kc}"
                f"_n{self.nc}")

    @property
    def pack_b_name(self) -> str:
        return self.name + "_pack_b"

    @property
    def dot_name(self) -> str:
        return self.name + "_dot"

    def wide(self, rows: int) -> int:
        """Vectors per row of a tile of `rows` rows over a B in place: as many as the
        registers hold (rows x vectors accumulators, the B vectors and a broadcast), up to
        8 (512 bytes of each row of B per k)."""
        return max(self.vectors, min(WIDE_VECTORS, (self.registers - 1) // (rows + 1)))

    @property
    def tile_rows(self) -> List[int]:
        """MR, then the powers of two below it: any leftover rows are a sum of those."""
        return [self.mr] + [1 << p for p in range(3, -1, -1) if 1 << p < self.mr]


def blocking(dtype: dtypes.DType, target) -> Blocking:
    """The tile and blocks for `dtype` from the target's capabilities (`lanes`,
    `vector_registers`, `cache_bytes`)."""
    itemsize = dtype.np_dtype.itemsize
    lanes = max(1, target.lanes * 4 // itemsize)
    vectors = 2
    # accumulators, the B vectors and one broadcast (AVX-512 folds it into the FMA; spare)
    mr = max(1, min(15, (target.vector_registers - vectors - 1) // vectors))
    nr = vectors * lanes
    # an A micro-panel and a B micro-panel together fill L1, and a k run of A's row is at
    # most 1 KiB (a B read in place with power-of-two rows then still fits in L2's sets)
    kc = min(target.cache_bytes[1] // ((mr + nr) * itemsize), 1024 // itemsize)
    kc = max(16, kc // 16 * 16)
    nc = target.cache_bytes[2] // 2 // (kc * itemsize)
    nc = max(nr, min(4096, nc // nr * nr))
    tag = hashlib.sha256(f"{target.cpu} {target.features}".encode()).hexdigest()[:8]
    return Blocking(dtype, lanes, vectors, mr, kc, nc, target.vector_registers, tag)


# k steps per iteration of a tile's k loop: the loop's own instructions (6 for one step of
# a 6x16 AVX2 tile's 20) amortized over more FMAs. Measured at 1024^3 on one core of Emerald
# Rapids: 4 steps beat 1 by 3-5% with both the AVX-512 (14x32) and AVX2 (6x16) tiles; 2 and
# 8 were no better than 4.
K_UNROLL = 4

# Bytes of each row of B that packing copies before the next row: a group of panels
# written together. All of them at once wrote every panel per row, streams K x NR apart
# (64 KiB for K = 1024 on AVX2: the same cache sets), at 7-8 GB/s.
PACK_GROUP_BYTES = 512

# Most vectors per row of a short tile over B in place
WIDE_VECTORS = 8


def emit_core(module: ir.Module, blocks: Blocking) -> List[str]:
    """Defines the core's functions in `module`; returns the names kernels call."""
    _CoreEmitter(module, blocks).emit()
    gemm_dot.emit_dot(module, blocks.dot_name, blocks.dtype, blocks.lanes)
    return [blocks.name, blocks.pack_b_name, blocks.dot_name]


class _CoreEmitter:
    """Emits one blocking's core into a module: its tiles, the packing functions, and the
    loops that call them."""

    def __init__(self, module: ir.Module, blocks: Blocking) -> None:
        self.module, self.blocks = module, blocks
        self.elem = scalar.llvm_type(blocks.dtype)
        self.vec = ir.VectorType(self.elem, blocks.lanes)
        self.fma = vector_intrinsic(module, "llvm.fma", self.vec, 3)

    def emit(self) -> None:
        blk = self.blocks
        tiles = {}
        for mr in blk.tile_rows:
            tiles[mr, blk.vectors, False] = self._tile(mr, blk.vectors, False)
            tiles[mr, blk.vectors, True] = self._tile(mr, blk.vectors, True)
            tiles[mr, 1, True] = self._tile(mr, 1, True)  # an edge of one vector (N = 10)
            if blk.wide(mr) > blk.vectors:
                tiles[mr, blk.wide(mr), False] = self._tile(mr, blk.wide(mr), False)
        pack_a = self._pack_a()
        self._core(tiles, pack_a, self._pack_b())

    # -- the register tile ----------------------------------------------------------------
    def _tile(self, mr: int, vectors: int, edge: bool) -> ir.Function:
        """`tile(a, b, b_k_stride, c, ldc, kc, accumulate[, cols])`: C[0:mr, 0:w] (= or +=)
        A micro-panel (mr rows at the packed stride) @ B micro-panel (kc rows of w at
        b_k_stride), w = vectors x lanes. At the right `edge` only `cols` < w columns of B
        are read (masked: a B in place ends there) and of C written."""
        blk, vec, lanes = self.blocks, self.vec, self.blocks.lanes
        args = [PTR, PTR, I64, PTR, I64, I64, I1] + ([I64] if edge else [])
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args),
                         f"{blk.name}_tile{mr}x{vectors}{'_edge' if edge else ''}")
        fn.linkage = "internal"
        fn.attributes.add("noinline")  # (called from many places: inlining takes LLVM long)
        for i in (0, 1, 3):
            fn.args[i].add_attribute("noalias")
        a, bp, b_stride, c, ldc, kc, accumulate = fn.args[:7]
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        masks = None
        if edge:
            masks = [lane_mask(b, b.sub(fn.args[7], i64(h * lanes)), vec)
                     for h in range(vectors)]
        rows = [b.gep(c, [b.mul(ldc, i64(r))], source_etype=self.elem) for r in range(mr)]
        fetch = prefetch(self.module)
        # C is read (or written) after the k loop: fetched meanwhile. (Measured on Emerald
        # Rapids: within noise, as is fetching B 4 or 8 k ahead, which is not done.)
        for row in rows:
            for line in range(0, vectors * lanes * blk.itemsize, ALIGN):
                b.call(fetch, [b.gep(row, [i64(line)], source_etype=I8),
                               ir.Constant(I32, 1), ir.Constant(I32, 3), ir.Constant(I32, 1)])
        # independent accumulator sets over k keep enough FMAs in flight for short tiles
        sets = max(1, min(4, -(-8 // (mr * vectors))))
        zero = ir.Constant(vec, [ir.Constant(self.elem, 0.0)] * lanes)
        count = mr * vectors

        def step(kk, accs, n_steps):
            out = list(accs)
            for s in range(n_steps):
                at = b.add(kk, i64(s)) if s else kk
                b_row = b.gep(bp, [b.mul(at, b_stride)], source_etype=self.elem)
                bvecs = []
                for h in range(vectors):
                    pointer = b.gep(b_row, [i64(h * lanes)], source_etype=self.elem)
                    bvecs.append(b.load(pointer, typ=vec, align=blk.itemsize) if masks is None
                                 else masked_load(b, pointer, vec, masks[h]))
                base = (s % sets) * count
                for r in range(mr):
                    pointer = b.gep(a, [b.add(at, i64(r * blk.a_stride))],
                                    source_etype=self.elem)
                    x = b.load(pointer, typ=self.elem, align=blk.itemsize)
                    x_splat = splat(b, x, vec)
                    for h in range(vectors):
                        i = base + r * vectors + h
                        out[i] = b.call(self.fma, [x_splat, bvecs[h], out[i]])
            return out

        unroll = max(sets, K_UNROLL)
        accs, kk = carried_loop(b, i64(0), kc, unroll, [zero] * (count * sets),
                                lambda kk, accs: step(kk, accs, unroll), "k")
        if unroll > 1:  # the last kc % unroll
            accs, _ = carried_loop(b, kk, kc, 1, accs, lambda kk, accs: step(kk, accs, 1),
                                   "krest")
        for s in range(1, sets):
            for i in range(count):
                accs[i] = b.fadd(accs[i], accs[s * count + i])
        accs = accs[:count]
        with b.if_else(accumulate) as (then, otherwise):
            with then:
                self._store_tile(b, rows, accs, vectors, masks, add=True)
            with otherwise:
                self._store_tile(b, rows, accs, vectors, masks, add=False)
        b.ret_void()
        return fn

    def _store_tile(self, b, rows, accs, vectors: int, masks, add: bool) -> None:
        blk = self.blocks
        for r, row in enumerate(rows):
            for h in range(vectors):
                pointer = b.gep(row, [i64(h * blk.lanes)], source_etype=self.elem)
                value = accs[r * vectors + h]
                if add:
                    old = (b.load(pointer, typ=self.vec, align=blk.itemsize) if masks is None
                           else masked_load(b, pointer, self.vec, masks[h]))
                    value = b.fadd(value, old)
                if masks is None:
                    b.store(value, pointer, align=blk.itemsize)
                else:
                    masked_store(b, value, pointer, masks[h])

    # -- packing --------------------------------------------------------------------------
    def _pack_a(self) -> ir.Function:
        """`pack_a(dst, src, row_stride, k_stride, rows, kc)`: dst[r * a_stride + kk] =
        src[r * row_stride + kk * k_stride] for r < rows, kk < kc."""
        blk = self.blocks
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, PTR] + [I64] * 4),
                         f"{blk.name}_pack_a")
        fn.linkage = "internal"
        fn.args[0].add_attribute("noalias")
        fn.args[1].add_attribute("noalias")
        dst, src, row_stride, k_stride, rows, kc = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        with b.if_else(b.icmp_signed("==", k_stride, i64(1))) as (rows_contiguous, other):
            # (A is row-major, k_stride 1, or transposed, row_stride 1)
            with rows_contiguous:  # a copy of each row
                with for_range(b, i64(0), rows, name="r") as r:
                    out = b.gep(dst, [b.mul(r, i64(blk.a_stride))], source_etype=self.elem)
                    row = b.gep(src, [b.mul(r, row_stride)], source_etype=self.elem)
                    with for_range(b, i64(0), kc, name="kk") as kk:
                        value = b.load(b.gep(row, [kk], source_etype=self.elem),
                                       typ=self.elem)
                        b.store(value, b.gep(out, [kk], source_etype=self.elem))
            with other:  # transposed A (unit row stride): lanes x lanes blocks transposed
                lanes = i64(blk.lanes)
                full = b.mul(b.sdiv(kc, lanes), lanes)
                for r0 in range(0, blk.mr, blk.lanes):
                    left = b.sub(rows, i64(r0))
                    with b.if_then(b.icmp_signed(">", left, i64(0))):
                        self._pack_a_transposed(b, dst, src, k_stride, r0, left, full)
                with for_range(b, full, kc, name="kt") as kk:  # the last kc % lanes
                    line = b.gep(src, [b.mul(kk, k_stride)], source_etype=self.elem)
                    with for_range(b, i64(0), rows, name="rt") as r:
                        value = b.load(b.gep(line, [b.mul(r, row_stride)],
                                             source_etype=self.elem), typ=self.elem)
                        at = b.add(b.mul(r, i64(blk.a_stride)), kk)
                        b.store(value, b.gep(dst, [at], source_etype=self.elem))
        b.ret_void()
        return fn

    def _pack_a_transposed(self, b, dst, src, k_stride, r0: int, left, full) -> None:
        """Rows [r0, r0 + min(lanes, left)) of the packed A from A^T's columns, for k in
        [0, full): vectors along A^T's rows (masked past its last column), transposed."""
        blk, vec, lanes = self.blocks, self.vec, self.blocks.lanes
        mask = lane_mask(b, left, vec)
        with for_range(b, i64(0), full, i64(lanes), name="kb") as k0:
            rows = []
            for i in range(lanes):
                line = b.gep(src, [b.add(b.mul(b.add(k0, i64(i)), k_stride), i64(r0))],
                             source_etype=self.elem)
                rows.append(masked_load(b, line, vec, mask))
            for j, value in enumerate(transpose(b, rows)):
                if r0 + j >= blk.mr:
                    break
                with b.if_then(b.icmp_signed("<", i64(j), left)):
                    at = b.add(i64((r0 + j) * blk.a_stride), k0)
                    b.store(value, b.gep(dst, [at], source_etype=self.elem),
                            align=blk.itemsize)

    def _pack_b(self) -> ir.Function:
        """`pack_b(B, k_stride, col_stride, packed, k, n, p0, p1)`: panels [p0, p1) of B,
        panel p = columns [p*NR, p*NR + NR) as k rows of NR (zeros past column n) at
        packed + p*k*NR. B is row-major (col_stride 1) or B^T (k_stride 1)."""
        blk, vec = self.blocks, self.vec
        fn = ir.Function(self.module, PACK_B_TYPE, blk.pack_b_name)
        fn.args[0].add_attribute("noalias")
        fn.args[3].add_attribute("noalias")
        src, k_stride, col_stride, packed, k, n, p0, p1 = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        nr = i64(blk.nr)
        with b.if_else(b.icmp_signed("==", col_stride, i64(1))) as (rows, transposed):
            with rows:  # a group of panels at a time, along B's rows
                whole = smin(b, p1, b.sdiv(n, nr))  # panels [p0, whole) have NR columns
                group = i64(PACK_GROUP_BYTES // (blk.nr * blk.itemsize) or 1)
                with for_range(b, p0, whole, group, name="pg") as first:
                    last = smin(b, whole, b.add(first, group))
                    with for_range(b, i64(0), k, name="kk") as kk:
                        line = b.gep(src, [b.mul(kk, k_stride)], source_etype=self.elem)
                        with for_range(b, first, last, name="p") as p:
                            self._copy_panel_row(b, line, packed, p, k, kk, None)
                ragged = b.select(b.icmp_signed("<", whole, p0), p0, whole)
                with for_range(b, ragged, p1, name="pe") as p:  # zero-padded past column n
                    cols = b.sub(n, b.mul(p, nr))
                    masks = [lane_mask(b, b.sub(cols, i64(h * blk.lanes)), vec)
                             for h in range(blk.vectors)]
                    with for_range(b, i64(0), k, name="ke") as kk:
                        line = b.gep(src, [b.mul(kk, k_stride)], source_etype=self.elem)
                        self._copy_panel_row(b, line, packed, p, k, kk, masks)
            with transposed:  # B^T's rows are B's columns: transposed in blocks
                with for_range(b, p0, p1, name="p") as p:
                    j0 = b.mul(p, nr)
                    cols = smin(b, nr, b.sub(n, j0))
                    panel = b.gep(packed, [b.mul(j0, k)], source_etype=self.elem)
                    column = b.gep(src, [b.mul(j0, col_stride)], source_etype=self.elem)
                    self._pack_transposed(b, column, col_stride, panel, k, cols)
        b.ret_void()
        return fn

    def _copy_panel_row(self, b, line, packed, p, k, kk, masks) -> None:
        """packed panel p's row kk = line[p*NR : p*NR + NR] (masked: zeros past the end)."""
        blk = self.blocks
        j0 = b.mul(p, i64(blk.nr))
        out = b.gep(packed, [b.add(b.mul(j0, k), b.mul(kk, i64(blk.nr)))],
                    source_etype=self.elem)
        for h in range(blk.vectors):
            at = b.add(j0, i64(h * blk.lanes))
            pointer = b.gep(line, [at], source_etype=self.elem)
            value = (b.load(pointer, typ=self.vec, align=blk.itemsize) if masks is None
                     else masked_load(b, pointer, self.vec, masks[h]))
            b.store(value, b.gep(out, [i64(h * blk.lanes)], source_etype=self.elem),
                    align=blk.itemsize)

    def _pack_transposed(self, b, column, col_stride, panel, k, cols) -> None:
        """A panel from B^T (unit k stride): lanes x lanes blocks loaded as rows of B^T
        and transposed in registers; the last k % lanes rows one element at a time."""
        blk, vec, lanes = self.blocks, self.vec, self.blocks.lanes
        nr = i64(blk.nr)
        full = b.mul(b.sdiv(k, i64(lanes)), i64(lanes))
        with for_range(b, i64(0), full, i64(lanes), name="kb") as k0:
            for h in range(blk.vectors):
                rows = []
                for r in range(lanes):
                    jj = i64(h * lanes + r)
                    line = b.gep(column, [b.add(b.mul(jj, col_stride), k0)],
                                 source_etype=self.elem)
                    inside = b.icmp_signed("<", jj, cols)  # else zeros (nothing read)
                    mask = splat(b, inside, ir.VectorType(I1, lanes))
                    rows.append(masked_load(b, line, vec, mask))
                for i, value in enumerate(transpose(b, rows)):
                    at = b.add(b.mul(b.add(k0, i64(i)), nr), i64(h * lanes))
                    b.store(value, b.gep(panel, [at], source_etype=self.elem),
                            align=blk.itemsize)
        with for_range(b, i64(0), nr, name="jj") as jj:
            inside = b.icmp_signed("<", jj, cols)
            line = b.gep(column, [b.mul(jj, col_stride)], source_etype=self.elem)
            with for_range(b, full, k, name="kt") as kk:
                at = b.gep(line, [kk], source_etype=self.elem)
                with b.if_else(inside) as (read, pad):
                    with read:
                        value = b.load(at, typ=self.elem)
                        read_block = b.block
                    with pad:
                        pad_block = b.block
                phi = b.phi(self.elem)
                phi.add_incoming(value, read_block)
                phi.add_incoming(ir.Constant(self.elem, 0.0), pad_block)
                b.store(phi, b.gep(panel, [b.add(b.mul(kk, nr), jj)], source_etype=self.elem))

    # -- the loops around the tiles -------------------------------------------------------
    def _core(self, tiles, pack_a: ir.Function, pack_b: ir.Function) -> None:
        blk = self.blocks
        fn = ir.Function(self.module, CORE_TYPE, blk.name)
        for i in (0, 3, 6, 13):
            fn.args[i].add_attribute("noalias")
        a, a_rs, a_ks, bsrc, b_ks, b_js, c, ldc, k, r0, r1, c0, c1, b_buffer = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        slack = ALIGN // blk.itemsize
        raw = b.alloca(self.elem, size=i64(blk.mr * blk.a_stride + slack))
        panel = aligned(b, raw)  # A's micro-panel, on this thread's stack
        with b.if_then(b.icmp_signed("<=", k, i64(0))):  # no terms: zeros
            zero = ir.Constant(self.elem, 0.0)
            with for_range(b, r0, r1, name="zr") as r:
                row = b.gep(c, [b.mul(r, ldc)], source_etype=self.elem)
                with for_range(b, c0, c1, name="zc") as j:
                    b.store(zero, b.gep(row, [j], source_etype=self.elem))
            b.ret_void()
        mr = i64(blk.mr)
        packing = b.icmp_unsigned("!=", b_buffer, ir.Constant(PTR, None))
        # (also a packed B of depth 1: safe)
        in_place = b.and_(b.icmp_signed("==", b_js, i64(1)), b.not_(packing))
        with for_range(b, c0, c1, i64(blk.nc), name="jc") as jc:
            jc_end = smin(b, c1, b.add(jc, i64(blk.nc)))
            with for_range(b, i64(0), k, i64(blk.kc), name="pc") as pc:
                kc = smin(b, i64(blk.kc), b.sub(k, pc))
                accumulate = b.icmp_signed("!=", pc, i64(0))
                a_block = b.gep(a, [b.mul(pc, a_ks)], source_etype=self.elem)
                b_block = b.gep(bsrc, [b.mul(pc, b_ks)], source_etype=self.elem)
                b_block, block_ks, block_js = self._packed_block(
                    b, pack_b, packing, b_buffer, b_block, b_ks, b_js, kc, jc, jc_end)
                with for_range(b, r0, r1, mr, name="ic") as ic:
                    rows = smin(b, mr, b.sub(r1, ic))
                    b.call(pack_a, [panel, b.gep(a_block, [b.mul(ic, a_rs)],
                                                 source_etype=self.elem),
                                    a_rs, a_ks, rows, kc])
                    c_rows = b.gep(c, [b.mul(ic, ldc)], source_etype=self.elem)
                    block = _Block(panel, c_rows, b_block, block_ks, block_js, ldc, kc,
                                   accumulate, jc, jc_end, in_place)
                    with b.if_else(b.icmp_signed("==", rows, mr)) as (whole, rest):
                        with whole:
                            self._columns(b, tiles, block, blk.mr, i64(0))
                        with rest:  # as tiles of 8, 4, 2, 1 rows
                            for height in blk.tile_rows[1:]:
                                bit = b.and_(rows, i64(height))
                                with b.if_then(b.icmp_signed("!=", bit, i64(0))):
                                    skip = b.and_(rows, i64(~(2 * height - 1)))
                                    self._columns(b, tiles, block, height, skip)
        b.ret_void()

    def _packed_block(self, b, pack_b, packing, b_buffer, b_block, b_ks, b_js, kc, jc,
                      jc_end):
        """With a buffer, packs B's block (kc rows from b_block, columns [jc, jc_end)) into
        it as panels of kc x NR; returns where the tiles read the block and its strides
        (columns from jc on: the buffer's first panel is jc's)."""
        blk = self.blocks
        nr = i64(blk.nr)
        base = b.gep(b_buffer, [b.sub(i64(0), b.mul(jc, kc))], source_etype=self.elem)
        with b.if_then(packing):
            b.call(pack_b, [b_block, b_ks, b_js, base, kc, jc_end, b.sdiv(jc, nr),
                            b.sdiv(b.add(jc_end, i64(blk.nr - 1)), nr)])
        return (b.select(packing, base, b_block), b.select(packing, nr, b_ks),
                b.select(packing, kc, b_js))

    def _columns(self, b, tiles, block: "_Block", mr: int, first_row: ir.Value) -> None:
        """Rows [first_row, first_row + mr) of the packed A against the block's columns:
        tiles NR wide (packed panels), or as wide as the registers allow from a B in place
        (longer runs of each of its rows: short tiles are bound by reading B)."""
        blk = self.blocks
        a_panel = b.gep(block.a_panel, [b.mul(first_row, i64(blk.a_stride))],
                        source_etype=self.elem)
        c_rows = b.gep(block.c_rows, [b.mul(first_row, block.ldc)], source_etype=self.elem)

        def run(first, last, vectors: int, edge: bool):
            width = vectors * blk.lanes
            with for_range(b, first, last, i64(width), name="jr") as jr:
                b_panel = b.gep(block.b_block, [b.mul(jr, block.b_js)],
                                source_etype=self.elem)
                call = [a_panel, b_panel, block.b_ks,
                        b.gep(c_rows, [jr], source_etype=self.elem), block.ldc, block.kc,
                        block.accumulate]
                if not edge:
                    b.call(tiles[mr, vectors, False], call)
                else:
                    cols = b.sub(block.jc_end, jr)
                    with b.if_else(b.icmp_signed(">=", cols, i64(width))) as (full, part):
                        with full:
                            b.call(tiles[mr, vectors, False], call)
                        with part:
                            self._edge_tile(b, tiles, mr, vectors, call, cols)

        wide = blk.wide(mr)
        start = block.jc
        if wide > blk.vectors:
            span = i64(wide * blk.lanes)
            count = b.sdiv(b.sub(block.jc_end, block.jc), span)
            end = b.select(block.in_place, b.add(block.jc, b.mul(count, span)), block.jc)
            run(block.jc, end, wide, edge=False)
            start = end
        run(start, block.jc_end, blk.vectors, edge=True)

    def _edge_tile(self, b, tiles, mr: int, vectors: int, call, cols) -> None:
        """The last `cols` columns, masked: by a tile one vector wide if they fit one."""
        if vectors == 1:
            b.call(tiles[mr, 1, True], call + [cols])
            return
        with b.if_else(b.icmp_signed("<=", cols, i64(self.blocks.lanes))) as (one, more):
            with one:
                b.call(tiles[mr, 1, True], call + [cols])
            with more:
                b.call(tiles[mr, vectors, True], call + [cols])


@dataclass
class _Block:
    """What the tiles of one packed A micro-panel share: the packed rows, where its rows of
    C start, the B block (pointer and strides), the block's depth, and its columns."""

    a_panel: ir.Value
    c_rows: ir.Value
    b_block: ir.Value
    b_ks: ir.Value
    b_js: ir.Value
    ldc: ir.Value
    kc: ir.Value
    accumulate: ir.Value
    jc: ir.Value
    jc_end: ir.Value
    in_place: ir.Value
