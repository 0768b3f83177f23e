"""Gradient rules of convolutions and pooling (see math_grad.py for the convention).

A convolution's adjoints are themselves ops (Conv2DBackpropInput/Filter, as in TF), and each
adjoint's own gradient is again one of the three: the rules close over the family, so
second derivatives (and conv2d_transpose's gradients) need nothing else.
"""
from __future__ import annotations

from flowjit.graph.registry import register_gradient

_GEOMETRY = ("strides", "padding", "explicit_paddings", "dilations", "data_format")
_POOLING = ("ksize", "strides", "padding", "data_format")


def _geometry(instr, keys=_GEOMETRY) -> dict:
    return {k: instr.attrs[k] for k in keys}


def _conv_family(forward: str, prefix: str) -> None:
    """conv = forward(x, w); backprop_input(w, g) and backprop_filter(x, g) its adjoints."""
    conv = prefix
    bp_input, bp_filter = prefix + "_backprop_input", prefix + "_backprop_filter"

    @register_gradient(forward)
    def _conv(b, instr, grads):
        x, w = instr.operands
        g, attrs = grads[0], _geometry(instr)
        return [b.emit(bp_input, [w, g], input_sizes=tuple(x.type.shape), **attrs)[0],
                b.emit(bp_filter, [x, g], filter_sizes=tuple(w.type.shape), **attrs)[0]]

    @register_gradient(forward + "BackpropInput")
    def _backprop_input(b, instr, grads):  # y = conv^T(g; w)
        w, g = instr.operands
        dy, attrs = grads[0], _geometry(instr)
        dw = b.emit(bp_filter, [dy, g], filter_sizes=tuple(w.type.shape), **attrs)[0]
        return [dw, b.emit(conv, [dy, w], **attrs)[0]]

    @register_gradient(forward + "BackpropFilter")
    def _backprop_filter(b, instr, grads):  # y = the filter gradient of x and g
        x, g = instr.operands
        dy, attrs = grads[0], _geometry(instr)
        dx = b.emit(bp_input, [dy, g], input_sizes=tuple(x.type.shape), **attrs)[0]
        return [dx, b.emit(conv, [x, dy], **attrs)[0]]


_conv_family("Conv2D", "conv2d")
_conv_family("DepthwiseConv2dNative", "depthwise_conv2d")


@register_gradient("MaxPool")
def _max_pool(b, instr, grads):
    x = instr.operands[0]
    return [b.max_pool_grad(x, instr.result, grads[0], **_geometry(instr, _POOLING))]


@register_gradient("AvgPool")
def _avg_pool(b, instr, grads):
    x = instr.operands[0]
    return [b.avg_pool_grad(grads[0], orig_input_shape=tuple(x.type.shape),
                            **_geometry(instr, _POOLING))]


@register_gradient("AvgPoolGrad")
def _avg_pool_grad(b, instr, grads):  # linear in g: its adjoint is the pooling itself
    return [b.avg_pool(grads[0], **_geometry(instr, _POOLING))]
