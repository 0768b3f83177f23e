"""Generators of the array and indexing ops (see fuzz_ops.py for the convention): layout,
concatenation and splitting, padding, shape queries, slicing, gather and scatter."""
from __future__ import annotations

from typing import List, Optional, Tuple

from flowjit import dtypes

from fuzz_ops import emit, generates, literal, scalar_for, size_of
from fuzz_program import DIMS, Chooser, Domain, Program, Var


@generates("Identity", "StopGradient", "ZerosLike", "OnesLike")
def same_shape(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    api = {"Identity": "identity", "StopGradient": "stop_gradient", "ZerosLike": "zeros_like",
           "OnesLike": "ones_like"}[op_type]
    return emit(prog, op_type, f"tf.{api}({x})", [x])


@generates("PlaceholderWithDefault")
def placeholder_with_default(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    return emit(prog, op_type, f"tf.placeholder_with_default({x}, {list(x.shape)})", [x])


@generates("Shape", "Size", "Rank")
def shape_query(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    out = "" if op_type == "Rank" else f", out_type=tf.{ch.choice(('int32', 'int64'))}"
    # A query the static shape answers is a constant (as in TF1): hide what the op should
    # compute at run time (the dimensions; for Rank, the rank too).
    hidden = None if op_type == "Rank" else [None] * len(x.shape)
    return emit(prog, op_type, f"tf.{op_type.lower()}(tf.placeholder_with_default({x}, "
                               f"{hidden}){out})", [x])


def factorize(n: int) -> List[int]:
    factors, p = [], 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


@generates("Reshape")
def reshape(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = ch.choice((1, 2, 3, 0, 4))
    if x.size == 0:
        if rank == 0:
            return None
        dims = [ch.choice(DIMS[:5]) for _ in range(rank)]
        dims[ch.integer(0, rank - 1)] = 0
    else:
        rank = max(rank, 1) if x.size > 1 else rank
        dims = [1] * rank
        for factor in factorize(x.size):
            dims[ch.integer(0, rank - 1)] *= factor
    if rank and ch.chance(30):
        i = ch.integer(0, rank - 1)
        if size_of(dims[:i] + dims[i + 1:]):  # (-1 next to a 0 is ambiguous)
            dims[i] = -1
    return emit(prog, op_type, f"tf.reshape({x}, {dims})", [x])


@generates("Transpose")
def transpose(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    rank = len(x.shape)
    if ch.chance(20):
        return emit(prog, op_type, f"tf.transpose({x})", [x])
    perm = [p - rank if ch.chance(20) else p for p in ch.shuffled(range(rank))]
    return emit(prog, op_type, f"tf.transpose({x}, {perm})", [x])


@generates("Squeeze")
def squeeze(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    if not ones:
        return None
    if ch.chance(30):
        return emit(prog, op_type, f"tf.squeeze({x})", [x])
    axes = [a for a in ones if ch.chance(50)] or ones[:1]
    axes = [a - len(x.shape) if ch.chance(30) else a for a in axes]
    return emit(prog, op_type, f"tf.squeeze({x}, axis={axes})", [x])


@generates("ExpandDims")
def expand_dims(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    rank = len(x.shape)
    return emit(prog, op_type, f"tf.expand_dims({x}, {ch.integer(-rank - 1, rank)})", [x])


@generates("ConcatV2")
def concat(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    axis = ch.integer(0, rank - 1)
    parts = [x]
    for _ in range(ch.integer(1, 2)):
        shape = list(x.shape)
        shape[axis] = ch.dim()
        parts.append(prog.leaf(ch, x.dtype, shape))
    if sum(size_of(p.shape) for p in parts) > prog.max_elements:
        return None
    parts = ch.shuffled(parts)
    axis = axis - rank if ch.chance(30) else axis
    return emit(prog, op_type, f"tf.concat([{', '.join(p.name for p in parts)}], {axis})",
                parts)


@generates("Pack")
def stack(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    parts = [x] + [prog.leaf(ch, x.dtype, x.shape) for _ in range(ch.integer(0, 2))]
    if x.size * len(parts) > prog.max_elements:
        return None
    axis = ch.integer(-len(x.shape) - 1, len(x.shape))
    parts = ch.shuffled(parts)
    return emit(prog, op_type, f"tf.stack([{', '.join(p.name for p in parts)}], {axis})",
                parts)


@generates("Unpack")
def unstack(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    axes = [a for a, d in enumerate(x.shape) if 1 <= d <= 9]
    if not axes:
        return None
    axis = ch.choice(axes)
    outputs = emit(prog, op_type, f"tf.unstack({x}, axis={axis})", [x],
                   outputs=x.shape[axis])
    return ch.choice(outputs)


@generates("SplitV")
def split(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    axis = ch.integer(0, rank - 1)
    d = x.shape[axis]
    if d and ch.chance(40):
        parts = ch.choice([n for n in range(1, min(d, 8) + 1) if d % n == 0])
        sizes = parts
    else:
        sizes = []
        left = d
        for _ in range(ch.integer(0, 2)):
            sizes.append(ch.integer(0, left))
            left -= sizes[-1]
        sizes.append(left)
        if ch.chance(30):
            sizes[ch.integer(0, len(sizes) - 1)] = -1
        parts = len(sizes)
    outputs = emit(prog, op_type, f"tf.split({x}, {sizes}, axis={axis})", [x], outputs=parts)
    return ch.choice(outputs)


@generates("Tile")
def tile(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    multiples = [ch.choice((1, 2, 3, 1, 0)) for _ in x.shape]
    if x.size * size_of(multiples) > prog.max_elements:
        return None
    return emit(prog, op_type, f"tf.tile({x}, {multiples})", [x])


@generates("Pad")
def pad(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    mode = ch.choice(("CONSTANT", "REFLECT", "SYMMETRIC"))
    if mode == "REFLECT" and 0 in x.shape:  # (reflecting needs one element, as in TF)
        mode = "SYMMETRIC"
    paddings = []
    for d in x.shape:
        most = {"CONSTANT": 3, "REFLECT": min(3, d - 1), "SYMMETRIC": min(3, d)}[mode]
        paddings.append([ch.integer(0, max(most, 0)), ch.integer(0, max(most, 0))])
    if size_of([d + lo + hi for d, (lo, hi) in zip(x.shape, paddings)]) > prog.max_elements:
        return None
    value = ""
    if mode == "CONSTANT" and ch.chance(60):
        value = f", constant_values={literal(scalar_for(ch, x.dtype))}"
    # (Limitation: only CONSTANT padding has a gradient rule so far; the others raise when
    # the backward pass is built, so their chains are not differentiated.)
    return emit(prog, op_type, f"tf.pad({x}, {paddings}, mode={mode!r}{value})", [x],
                differentiable=mode == "CONSTANT")


@generates("Where")
def where(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    return emit(prog, op_type, f"tf.where({x})", [x])


@generates("BroadcastTo")
def broadcast_to(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    shape = [ch.dim(0, upto=9) for _ in range(ch.integer(0, 2))] + \
        [ch.dim(0) if d == 1 and ch.chance(60) else d for d in x.shape]
    if size_of(shape) > prog.max_elements:
        return None
    return emit(prog, op_type, f"tf.broadcast_to({x}, {shape})", [x])


# -- slicing ------------------------------------------------------------------------------------
@generates("Slice")
def slice_(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    begin, size = [], []
    for d in x.shape:
        b = ch.integer(0, d)
        begin.append(b)
        size.append(-1 if ch.chance(30) else ch.integer(0, d - b))
    return emit(prog, op_type, f"tf.slice({x}, {begin}, {size})", [x])


def bound(value: Optional[int]) -> str:
    return "" if value is None else str(value)


@generates("StridedSlice")
def strided_slice(ch: Chooser, prog: Program, x: Var, op_type: str) -> Var:
    """x[...] with indices, ranges of any step (negative too), new axes and an ellipsis."""
    key = []
    for d in x.shape:
        if ch.chance(10):
            key.append("None")
        if d and ch.chance(15):
            key.append(str(ch.integer(-d, d - 1)))
            continue
        step = ch.choice((1, 2, -1, 3, -2))
        start = None if ch.chance(40) else ch.integer(-d - 2, d + 2)
        stop = None if ch.chance(40) else ch.integer(-d - 2, d + 2)
        key.append(f"{bound(start)}:{bound(stop)}" + (f":{step}" if step != 1 else ""))
    if ch.chance(20):
        key.append("None")
    if key and ch.chance(20):  # the trailing entries as an ellipsis, or left out
        keep = ch.integer(0, len(key) - 1)
        key = key[:keep] + (["..."] if ch.chance(50) else [])
    return emit(prog, op_type, f"{x}[{', '.join(key) or '()'}]", [x])


def sliced_dim(ch: Chooser, d: int) -> Tuple[Tuple, int]:
    """A ("range", start, stop, step) entry and a dimension it takes `d` elements of."""
    step = ch.choice((1, 2, -1, 3, -2)) if d else 1
    span = (d - 1) * abs(step) + 1 if d else 0
    size = span + ch.integer(0, 3)
    offset = ch.integer(0, size - span)
    if step > 0:
        start, stop = offset, offset + span
        stop = None if stop == size and ch.chance(50) else stop
    else:
        start, stop = size - 1 - offset, size - 1 - offset - span
        stop = None if stop < 0 else stop
    assert len(range(*slice(start, stop, step).indices(size))) == d
    return ("range", start, stop, step), size


@generates("StridedSliceGrad")
def strided_slice_grad(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    """The gradient op of x[key] (no API builds it): zeros of the sliced tensor's shape with
    `x` written where the slice read; key and shape are drawn so that x[key] has x's shape."""
    spec, shape = [], []
    for d in x.shape:
        if ch.chance(15):  # a dimension indexed away
            size = ch.choice((1, 2, 3))
            spec.append(("index", ch.integer(-size, size - 1)))
            shape.append(size)
        if d == 1 and ch.chance(15):
            spec.append(("newaxis",))
            continue
        entry, size = sliced_dim(ch, d)
        spec.append(entry)
        shape.append(size)
    if size_of(shape) > prog.max_elements:
        return None
    attrs = f"{{'spec': {tuple(spec)!r}, 'shape': {tuple(shape)!r}}}"
    return emit(prog, op_type, f"apply_op('StridedSliceGrad', [{x}], {attrs})", [x])


# -- gather and scatter ---------------------------------------------------------------------------
def index_dtype(ch: Chooser) -> dtypes.DType:
    return ch.choice((dtypes.int32, dtypes.int64))


@generates("GatherV2")
def gather(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    axis = ch.integer(0, rank - 1)
    n = x.shape[axis]
    shape = ch.shape(64, rank=ch.choice((1, 0, 2)))
    if n == 0 and not prog.allow_errors:
        shape = (0,)
    if size_of(shape) * x.size // max(n, 1) > prog.max_elements:
        return None
    domain = Domain("index", n, bad=prog.allow_errors and ch.chance(10))
    indices = prog.leaf(ch, index_dtype(ch), shape, domain)
    axis = axis - rank if ch.chance(30) else axis
    return emit(prog, op_type, f"tf.gather({x}, {indices}, axis={axis})", [x, indices])


@generates("OneHot")
def one_hot(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    depth = ch.integer(0, 9)
    if x.size * depth > prog.max_elements:
        return None
    dtype = ch.choice(dtypes.ALL_DTYPES)
    on, off = scalar_for(ch, dtype), scalar_for(ch, dtype)
    axis = -1 if ch.chance(50) else ch.integer(0, len(x.shape))
    return emit(prog, op_type, f"tf.one_hot({x}, {depth}, on_value={literal(on)}, "
                               f"off_value={literal(off)}, axis={axis}, "
                               f"dtype=tf.{dtype.name})", [x])


@generates("UnsortedSegmentSum")
def unsorted_segment_sum(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    rank = len(x.shape)
    if rank == 0:
        return None
    prefix = ch.integer(1, rank)
    segments = ch.integer(1, 9)
    if segments * size_of(x.shape[prefix:]) > prog.max_elements:
        return None
    domain = Domain("index", segments, bad=prog.allow_errors and ch.chance(10))
    ids = prog.leaf(ch, index_dtype(ch), x.shape[:prefix], domain)
    return emit(prog, op_type, f"tf.unsorted_segment_sum({x}, {ids}, {segments})", [x, ids],
                work=size_of(x.shape[:prefix]))


@generates("IndexUpdate")
def index_update(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    """x with row `index` replaced (the accumulators of map_fn and scan)."""
    if not x.shape or x.shape[0] == 0 or x.dtype is dtypes.string:
        return None
    value = prog.leaf(ch, x.dtype, x.shape[1:])
    domain = Domain("index", x.shape[0], bad=prog.allow_errors and ch.chance(10))
    index = prog.leaf(ch, index_dtype(ch), (), domain)
    return emit(prog, op_type, f"apply_op('IndexUpdate', [{x}, {index}, {value}])",
                [x, index, value])
