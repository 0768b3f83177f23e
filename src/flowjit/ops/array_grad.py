"""Gradient rules of the shape and indexing ops (see math_grad.py for the convention)."""
from __future__ import annotations

from flowjit.graph.registry import register_gradient
from flowjit.ops.math_grad import not_differentiable

not_differentiable("OneHot", "Shape", "Size", "Rank", "ZerosLike", "OnesLike", "Where",
                   "StopGradient", "RandomStandardNormal", "TruncatedNormal", "RandomUniform",
                   "RandomUniformInt", "RandomUniformLike")


@register_gradient("Identity")
def _identity(b, instr, grads):
    return [grads[0]]


@register_gradient("PlaceholderWithDefault")
def _placeholder_with_default(b, instr, grads):
    return [grads[0]]


def _reshape_back(b, instr, grads):
    x = instr.operands[0]
    return [b.reshape(grads[0], shape=tuple(-1 if d is None else d for d in x.type.shape))]


for _op in ("Reshape", "Squeeze", "ExpandDims"):
    register_gradient(_op)(_reshape_back)


@register_gradient("Transpose")
def _transpose(b, instr, grads):
    perm = instr.attrs["perm"]
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return [b.transpose(grads[0], perm=tuple(inverse))]


@register_gradient("BroadcastTo")
def _broadcast_to(b, instr, grads):
    return [b.sum_to(grads[0], instr.operands[0].type)]


@register_gradient("Fill")
def _fill(b, instr, grads):
    return [b.reduce_sum(grads[0], axis=None, keepdims=False)]


@register_gradient("ConcatV2")
def _concat(b, instr, grads):
    axis = instr.attrs["axis"]
    g = grads[0]
    out, offset = [], 0
    for x in instr.operands:
        size = x.type.shape[axis]
        begin = tuple(offset if i == axis else 0 for i in range(len(x.type.shape)))
        sizes = tuple(size if i == axis else -1 for i in range(len(x.type.shape)))
        out.append(b.slice(g, begin=begin, size=sizes))
        offset += size
    return out


def _with_zeros(b, instr, grads):
    """The gradients of a multi-output op, with zeros for outputs that got none."""
    return [g if g is not None else b.zeros_like(r) for g, r in zip(grads, instr.results)]


@register_gradient("SplitV")
def _split(b, instr, grads):
    return [b.concatenate(*_with_zeros(b, instr, grads), axis=instr.attrs["axis"])]


@register_gradient("Pack")
def _pack(b, instr, grads):
    axis, n = instr.attrs["axis"], len(instr.operands)
    return b.emit("unstack", [grads[0]], num=n, axis=axis)


@register_gradient("Unpack")
def _unpack(b, instr, grads):
    return [b.stack(*_with_zeros(b, instr, grads), axis=instr.attrs["axis"])]


@register_gradient("Slice")
def _slice(b, instr, grads):
    x = instr.operands[0]
    g = grads[0]
    begin = instr.attrs["begin"]
    paddings = tuple((lo, d - lo - s) for lo, d, s in zip(begin, x.type.shape, g.type.shape))
    return [b.pad(g, paddings=paddings, mode="CONSTANT", constant_value=0)]


@register_gradient("StridedSlice")
def _strided_slice(b, instr, grads):
    x = instr.operands[0]
    return [b.strided_slice_grad(grads[0], spec=instr.attrs["spec"],
                                 shape=tuple(x.type.shape))]


@register_gradient("Pad")
def _pad(b, instr, grads):
    x = instr.operands[0]
    if instr.attrs["mode"] != "CONSTANT":
        raise ValueError("only CONSTANT padding has a gradient so far")
    begin = tuple(lo for lo, _ in instr.attrs["paddings"])
    return [b.slice(grads[0], begin=begin, size=tuple(x.type.shape))]


@register_gradient("Tile")
def _tile(b, instr, grads):
    """Tiled copies are summed: view g as [m0, d0, m1, d1, ...] and reduce the m axes."""
    x = instr.operands[0]
    multiples = instr.attrs["multiples"]
    split = []
    for m, d in zip(multiples, x.type.shape):
        split.extend([m, d])
    g = b.reshape(grads[0], shape=tuple(split))
    summed = b.reduce_sum(g, axis=tuple(range(0, len(split), 2)), keepdims=False)
    return [summed]


@register_gradient("GatherV2")
def _gather(b, instr, grads):
    """A scatter-add of g into zeros shaped like params (repeated indices accumulate)."""
    params, indices = instr.operands
    axis = instr.attrs["axis"]
    g = grads[0]
    rank = len(params.type.shape)
    n_idx = len(indices.type.shape)
    if axis:  # bring the gathered axis to the front, scatter, and move it back
        perm = (tuple(range(axis, axis + n_idx)) + tuple(range(axis))
                + tuple(range(axis + n_idx, len(g.type.shape))))
        g = b.transpose(g, perm=perm)
    scattered = b.segment_sum(g, indices, num_segments=params.type.shape[axis])
    if axis:
        back = tuple(range(1, axis + 1)) + (0,) + tuple(range(axis + 1, rank))
        scattered = b.transpose(scattered, perm=back)
    return [scattered, None]


@register_gradient("UnsortedSegmentSum")
def _segment_sum(b, instr, grads):
    data, ids = instr.operands
    return [b.gather(grads[0], ids, axis=0), None]
