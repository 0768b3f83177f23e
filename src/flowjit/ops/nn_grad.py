"""Gradient rules of the nn ops (see math_grad.py for the convention)."""
from __future__ import annotations

from flowjit.graph.registry import register_gradient


# The activations' gradients test their output, not their input (y > 0 exactly where x > 0),
# as TF1 does: the input is then used only by the activation, which fuses into the producer
# (a matmul's epilogue) instead of staying a separate kernel.
@register_gradient("Relu")
def _relu(b, instr, grads):
    y = instr.result
    g = grads[0]
    return [b.select(b.gt(y, b.scalar_like(0, y)), g, b.scalar_like(0, g))]


@register_gradient("Relu6")
def _relu6(b, instr, grads):
    y = instr.result
    g = grads[0]
    inside = b.emit("and", [b.gt(y, b.scalar_like(0, y)), b.lt(y, b.scalar_like(6, y))])[0]
    return [b.select(inside, g, b.scalar_like(0, g))]


@register_gradient("Softplus")
def _softplus(b, instr, grads):
    return [b.mul(grads[0], b.sigmoid(instr.operands[0]))]


@register_gradient("Elu")
def _elu(b, instr, grads):
    y, g = instr.result, grads[0]
    negative_side = b.mul(g, b.add(y, b.scalar_like(1.0, y)))
    return [b.select(b.gt(y, b.scalar_like(0.0, y)), g, negative_side)]


def _keep_last(b, v, axis):
    return b.reduce_sum(v, axis=(axis % len(v.type.shape),), keepdims=True)


@register_gradient("Softmax")
def _softmax(b, instr, grads):
    y, g = instr.result, grads[0]
    axis = instr.attrs["axis"]
    dot = _keep_last(b, b.mul(g, y), axis)
    return [b.mul(b.sub(g, dot), y)]


@register_gradient("LogSoftmax")
def _log_softmax(b, instr, grads):
    y, g = instr.result, grads[0]
    axis = instr.attrs["axis"]
    return [b.sub(g, b.mul(b.exp(y), _keep_last(b, g, axis)))]


def _per_example(b, g, like):
    """g of shape [batch...] as [batch..., 1], to scale per-class terms."""
    return b.expand_dims(g, axis=len(like.type.shape) - 1)


@register_gradient("SoftmaxCrossEntropyWithLogits")
def _softmax_xent(b, instr, grads):
    logits, labels = instr.operands
    loss, backprop = instr.results
    g_loss = grads[0]
    if g_loss is None:
        return [None, None]
    scale = _per_example(b, g_loss, logits)
    d_logits = b.mul(scale, backprop)
    d_labels = b.mul(scale, b.neg(b.log_softmax(logits, axis=-1)))
    return [d_logits, d_labels]


@register_gradient("SparseSoftmaxCrossEntropyWithLogits")
def _sparse_softmax_xent(b, instr, grads):
    logits = instr.operands[0]
    backprop = instr.results[1]
    g_loss = grads[0]
    if g_loss is None:
        return [None, None]
    return [b.mul(_per_example(b, g_loss, logits), backprop), None]
