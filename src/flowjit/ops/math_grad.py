"""Gradient rules of the math ops: `rule(b, instr, grads) -> [grad per operand]`.

`b` is an IR Builder; `instr.operands` / `instr.results` are the forward values; `grads` holds
the gradient of each result. Elementwise binary rules may return gradients of the broadcast
shape: autodiff sums them back to each operand's shape.
"""
from __future__ import annotations

from flowjit.graph.registry import register_gradient


def not_differentiable(*op_types: str) -> None:
    """Ops through which no gradient flows (comparisons, arg-reductions, rounding, ...)."""
    for op_type in op_types:
        register_gradient(op_type)(lambda b, instr, grads: [None] * len(instr.operands))


not_differentiable("Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual",
                   "LogicalAnd", "LogicalOr", "LogicalNot", "ArgMax", "ArgMin", "Sign",
                   "Floor", "Ceil", "Round", "FloorDiv", "Any", "All")


def _unary(op_type: str):
    """Registers `fn(b, x, y, g) -> dx` for a one-operand elementwise op."""
    def wrap(fn):
        register_gradient(op_type)(
            lambda b, instr, grads: [fn(b, instr.operands[0], instr.result, grads[0])])
        return fn
    return wrap


@_unary("Neg")
def _neg(b, x, y, g):
    return b.neg(g)


@_unary("Abs")
def _abs(b, x, y, g):
    return b.mul(g, b.sign(x))


@_unary("Reciprocal")
def _reciprocal(b, x, y, g):
    return b.neg(b.mul(g, b.square(y)))


@_unary("Square")
def _square(b, x, y, g):
    return b.mul(g, b.mul(x, b.scalar_like(2.0, x)))


@_unary("Sqrt")
def _sqrt(b, x, y, g):
    return b.div(b.mul(g, b.scalar_like(0.5, x)), y)


@_unary("Rsqrt")
def _rsqrt(b, x, y, g):
    return b.mul(b.mul(g, b.scalar_like(-0.5, x)), b.mul(y, b.square(y)))


@_unary("Exp")
def _exp(b, x, y, g):
    return b.mul(g, y)


@_unary("Expm1")
def _expm1(b, x, y, g):
    return b.mul(g, b.add(y, b.scalar_like(1.0, y)))


@_unary("Log")
def _log(b, x, y, g):
    return b.div(g, x)


@_unary("Log1p")
def _log1p(b, x, y, g):
    return b.div(g, b.add(x, b.scalar_like(1.0, x)))


@_unary("Sin")
def _sin(b, x, y, g):
    return b.mul(g, b.cos(x))


@_unary("Cos")
def _cos(b, x, y, g):
    return b.neg(b.mul(g, b.sin(x)))


@_unary("Tanh")
def _tanh(b, x, y, g):
    return b.mul(g, b.sub(b.scalar_like(1.0, y), b.square(y)))


@_unary("Sigmoid")
def _sigmoid(b, x, y, g):
    return b.mul(g, b.mul(y, b.sub(b.scalar_like(1.0, y), y)))


@register_gradient("Cast")
def _cast(b, instr, grads):
    x = instr.operands[0]
    if x.type.dtype.is_floating and instr.result.type.dtype.is_floating:
        return [b.convert(grads[0], dtype=x.type.dtype)]
    return [None]


# -- binary ---------------------------------------------------------------------------------
@register_gradient("Add")
def _add(b, instr, grads):
    return [grads[0], grads[0]]


@register_gradient("Sub")
def _sub(b, instr, grads):
    return [grads[0], b.neg(grads[0])]


@register_gradient("Mul")
def _mul(b, instr, grads):
    x, y = instr.operands
    g = grads[0]
    return [b.mul(g, y), b.mul(g, x)]


@register_gradient("RealDiv")
def _div(b, instr, grads):
    x, y = instr.operands
    g = grads[0]
    return [b.div(g, y), b.neg(b.div(b.mul(g, instr.result), y))]


@register_gradient("FloorMod")
def _mod(b, instr, grads):
    x, y = instr.operands
    g = grads[0]
    if not x.type.dtype.is_floating:
        return [None, None]
    return [g, b.neg(b.mul(g, b.floor(b.div(x, y))))]


