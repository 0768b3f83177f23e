"""Loop nests for IR instructions: each compiled instruction (or fusion) becomes one kernel
function `void kernel(ptr* buffers)` whose buffers are its outputs, then its inputs, all
dense row-major arrays of the static shapes in the IR.

Six kinds of kernel:
  elementwise  one loop nest over the output; operands are read through broadcast strides
               (stride 0 along broadcast dimensions), fused ops are evaluated per element;
  reduce       the output is set to the reduction's identity, then one loop nest over the
               input accumulates into it (out[kept index] op= value), then mean divides;
               inner-axis and outer-axis reductions both become vectorizable inner loops;
  matmul       C = op(A) @ op(B) by the BLIS-style GEMM core (gemm.py), then the fused
               epilogue as an elementwise pass over the part of C just computed (shares
               are blocks of rows, or of rows and columns when rows are few);
  rowwise      softmax, log_softmax and the softmax cross-entropies along the last axis:
               per row, the max, the sum of exponentials, then the outputs;
  copy         transpose, slice, strided slice, broadcast_to: a copy through an affine
               index map (a base offset and one stride per output dimension);
  gather       rows picked by an index tensor (indices are range-checked before the call),
               and concatenate.
`can_compile(instr)` says whether an instruction is one of these; others run in numpy.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from llvmlite import ir

from flowjit import dtypes
from flowjit.codegen import scalar, simd
from flowjit.ir.core import FUSION, Instr, TensorType, Value

I64 = ir.IntType(64)
PTR = ir.PointerType()
# void kernel(ptr* buffers, i64 begin, i64 end): [begin, end) of the outer dimension.
KERNEL_TYPE = ir.FunctionType(ir.VoidType(), [PTR, I64, I64])

REDUCTIONS = {"reduce_sum": "add", "reduce_mean": "add", "reduce_max": "max",
              "reduce_min": "min", "reduce_prod": "mul", "reduce_any": "or",
              "reduce_all": "and"}
FAST = ("reassoc", "contract")  # lets LLVM vectorize reductions (order of additions changes)


# -- what can be compiled -----------------------------------------------------------------------
def _static(values: Sequence[Value]) -> bool:
    return all(v.type.is_static and scalar.supported_dtype(v.type.dtype) for v in values)


def _elementwise_ok(instr: Instr) -> bool:
    return scalar.can_emit(instr.op, [v.type.dtype for v in instr.operands],
                           instr.result.type.dtype)


ROWWISE = ("softmax", "log_softmax", "softmax_xent", "sparse_softmax_xent")
LAYOUT_OPS = ("transpose", "slice", "strided_slice", "broadcast_to")


def kernel_kind(instr: Instr) -> Optional[str]:
    """'elementwise', 'reduce', 'matmul' or 'rowwise' if `instr` compiles to a kernel."""
    if not _static(instr.operands + instr.results):
        return None
    if instr.op in ROWWISE:
        return "rowwise" if _rowwise_ok(instr) else None
    if instr.op in LAYOUT_OPS:
        return "copy"
    if instr.op == "gather":
        return "gather"
    if instr.op == "concatenate":
        return "concat"
    if len(instr.results) != 1:
        return None
    if instr.op == FUSION:
        body = instr.region.body
        if not _static([r for i in body for r in i.results]):
            return None
        kind = instr.attrs["kind"]
        root, rest = body[-1], [i for i in body[:-1] if i.op != "constant"]
        if kind == "loop" and all(_elementwise_ok(i) for i in rest + [root]):
            return "elementwise"
        if kind == "reduce" and _reduction_ok(root) and all(_elementwise_ok(i) for i in rest):
            return "reduce"
        if kind == "matmul":
            matmuls = [i for i in rest + [root] if i.op == "matmul"]
            epilogue = [i for i in rest + [root] if i.op != "matmul"]
            if len(matmuls) == 1 and _matmul_ok(matmuls[0], instr.result.type) and \
                    all(_elementwise_ok(i) for i in epilogue):
                return "matmul"
        return None
    if instr.op_def.elementwise and _elementwise_ok(instr):
        return "elementwise"
    if instr.op in REDUCTIONS and _reduction_ok(instr):
        return "reduce"
    if instr.op == "matmul" and _matmul_ok(instr, instr.result.type):
        return "matmul"
    return None


def _reduction_ok(instr: Instr) -> bool:
    dtype = instr.operands[0].type.dtype
    if instr.op not in REDUCTIONS or not scalar.supported_dtype(dtype):
        return False
    if instr.op == "reduce_mean" and dtype not in scalar.FLOAT_TYPES:
        return False  # integer mean truncates; numpy does it
    return True


def _rowwise_ok(instr: Instr) -> bool:
    x = instr.operands[0].type
    if x.dtype not in scalar.FLOAT_TYPES or not x.shape or x.shape[-1] == 0:
        return False
    if instr.op in ("softmax", "log_softmax"):
        return instr.attrs["axis"] in (-1, len(x.shape) - 1)
    return True


def _matmul_ok(instr: Instr, output: TensorType) -> bool:
    a, b = instr.operands
    return (len(a.type.shape) == 2 and len(b.type.shape) == 2
            and a.type.dtype in scalar.FLOAT_TYPES and instr.result.type == output)


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


def broadcast_strides(shape: Sequence[int], space: Sequence[int]) -> List[int]:
    """Element strides of a row-major array of `shape` read over the index `space` it is
    broadcast to (numpy rules): 0 along broadcast dimensions."""
    strides, step = [0] * len(space), 1
    for d in range(1, len(shape) + 1):
        if shape[-d] != 1:
            strides[-d] = step
        step *= shape[-d]
    return strides


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
    """The instructions of a kernel (a fusion's region, or one instruction) with their inputs
    bound to buffers."""

    def __init__(self, instr: Instr) -> None:
        if instr.op == FUSION:
            self.params = [p.value for p in instr.region.params]
            self.body = instr.region.body
        else:
            self.params = [Value(v.type) for v in instr.operands]
            self.body = [Instr(instr.op, self.params, instr.attrs, instr.results, instr.loc)]

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
    split too (`prepare_work` elements per unit); the shares then only read the scratch."""

    def __init__(self, kind: str, extent: int, work_per_row: int, scratch: int = 0,
                 align: int = 1, prepare: Optional[str] = None, prepare_extent: int = 1,
                 prepare_work: int = 1) -> None:
        self.kind, self.extent, self.work_per_row = kind, extent, work_per_row
        self.scratch, self.align, self.prepare = scratch, align, prepare
        self.prepare_extent, self.prepare_work = prepare_extent, prepare_work


def emit_kernel(module: ir.Module, name: str, instr: Instr, target) -> KernelInfo:
    """Adds `void name(ptr* buffers, i64 begin, i64 end)` computing `instr` to `module`.
    Buffers are the outputs, the inputs, then scratch space if the kernel needs it.
    `target` (the CPU target) sizes the GEMM's tiles and blocks."""
    kind = kernel_kind(instr)
    fn = ir.Function(module, KERNEL_TYPE, name)
    fn.args[0].add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    region = Region(instr)
    n_out = len(instr.results)
    buffers = [b.load(b.gep(fn.args[0], [ir.Constant(I64, i)], source_etype=PTR), typ=PTR)
               for i in range(n_out + len(region.params) + 1)]
    out, inputs = buffers[0], dict(zip(region.params, buffers[n_out:]))
    scratch = buffers[-1]
    out_type = instr.results[0].type
    rows = (fn.args[1], fn.args[2])
    if kind == "rowwise":
        info = _rowwise(b, instr, buffers[:n_out], buffers[n_out:-1], rows)
    elif kind == "copy":
        info = _copy(b, instr, out, buffers[n_out], rows)
    elif kind == "gather":
        info = _gather(b, instr, out, buffers[n_out], buffers[n_out + 1])
    elif kind == "concat":
        info = _concat(b, instr, out, buffers[n_out:-1])
    elif kind == "elementwise":
        space = _elementwise(b, region, out, inputs, out_type, rows=rows)
        extent = space[0] if space else 1
        info = KernelInfo(kind, extent, max(1, out_type.num_elements // max(1, extent)))
    elif kind == "reduce":
        scratch_bytes = _reduce(b, region, out, inputs, out_type, scratch)
        info = KernelInfo(kind, 1, region.body[-1].operands[0].type.num_elements,
                          scratch_bytes)
    else:
        from flowjit.codegen import gemm  # (gemm builds on this module)
        info = gemm.emit_matmul(module, name, b, fn.args[0], instr, region, target)
    b.ret_void()
    return info


def _elementwise(b, region: Region, out, inputs, out_type: TensorType,
                 known_root: Optional[Tuple[Value, ir.Value]] = None, rows=None,
                 cols=None) -> List[int]:
    """One loop nest over the (collapsed) output space; returns that space. `rows` and
    `cols` restrict the first and (for a matmul's epilogue) the last dimension."""
    shape = out_type.shape
    read = {v for instr in region.body for v in instr.operands}
    params = [p for p in region.params if p in read]  # (an epilogue does not read A, B)
    vectors = [broadcast_strides(shape, shape)] + [broadcast_strides(p.type.shape, shape)
                                                   for p in params]
    space, vectors = collapse(shape, vectors, keep_outer=known_root is not None)
    out_strides, param_strides = vectors[0], dict(zip(params, vectors[1:]))
    root = region.body[-1].result
    with loop_nest(b, space, outer=rows if space else None, inner=cols) as index:
        at = offset(b, index, out_strides)
        known = None
        if known_root is not None:  # the matmul result, read back from the output buffer
            value, pointer = known_root
            known = {value: load(b, pointer, out_type.dtype, at)}
        env = region.evaluate(b, inputs, index, space, known=known, strides=param_strides)
        store(b, env[root], out, out_type.dtype, at)
    return space


def emit_epilogue(b, region: Region, matmul: Instr, out, inputs, out_type: TensorType,
                  rows, cols) -> None:
    """A matmul fusion's epilogue (bias, activation, update: all but the matmul),
    elementwise and in place over rows x cols of C, which holds the matmul's result."""
    if len(region.body) == 1:
        return
    epilogue = Region.__new__(Region)
    epilogue.params = region.params
    epilogue.body = [i for i in region.body if i is not matmul]
    _elementwise(b, epilogue, out, inputs, out_type, known_root=(matmul.result, out),
                 rows=rows, cols=cols)


def _identity(op: str, dtype: dtypes.DType):
    if dtype is dtypes.bool_:
        return {"or": 0, "and": 1}[op]
    if dtype in scalar.FLOAT_TYPES:
        return {"add": 0.0, "mul": 1.0, "max": float("-inf"), "min": float("inf")}[op]
    info = np.iinfo(dtype.np_dtype)
    return {"add": 0, "mul": 1, "max": int(info.min), "min": int(info.max)}[op]


def _combine(b: ir.IRBuilder, op: str, acc: ir.Value, x: ir.Value, dtype) -> ir.Value:
    is_float = dtype in scalar.FLOAT_TYPES
    if op in ("add", "mul"):
        result = getattr(b, ("f" if is_float else "") + op)(acc, x)
        if is_float:
            result.flags.extend(FAST)
        return result
    if op in ("max", "min"):
        predicate = ">" if op == "max" else "<"
        if is_float:  # NaN propagates, as in numpy
            return scalar.float_extremum(b, predicate, acc, x)
        return b.select(scalar.icmp(b, predicate, acc, x, dtype), acc, x)
    return b.or_(acc, x) if op == "or" else b.and_(acc, x)


def _reduce(b, region: Region, out, inputs, out_type: TensorType, scratch) -> int:
    """Accumulates into the output, or for float32 sums and means into float64 scratch
    (returns its bytes): a float32 accumulator spread over vector lanes still adds millions
    of terms one after another (the mean of 2^24 copies of 0.1 came out 0.35% high); in
    float64 the error of 2^24 terms stays below float32's last bit."""
    root = region.body[-1]
    op = REDUCTIONS[root.op]
    source = root.operands[0]
    in_shape = source.type.shape
    dtype = out_type.dtype
    axes = range(len(in_shape)) if root.attrs["axis"] is None else root.attrs["axis"]
    axes = {a % len(in_shape) for a in axes} if in_shape else set()
    kept = [1 if i in axes else d for i, d in enumerate(in_shape)]
    out_strides = broadcast_strides(kept, in_shape)
    out_size = out_type.num_elements
    wide = op == "add" and dtype is dtypes.float32
    acc_dtype, acc = (dtypes.float64, scratch) if wide else (dtype, out)
    init = ir.Constant(scalar.llvm_type(acc_dtype), _identity(op, acc_dtype))
    with loop(b, out_size, "o") as i:
        store(b, init, acc, acc_dtype, i)
    with loop_nest(b, in_shape) as index:
        env = region.evaluate(b, inputs, index, in_shape, upto=root)
        value = env[source] if source in env else load(  # an unfused reduction
            b, inputs[source], dtype, offset(b, index, broadcast_strides(in_shape, in_shape)))
        if wide:
            value = b.fpext(value, scalar.llvm_type(acc_dtype))
        at = offset(b, index, out_strides)
        store(b, _combine(b, op, load(b, acc, acc_dtype, at), value, acc_dtype), acc,
              acc_dtype, at)
    if root.op == "reduce_mean" or wide:
        count = 1
        for a in axes:
            count *= in_shape[a]
        with loop(b, out_size, "m") as i:
            value = load(b, acc, acc_dtype, i)
            if root.op == "reduce_mean":  # empty: 0/0 = NaN
                value = b.fdiv(value, ir.Constant(value.type, float(count)))
            if wide:
                value = b.fptrunc(value, scalar.llvm_type(dtype))
            store(b, value, out, dtype, i)
    return out_size * 8 if wide else 0


def _rowwise(b, instr: Instr, outs, ins, rows) -> KernelInfo:
    """Softmax-family ops along the last axis: per row, m = max(x), s = sum(exp(x - m)),
    then the outputs from m and s. As in the reference, log-probabilities are
    (x - m) - log(s): forming m + log(s) first would lose log(s) next to a large m."""
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
    return KernelInfo("rowwise", x_type.num_elements // n, 30 * n)


# -- layout: copies through affine index maps -----------------------------------------------
def row_major_strides(shape: Sequence[int]) -> List[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


def affine_map(instr: Instr) -> Tuple[int, List[int]]:
    """(base, strides): output index i reads input element base + sum(i[d] * strides[d])."""
    x = instr.operands[0].type.shape
    st = row_major_strides(x)
    out = instr.result.type.shape
    if instr.op == "transpose":
        return 0, [st[p] for p in instr.attrs["perm"]]
    if instr.op == "slice":
        return sum(b * s for b, s in zip(instr.attrs["begin"], st)), list(st)
    if instr.op == "broadcast_to":
        return 0, broadcast_strides(x, out)
    base, strides, axis = 0, [], 0  # strided_slice: walk the index entries
    for entry in instr.attrs["spec"]:
        if entry[0] == "newaxis":
            strides.append(0)
            continue
        if entry[0] == "index":
            base += (entry[1] % x[axis]) * st[axis]
        else:
            start, _stop, step = slice(*entry[1:]).indices(x[axis])
            base += start * st[axis]
            strides.append(step * st[axis])
        axis += 1
    strides.extend(st[axis:])
    return base, strides


def _copy(b, instr: Instr, out, x_ptr, rows) -> KernelInfo:
    out_type = instr.result.type
    base, in_strides = affine_map(instr)
    space, (out_strides, in_strides) = collapse(
        out_type.shape, [row_major_strides(out_type.shape), in_strides])
    dtype = out_type.dtype
    with loop_nest(b, space, outer=rows if space else None) as index:
        source = b.add(ir.Constant(I64, base), offset(b, index, in_strides))
        store(b, load(b, x_ptr, dtype, source), out, dtype, offset(b, index, out_strides))
    extent = space[0] if space else 1
    return KernelInfo("copy", extent, max(1, out_type.num_elements // max(1, extent)))


def _gather(b, instr: Instr, out, params_ptr, indices_ptr) -> KernelInfo:
    """out[pre, i..., post] = params[pre, indices[i...], post] (indices checked before)."""
    params, indices = instr.operands
    axis = instr.attrs["axis"] % len(params.type.shape)
    p_shape, i_shape = params.type.shape, indices.type.shape
    p_st, i_st = row_major_strides(p_shape), row_major_strides(i_shape)
    out_shape = instr.result.type.shape
    n_idx = len(i_shape)
    dtype = instr.result.type.dtype
    with loop_nest(b, out_shape) as index:
        pre, idx, post = index[:axis], index[axis:axis + n_idx], index[axis + n_idx:]
        i = load(b, indices_ptr, indices.type.dtype, offset(b, idx, i_st))
        i = b.sext(i, I64) if i.type.width < 64 else i
        source = b.add(offset(b, pre + post, p_st[:axis] + p_st[axis + 1:]),
                       b.mul(i, ir.Constant(I64, p_st[axis])))
        store(b, load(b, params_ptr, dtype, source), out, dtype,
              offset(b, index, row_major_strides(out_shape)))
    return KernelInfo("gather", 1, instr.result.type.num_elements)


def _concat(b, instr: Instr, out, input_ptrs) -> KernelInfo:
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
    return KernelInfo("concat", 1, out_type.num_elements)
