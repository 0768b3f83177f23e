"""Generators of the neural-network ops (see fuzz_ops.py for the convention): convolutions,
their adjoints, pooling and its gradients, top_k and in_top_k. The chain's value is reshaped
to the 4-D input these ops take (its dimensions folded or padded with 1s), so that any chain
can feed them and every dtype probe sees them."""
from __future__ import annotations

from typing import Optional, Tuple

from flowjit import dtypes

from fuzz_ops import emit, generates, size_of
from fuzz_program import Chooser, Domain, Program, Var

FORMATS = ("NHWC", "NCHW")


def as_4d(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    dims = (1,) * (4 - len(shape)) + tuple(shape)
    while len(dims) > 4:
        dims = (dims[0] * dims[1],) + dims[2:]
    return dims


def geometry(ch: Chooser) -> Tuple[str, str, Tuple[int, int], Tuple[int, int]]:
    padding = ch.choice(("SAME", "VALID", "EXPLICIT"))
    strides = (ch.choice((1, 1, 2, 3)), ch.choice((1, 2)))
    dilations = (1, 1) if ch.chance(70) else (ch.choice((1, 2)), ch.choice((1, 2)))
    return ch.choice(FORMATS), padding, strides, dilations


def padding_source(padding: str, fmt: str, ch: Chooser) -> str:
    if padding != "EXPLICIT":
        return repr(padding)
    pairs = [[0, 0], [ch.integer(0, 2), ch.integer(0, 2)], [ch.integer(0, 2), ch.integer(0, 2)],
             [0, 0]]
    if fmt == "NCHW":
        pairs = [pairs[0], pairs[3], pairs[1], pairs[2]]
    return repr(pairs)


def spatial_out(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    k_eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return -(-size // stride)
    return max(-(-(size - k_eff + 1) // stride), 0)


@generates("Conv2D", "DepthwiseConv2dNative", "Conv2DBackpropInput",
           "DepthwiseConv2dNativeBackpropInput", "Conv2DBackpropFilter",
           "DepthwiseConv2dNativeBackpropFilter")
def convolution(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.static:
        return None
    dims = as_4d(x.shape)  # read as NHWC or NCHW
    fmt, padding, strides, dilations = geometry(ch)
    n, h, w, c = dims if fmt == "NHWC" else (dims[0], dims[2], dims[3], dims[1])
    kh, kw = ch.integer(1, 3), ch.integer(1, 3)
    pad_text = padding_source(padding, fmt, ch)
    if padding == "EXPLICIT":
        pads = eval(pad_text)  # (the literal just made)
        ph, pw = (pads[1], pads[2]) if fmt == "NHWC" else (pads[2], pads[3])
        h_eff, w_eff, kind = h + sum(ph), w + sum(pw), "VALID"
    else:
        h_eff, w_eff, kind = h, w, padding
    if kind == "VALID" and (h_eff < (kh - 1) * dilations[0] + 1 or
                            w_eff < (kw - 1) * dilations[1] + 1):
        return None
    depthwise = op_type.startswith("Depthwise")
    m = ch.integer(1, 3) if depthwise else ch.dim(0, upto=9)
    oh = spatial_out(h_eff, kh, strides[0], dilations[0], kind)
    ow = spatial_out(w_eff, kw, strides[1], dilations[1], kind)
    out_c = c * m if depthwise else m
    out = (n, oh, ow, out_c) if fmt == "NHWC" else (n, out_c, oh, ow)
    if size_of(out) > prog.max_elements or size_of((kh, kw, c, m)) > prog.max_elements:
        return None
    api = "depthwise_conv2d" if depthwise else "conv2d"
    geometry_text = (f"strides={[1, *strides, 1] if fmt == 'NHWC' else [1, 1, *strides]}, "
                     f"padding={pad_text}, data_format={fmt!r}, dilations={list(dilations)}")
    if depthwise:
        geometry_text = geometry_text.replace("dilations=", "rate=")
    x4 = f"tf.reshape({x}, {list(dims)})"
    work = kh * kw * (1 if depthwise else c)
    if op_type.endswith("BackpropInput"):
        f = prog.leaf(ch, x.dtype, (kh, kw, c, m))
        g = prog.leaf(ch, x.dtype, out)
        attrs = geometry_attrs(fmt, padding, pad_text, strides, dilations)
        return emit(prog, op_type, f"apply_op({op_type!r}, [{f}, {g}], dict(input_sizes="
                                   f"{tuple(dims)}, **{attrs}))", [f, g], work=kh * kw * m)
    if op_type.endswith("BackpropFilter"):
        g = prog.leaf(ch, x.dtype, out)
        attrs = geometry_attrs(fmt, padding, pad_text, strides, dilations)
        return emit(prog, op_type, f"apply_op({op_type!r}, [{x4}, {g}], dict(filter_sizes="
                                   f"{(kh, kw, c, m)}, **{attrs}))", [x, g], work=n * oh * ow)
    f = prog.leaf(ch, x.dtype, (kh, kw, c, m))
    return emit(prog, op_type, f"tf.nn.{api}({x4}, {f}, {geometry_text})", [x, f], work=work)


def geometry_attrs(fmt, padding, pad_text, strides, dilations) -> str:
    """The op's own attributes, for building an adjoint op directly."""
    four = (lambda a, b: (1, a, b, 1)) if fmt == "NHWC" else (lambda a, b: (1, 1, a, b))
    explicit = ()
    if padding == "EXPLICIT":
        explicit = tuple(v for pair in eval(pad_text) for v in pair)
    return repr({"strides": four(*strides), "padding": padding, "explicit_paddings": explicit,
                 "dilations": four(*dilations), "data_format": fmt})


@generates("MaxPool", "AvgPool", "MaxPoolGrad", "AvgPoolGrad")
def pooling(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.static:
        return None
    dims = as_4d(x.shape)
    fmt = ch.choice(FORMATS)
    padding = ch.choice(("SAME", "VALID"))
    n, h, w, c = dims if fmt == "NHWC" else (dims[0], dims[2], dims[3], dims[1])
    kh, kw = ch.integer(1, 3), ch.integer(1, 3)
    sh, sw = ch.integer(1, 3), ch.integer(1, 2)
    if padding == "VALID" and (h < kh or w < kw):
        return None
    four = (lambda a, b: [1, a, b, 1]) if fmt == "NHWC" else (lambda a, b: [1, 1, a, b])
    attrs = f"{four(kh, kw)}, {four(sh, sw)}, {padding!r}, data_format={fmt!r}"
    x4 = f"tf.reshape({x}, {list(dims)})"
    api = "max_pool" if op_type.startswith("Max") else "avg_pool"
    if not op_type.endswith("Grad"):
        return emit(prog, op_type, f"tf.nn.{api}({x4}, {attrs})", [x], work=kh * kw)
    oh, ow = spatial_out(h, kh, sh, 1, padding), spatial_out(w, kw, sw, 1, padding)
    out = (n, oh, ow, c) if fmt == "NHWC" else (n, c, oh, ow)
    g = prog.leaf(ch, x.dtype, out)
    op_attrs = (f"{{'ksize': {tuple(four(kh, kw))}, 'strides': {tuple(four(sh, sw))}, "
                f"'padding': {padding!r}, 'data_format': {fmt!r}}}")
    if op_type == "AvgPoolGrad":
        return emit(prog, op_type, f"apply_op('AvgPoolGrad', [{g}], dict(orig_input_shape="
                                   f"{tuple(dims)}, **{op_attrs}))", [g], work=kh * kw)
    return emit(prog, op_type, f"apply_op('MaxPoolGrad', [{x4}, tf.nn.max_pool({x4}, {attrs}), "
                               f"{g}], {op_attrs})", [x, g], work=kh * kw,
                differentiable=False)


@generates("TopKV2")
def top_k(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.shape or x.dtype.is_bool or not x.static:
        return None
    k = ch.integer(0, x.shape[-1])
    outputs = emit(prog, op_type, f"tf.nn.top_k({x}, {k})", [x], outputs=2)
    return ch.choice(outputs)


@generates("InTopKV2")
def in_top_k(ch: Chooser, prog: Program, x: Var, op_type: str) -> Optional[Var]:
    if not x.dtype.is_floating or not x.static:
        return None
    rows, classes = (1, x.size) if len(x.shape) != 2 else x.shape
    targets = prog.leaf(ch, ch.choice((dtypes.int32, dtypes.int64)), (rows,),
                        Domain("index", max(classes, 1), bad=ch.chance(10)))
    return emit(prog, op_type, f"tf.nn.in_top_k(tf.reshape({x}, {[rows, classes]}), {targets}, "
                               f"{ch.integer(0, 3)})", [x, targets], differentiable=False)