@register_gradient("Pow")
def _pow(b, instr, grads):
    """d/dx = y * x^(y-1); d/dy = x^y * log(x), taken as 0 where x <= 0 (as TF does)."""
    x, y = instr.operands
    z, g = instr.result, grads[0]
    if not x.type.dtype.is_floating:
        return [None, None]
    dx = b.mul(g, b.mul(y, b.pow(x, b.sub(y, b.scalar_like(1.0, y)))))
    positive = b.gt(x, b.scalar_like(0.0, x))
    safe_x = b.select(positive, x, b.ones_like(x))
    log_x = b.select(positive, b.log(safe_x), b.zeros_like(x))
    return [dx, b.mul(g, b.mul(z, log_x))]


def _min_max(select_x_when: str):
    """TF1's rule: the gradient goes to x where x >= y (maximum) / x <= y (minimum), else y."""
    def rule(b, instr, grads):
        x, y = instr.operands
        g = grads[0]
        zeros = b.scalar_like(0, g)  # select broadcasts: no need for a full zeros tensor
        pick_x = b.emit(select_x_when, [x, y])[0]
        return [b.select(pick_x, g, zeros), b.select(pick_x, zeros, g)]
    return rule


register_gradient("Maximum")(_min_max("ge"))
register_gradient("Minimum")(_min_max("le"))


@register_gradient("Select")
def _select(b, instr, grads):
    cond = instr.operands[0]
    g = grads[0]
    zeros = b.scalar_like(0, g)
    return [None, b.select(cond, g, zeros), b.select(cond, zeros, g)]


@register_gradient("AddN")
def _add_n(b, instr, grads):
    return [grads[0]] * len(instr.operands)


# -- matmul -----------------------------------------------------------------------------------
@register_gradient("MatMul")
def _matmul(b, instr, grads):
    a, w = instr.operands
    g = grads[0]
    ta, tb = instr.attrs["transpose_a"], instr.attrs["transpose_b"]
    if not ta and not tb:
        da = b.matmul(g, w, transpose_a=False, transpose_b=True)
        dw = b.matmul(a, g, transpose_a=True, transpose_b=False)
    elif ta and not tb:
        da = b.matmul(w, g, transpose_a=False, transpose_b=True)
        dw = b.matmul(a, g, transpose_a=False, transpose_b=False)
    elif not ta and tb:
        da = b.matmul(g, w, transpose_a=False, transpose_b=False)
        dw = b.matmul(g, a, transpose_a=True, transpose_b=False)
    else:
        da = b.matmul(w, g, transpose_a=True, transpose_b=True)
        dw = b.matmul(g, a, transpose_a=True, transpose_b=True)
    return [da, dw]  # batch dims that were broadcast are summed back by autodiff


# -- reductions -------------------------------------------------------------------------------
def _reduction_attrs(instr):
    x = instr.operands[0]
    axis = instr.attrs["axis"]
    if axis is not None:
        axis = tuple(a % len(x.type.shape) for a in axis)
    return x, axis, instr.attrs["keepdims"]


@register_gradient("Sum")
def _sum(b, instr, grads):
    x, axis, keepdims = _reduction_attrs(instr)
    return [b.broadcast_back(grads[0], axis, keepdims, x.type)]


@register_gradient("Mean")
def _mean(b, instr, grads):
    x, axis, keepdims = _reduction_attrs(instr)
    dims = x.type.shape if axis is None else [x.type.shape[a] for a in axis]
    if any(d is None for d in dims):
        raise ValueError("the gradient of reduce_mean needs the reduced dimensions' sizes")
    count = 1
    for d in dims:
        count *= d
    scaled = b.div(grads[0], b.scalar_like(float(max(count, 1)), x))
    return [b.broadcast_back(scaled, axis, keepdims, x.type)]


def _extremum(b, instr, grads):
    """The gradient is shared equally between the tied extreme elements (TF1's rule)."""
    x, axis, keepdims = _reduction_attrs(instr)
    y = b.broadcast_back(instr.result, axis, keepdims, x.type)
    hits = b.convert(b.eq(x, y), dtype=x.type.dtype)
    ties = b.reduce_sum(hits, axis=axis, keepdims=keepdims)
    share = b.div(grads[0], ties)
    return [b.mul(hits, b.broadcast_back(share, axis, keepdims, x.type))]


register_gradient("Max")(_extremum)
register_gradient("Min")(_extremum)


@register_gradient("Prod")
def _prod(b, instr, grads):
    """prod / x; exact where x has no zeros (zeros give inf/nan, as the formula says)."""
    x, axis, keepdims = _reduction_attrs(instr)
    g = b.mul(grads[0], instr.result)
    return [b.div(b.broadcast_back(g, axis, keepdims, x.type), x)]
