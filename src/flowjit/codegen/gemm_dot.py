"""C = A @ B^T for a few rows of A, as dot products along K: the GEMM core's function for
the shapes where packing B^T would cost as much as the product itself (a batch-1 forward
through transposed weights, a small batch's gradient through W^T).

Both operands are read where they are: a row of A and a row of B^T are both contiguous
along K, so each output element is one dot product of two unit-stride runs. The loop keeps
DOT_COLUMNS accumulators, one per row of B^T, and loads A's vector once for all of them;
the last K % lanes elements are masked loads, and each accumulator is summed across its
lanes once, at the end:

    dot(A, a_row_stride, Bt, bt_row_stride, C, ldc, k, r0, r1, c0, c1)
        C[r0:r1, c0:c1] = A[r0:r1, :k] @ Bt[c0:c1, :k]^T
"""
from __future__ import annotations

from llvmlite import ir

from flowjit.codegen import scalar
from flowjit.codegen.simd import (I64, PTR, carried_loop, for_range, i64, lane_mask,
                                  masked_load, vector_intrinsic)

# void dot(ptr A, i64 a_row_stride, ptr Bt, i64 bt_row_stride, ptr C, i64 ldc, i64 k,
#          i64 r0, i64 r1, i64 c0, i64 c1)
DOT_TYPE = ir.FunctionType(ir.VoidType(), [PTR, I64, PTR, I64, PTR] + [I64] * 6)
# Rows of B^T per pass over A's row: the accumulators (and A's vector, and the B^T vector
# being loaded) fit AVX2's 16 registers, and cover the FMA's latency on two ports.
DOT_COLUMNS = 8


def emit_dot(module: ir.Module, name: str, dtype, lanes: int) -> None:
    """Defines `name` (DOT_TYPE) in `module` for `dtype` vectors of `lanes`."""
    elem = scalar.llvm_type(dtype)
    vec = ir.VectorType(elem, lanes)
    fma = vector_intrinsic(module, "llvm.fma", vec, 3)
    fn = ir.Function(module, DOT_TYPE, name)
    for i in (0, 2, 4):
        fn.args[i].add_attribute("noalias")
    a, a_rs, bt, bt_rs, c, ldc, k, r0, r1, c0, c1 = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    zero = ir.Constant(vec, [ir.Constant(elem, 0.0)] * lanes)
    whole_k = b.mul(b.sdiv(k, i64(lanes)), i64(lanes))
    tail = lane_mask(b, b.sub(k, whole_k), vec)  # (k % lanes lanes: none when it divides)

    def dots(a_row, first_column, columns: int):
        """The `columns` dot products of A's row with B^T's rows from `first_column`."""
        rows = [b.gep(bt, [b.mul(b.add(first_column, i64(j)), bt_rs)], source_etype=elem)
                for j in range(columns)]

        def step(kk, accs, load):
            x = load(b.gep(a_row, [kk], source_etype=elem))
            return [b.call(fma, [x, load(b.gep(row, [kk], source_etype=elem)), acc])
                    for row, acc in zip(rows, accs)]

        accs, _ = carried_loop(b, i64(0), whole_k, lanes, [zero] * columns,
                               lambda kk, accs: step(kk, accs, lambda p: b.load(
                                   p, typ=vec, align=dtype.np_dtype.itemsize)), "dk")
        accs = step(whole_k, accs, lambda p: masked_load(b, p, vec, tail))
        return [_lane_sum(b, acc, elem, lanes) for acc in accs]

    with for_range(b, r0, r1, name="dr") as r:
        a_row = b.gep(a, [b.mul(r, a_rs)], source_etype=elem)
        c_row = b.gep(c, [b.mul(r, ldc)], source_etype=elem)
        groups = b.sdiv(b.sub(c1, c0), i64(DOT_COLUMNS))
        grouped = b.add(c0, b.mul(groups, i64(DOT_COLUMNS)))
        with for_range(b, c0, grouped, i64(DOT_COLUMNS), name="dj") as j:
            for h, value in enumerate(dots(a_row, j, DOT_COLUMNS)):
                b.store(value, b.gep(c_row, [b.add(j, i64(h))], source_etype=elem))
        with for_range(b, grouped, c1, name="dl") as j:  # the last (c1 - c0) % DOT_COLUMNS
            value, = dots(a_row, j, 1)
            b.store(value, b.gep(c_row, [j], source_etype=elem))
    b.ret_void()


def _lane_sum(b: ir.IRBuilder, vector: ir.Value, elem: ir.Type, lanes: int) -> ir.Value:
    """The sum of a vector's lanes: halves added until one is left."""
    width = lanes
    while width > 1:
        width //= 2
        low = b.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                           list(range(width))))
        high = b.shuffle_vector(vector, vector, ir.Constant(
            ir.VectorType(ir.IntType(32), width), list(range(width, 2 * width))))
        vector = b.fadd(low, high)
    return b.extract_element(vector, i64(0))
