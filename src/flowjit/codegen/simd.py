"""LLVM IR building blocks for explicit vector code (the GEMM's): counted loops, loops
that carry values in registers, splats, lane masks, masked loads and stores, prefetches,
in-register transposes. llvmlite cannot mangle vector intrinsic names: they are spelled
here."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, List, Optional, Tuple

from llvmlite import ir

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
ALIGN = 64  # bytes: a cache line


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def smin(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)


@contextlib.contextmanager
def for_range(b: ir.IRBuilder, start: ir.Value, stop: ir.Value,
              step: Optional[ir.Value] = None, name: str = "i") -> Iterator[ir.Value]:
    """for (i = start; i < stop; i += step) { body }"""
    step = step if step is not None else i64(1)
    entry = b.block
    header = b.append_basic_block(f"{name}.header")
    body = b.append_basic_block(f"{name}.body")
    exit_ = b.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    index = b.phi(I64, name=name)
    index.add_incoming(start, entry)
    b.cbranch(b.icmp_signed("<", index, stop), body, exit_)
    b.position_at_end(body)
    yield index
    index.add_incoming(b.add(index, step), b.block)
    b.branch(header)
    b.position_at_end(exit_)


def carried_loop(b: ir.IRBuilder, start: ir.Value, stop: ir.Value, step: int,
                 values: List[ir.Value], body: Callable[[ir.Value, List[ir.Value]],
                                                        List[ir.Value]],
                 name: str) -> Tuple[List[ir.Value], ir.Value]:
    """for (i = start; i + step <= stop; i += step) values = body(i, values); returns the
    values after the loop (carried as phis, so that they stay in registers) and the index
    the loop stopped at."""
    entry = b.block
    header = b.append_basic_block(f"{name}.header")
    block = b.append_basic_block(f"{name}.body")
    exit_ = b.append_basic_block(f"{name}.exit")
    b.branch(header)
    b.position_at_end(header)
    index = b.phi(I64, name=name)
    index.add_incoming(start, entry)
    phis = [b.phi(v.type) for v in values]
    for phi, value in zip(phis, values):
        phi.add_incoming(value, entry)
    b.cbranch(b.icmp_signed("<=", b.add(index, i64(step)), stop), block, exit_)
    b.position_at_end(block)
    updated = body(index, list(phis))
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, b.block)
    index.add_incoming(b.add(index, i64(step)), b.block)
    b.branch(header)
    b.position_at_end(exit_)
    return list(phis), index


def aligned(b: ir.IRBuilder, pointer: ir.Value) -> ir.Value:
    """`pointer` rounded up to a cache line."""
    address = b.ptrtoint(pointer, I64)
    pad = b.and_(b.sub(i64(0), address), i64(ALIGN - 1))
    return b.gep(pointer, [pad], source_etype=I8)


def declare(module: ir.Module, name: str, fn_type: ir.FunctionType) -> ir.Function:
    return module.globals.get(name) or ir.Function(module, fn_type, name)


def splat(b: ir.IRBuilder, x: ir.Value, vec: ir.VectorType) -> ir.Value:
    one = b.insert_element(ir.Constant(vec, ir.Undefined), x, i64(0))
    return b.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                            ir.Constant(ir.VectorType(I32, vec.count), [0] * vec.count))


def transpose(b: ir.IRBuilder, rows: List[ir.Value]) -> List[ir.Value]:
    """The lanes x lanes block whose rows are `rows`, transposed: log2(lanes) rounds that
    each exchange blocks of h lanes between rows i and i + h (h = lanes/2, ..., 1)."""
    lanes = len(rows)
    rows = list(rows)
    h = lanes // 2
    while h >= 1:
        low, high = [], []
        for t in range(lanes):
            start, at = t - t % (2 * h), t % (2 * h)
            low.append(start + at if at < h else lanes + start + at - h)
            high.append(start + h + at if at < h else lanes + start + at)
        masks = [ir.Constant(ir.VectorType(I32, lanes), m) for m in (low, high)]
        for i in range(lanes):
            if i & h == 0:
                first, second = rows[i], rows[i + h]
                rows[i] = b.shuffle_vector(first, second, masks[0])
                rows[i + h] = b.shuffle_vector(first, second, masks[1])
        h //= 2
    return rows


def lane_mask(b: ir.IRBuilder, width: ir.Value, vec: ir.VectorType) -> ir.Value:
    """Lanes [0, width) of `vec` on (all off when width <= 0); compared as integers as wide
    as its elements, so the mask is the ISA's own (a k register, or a vector)."""
    integer = ir.IntType(64 if isinstance(vec.element, ir.DoubleType) else 32)
    if integer.width != 64:  # (widths here are within +-NR)
        width = b.trunc(width, integer)
    ids = ir.Constant(ir.VectorType(integer, vec.count), list(range(vec.count)))
    return b.icmp_signed("<", ids, splat(b, width, ir.VectorType(integer, vec.count)))


def prefetch(module: ir.Module) -> ir.Function:
    return declare(module, "llvm.prefetch.p0",
                   ir.FunctionType(ir.VoidType(), [PTR, I32, I32, I32]))


def _suffix(vec: ir.VectorType) -> str:
    element = "f32" if isinstance(vec.element, ir.FloatType) else "f64"
    return f"v{vec.count}{element}"


def vector_intrinsic(module: ir.Module, name: str, vec: ir.VectorType, arity: int):
    """llvm.fma.v16f32 and friends (llvmlite cannot mangle vector intrinsic names)."""
    return declare(module, f"{name}.{_suffix(vec)}", ir.FunctionType(vec, [vec] * arity))


def masked_load(b, pointer, vec: ir.VectorType, mask: ir.Value) -> ir.Value:
    """A vector whose lanes off the mask are zeros, their memory never touched."""
    fn = declare(b.module, f"llvm.masked.load.{_suffix(vec)}.p0", ir.FunctionType(
        vec, [PTR, I32, ir.VectorType(I1, vec.count), vec]))
    zero = ir.Constant(vec, [ir.Constant(vec.element, 0.0)] * vec.count)
    return b.call(fn, [pointer, ir.Constant(I32, 1), mask, zero])


def masked_store(b, value, pointer, mask: ir.Value) -> None:
    """Stores the lanes on the mask; memory under the others is not touched."""
    vec = value.type
    fn = declare(b.module, f"llvm.masked.store.{_suffix(vec)}.p0", ir.FunctionType(
        ir.VoidType(), [vec, PTR, I32, ir.VectorType(I1, vec.count)]))
    b.call(fn, [value, pointer, ir.Constant(I32, 1), mask])
