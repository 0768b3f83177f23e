"""Convolutions and pooling: `tf.nn.conv2d` (NHWC/NCHW, strides, SAME/VALID/explicit
padding, dilations), its two adjoints as ops of their own (Conv2DBackpropInput, which is
also `conv2d_transpose`, and Conv2DBackpropFilter, as in TF), depthwise convolution, conv1d
(through conv2d), and max/average pooling with their gradient ops.

Every kernel works on NHWC arrays (an NCHW op transposes on the way in and out) and loops
over the kh x kw filter taps, each a strided view of the padded input contracted with one
filter slice: out += x[:, i*dh::sh, j*dw::sw, :] @ w[i, j]. Window geometry follows TF:
SAME gives ceil(in / stride) outputs with the padding split (the extra one after), VALID
ceil((in - (k-1)*d) / stride). The compiled CPU kernels are in codegen/conv.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.graph.registry import (CONVOLUTION, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape
from flowjit.ops import array
from flowjit.ops.base import (FLOATS, apply_op, check_dtype, check_same_dtype,
                              convert_to_tensor, static_int_list)

FORMATS = ("NHWC", "NCHW")
PADDINGS = ("SAME", "VALID", "EXPLICIT")


# -- window geometry -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One spatial dimension of a convolution or pooling: input and output sizes, the filter
    (window) size, stride, dilation and the padding before and after."""

    size: int
    out: int
    k: int
    stride: int
    dilation: int
    before: int
    after: int

    def taps(self, i: int) -> slice:
        """The padded-input positions tap `i` reads for outputs 0..out-1."""
        start = i * self.dilation
        return slice(start, start + self.stride * (self.out - 1) + 1, self.stride)


def window(size: Optional[int], k: int, stride: int, dilation: int, padding: str,
           explicit: Tuple[int, int] = (0, 0)) -> Optional[Window]:
    """The geometry of one spatial dimension (None when its size is not known)."""
    if stride < 1 or dilation < 1 or k < 0:
        raise ShapeInferenceError(f"strides and dilations must be >= 1, got stride {stride}, "
                                  f"dilation {dilation}")
    if size is None:
        return None
    k_eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = -(-size // stride)
        total = max((out - 1) * stride + k_eff - size, 0)
        before, after = total // 2, total - total // 2
    elif padding == "VALID":
        out = max(-(-(size - k_eff + 1) // stride), 0)
        before = after = 0
    else:
        before, after = explicit
        out = (size + before + after - k_eff) // stride + 1
    if out < 0 or (padding != "SAME" and size + before + after < k_eff):
        raise ShapeInferenceError(f"the window {k_eff} (filter {k}, dilation {dilation}) is "
                                  f"larger than the padded input dimension "
                                  f"{size + before + after}: the output size would be "
                                  f"negative")
    return Window(size, out, k, stride, dilation, before, after)


def _spatial_attr(values: Sequence[int], data_format: str, what: str) -> Tuple[int, int]:
    if len(values) != 4:
        raise ShapeInferenceError(f"{what} must have 4 entries, got {list(values)}")
    n, c = (0, 3) if data_format == "NHWC" else (0, 1)
    if values[n] != 1 or values[c] != 1:
        raise ShapeInferenceError(f"{what} {list(values)} must be 1 in the batch and depth "
                                  f"dimensions")
    h, w = (1, 2) if data_format == "NHWC" else (2, 3)
    return values[h], values[w]


def _explicit(attrs: dict) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    pads = attrs.get("explicit_paddings") or ()
    if attrs["padding"] != "EXPLICIT":
        return (0, 0), (0, 0)
    if len(pads) != 8 or any(p < 0 for p in pads):
        raise ShapeInferenceError(f"explicit_paddings must be 8 non-negative numbers, got "
                                  f"{list(pads)}")
    h, w = (1, 2) if attrs["data_format"] == "NHWC" else (2, 3)
    return (pads[2 * h], pads[2 * h + 1]), (pads[2 * w], pads[2 * w + 1])


def _check_attrs(attrs: dict) -> None:
    if attrs["data_format"] not in FORMATS:
        raise ShapeInferenceError(f"data_format must be one of {FORMATS}, got "
                                  f"{attrs['data_format']!r}")
    if attrs["padding"] not in PADDINGS:
        raise ShapeInferenceError(f"padding must be one of {PADDINGS}, got "
                                  f"{attrs['padding']!r}")


def windows(nhwc: Sequence[Optional[int]], kh: int, kw: int, attrs: dict
            ) -> Tuple[Optional[Window], Optional[Window]]:
    """The (height, width) geometry of an op with `attrs` on an NHWC input shape."""
    _check_attrs(attrs)
    fmt = attrs["data_format"]
    sh, sw = _spatial_attr(attrs["strides"], fmt, "strides")
    dh, dw = _spatial_attr(attrs.get("dilations", (1, 1, 1, 1)), fmt, "dilations")
    ph, pw = _explicit(attrs)
    return (window(nhwc[1], kh, sh, dh, attrs["padding"], ph),
            window(nhwc[2], kw, sw, dw, attrs["padding"], pw))


def to_nhwc(dims: Sequence[Any], data_format: str) -> Tuple[Any, ...]:
    dims = tuple(dims)
    return dims if data_format == "NHWC" else (dims[0], dims[2], dims[3], dims[1])


def from_nhwc(dims: Sequence[Any], data_format: str) -> Tuple[Any, ...]:
    dims = tuple(dims)
    return dims if data_format == "NHWC" else (dims[0], dims[3], dims[1], dims[2])


def _nhwc_array(x: np.ndarray, data_format: str) -> np.ndarray:
    return x if data_format == "NHWC" else x.transpose(0, 2, 3, 1)


def _from_nhwc_array(x: np.ndarray, data_format: str) -> np.ndarray:
    x = x if data_format == "NHWC" else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def _rank4(spec: TensorSpec, what: str) -> Tuple[Optional[int], ...]:
    if spec.shape.dims is None:
        return (None,) * 4
    if len(spec.shape.dims) != 4:
        raise ShapeInferenceError(f"{what} must be 4-D, got shape {spec.shape}")
    return tuple(spec.shape.dims)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


# -- Conv2D and its adjoints (and the depthwise ones) --------------------------------------------
def _conv_out_channels(filter_dims, depthwise: bool):
    if depthwise:
        return None if None in filter_dims[2:] else filter_dims[2] * filter_dims[3]
    return filter_dims[3]


def _conv_infer(depthwise: bool):
    def infer(inputs, **attrs):
        x, w = inputs
        check_same_dtype(inputs)
        check_dtype(x, FLOATS, "input")
        fmt = attrs["data_format"]
        _check_attrs(attrs)
        xd = to_nhwc(_rank4(x, "input"), fmt)
        wd = _rank4(w, "filter")
        if None not in (xd[3], wd[2]) and xd[3] != wd[2]:
            raise ShapeInferenceError(f"input depth {xd[3]} must equal the filter's input "
                                      f"depth {wd[2]} (filter shape {list(wd)})")
        win = windows(xd, wd[0] or 1, wd[1] or 1, attrs) if None not in wd[:2] else (None, None)
        out = (xd[0], win[0] and win[0].out, win[1] and win[1].out,
               _conv_out_channels(wd, depthwise))
        return [TensorSpec(x.dtype, TensorShape(from_nhwc(out, fmt)))]
    return infer


def _taps(x: np.ndarray, wh: Window, ww: Window, i: int, j: int) -> np.ndarray:
    return x[:, wh.taps(i), ww.taps(j), :]


def _padded(x: np.ndarray, wh: Window, ww: Window, value: float = 0.0) -> np.ndarray:
    pads = ((0, 0), (wh.before, wh.after), (ww.before, ww.after), (0, 0))
    return np.pad(x, pads, constant_values=value) if any(sum(p) for p in pads) else x


def _cropped(xp: np.ndarray, wh: Window, ww: Window) -> np.ndarray:
    return xp[:, wh.before:wh.before + wh.size, ww.before:ww.before + ww.size, :]


def _conv_kernel(depthwise: bool):
    def kernel(x, w, **attrs):
        fmt = attrs["data_format"]
        xn = _nhwc_array(x, fmt)
        ct = _compute_dtype(x.dtype)
        kh, kw, ci, m = w.shape
        wh, ww = windows(xn.shape, kh, kw, attrs)
        xp = _padded(xn.astype(ct, copy=False), wh, ww)
        w = w.astype(ct, copy=False)
        n = xn.shape[0]
        if depthwise:
            out = np.zeros((n, wh.out, ww.out, ci, m), ct)
            for i in range(kh):
                for j in range(kw):
                    out += _taps(xp, wh, ww, i, j)[..., None] * w[i, j]
            out = out.reshape(n, wh.out, ww.out, ci * m)
        else:
            out = np.zeros((n, wh.out, ww.out, m), ct)
            for i in range(kh):
                for j in range(kw):
                    out += _taps(xp, wh, ww, i, j) @ w[i, j]
        return _from_nhwc_array(out.astype(x.dtype, copy=False), fmt)
    return kernel


def _adjoint_infer(inputs, sizes, what, attrs, depthwise):
    """The shared rule of the adjoints: `sizes` (the attribute naming the result's shape)
    has 4 entries, and out_backprop (inputs[1]) has the shape of the convolution of the
    input with the filter (one of them given by `sizes`). Returns the known dims of the
    input (NHWC) and the filter."""
    check_same_dtype(inputs)
    check_dtype(inputs[0], FLOATS, "input" if what == "filter_sizes" else "filter")
    fmt = attrs["data_format"]
    _check_attrs(attrs)
    if len(sizes) != 4:
        raise ShapeInferenceError(f"{what} must have 4 entries, got {list(sizes)}")
    if what == "input_sizes":
        xd, wd = to_nhwc(sizes, fmt), _rank4(inputs[0], "filter")
    else:
        xd, wd = to_nhwc(_rank4(inputs[0], "input"), fmt), tuple(sizes)
    gd = to_nhwc(_rank4(inputs[1], "out_backprop"), fmt)
    if None in wd[:2]:
        return
    wh, ww = windows(xd, wd[0], wd[1], attrs)
    want = (xd[0], wh and wh.out, ww and ww.out, _conv_out_channels(wd, depthwise))
    if not TensorShape(gd).is_compatible_with(TensorShape(want)):
        raise ShapeInferenceError(
            f"out_backprop has shape {list(from_nhwc(gd, fmt))} but the convolution of an "
            f"input of shape {list(from_nhwc(xd, fmt))} with a filter of shape {list(wd)} has "
            f"shape {list(from_nhwc(want, fmt))}")
    if None not in (xd[3], wd[2]) and xd[3] != wd[2]:
        raise ShapeInferenceError(f"input depth {xd[3]} must equal the filter's input depth "
                                  f"{wd[2]}")


def _backprop_infer(depthwise: bool, sizes_attr: str):
    """The shape rule of a backprop op: its result has the shape its `sizes_attr`
    (input_sizes or filter_sizes) says, checked against the other operands."""
    def infer(inputs, **attrs):
        sizes = attrs.pop(sizes_attr)
        _adjoint_infer(inputs, sizes, sizes_attr, attrs, depthwise)
        return [TensorSpec(inputs[0].dtype, TensorShape(tuple(sizes)))]
    return infer


def _backprop_input_kernel(depthwise: bool):
    def kernel(w, g, *, input_sizes, **attrs):
        fmt = attrs["data_format"]
        ct = _compute_dtype(g.dtype)
        gn = _nhwc_array(g, fmt).astype(ct, copy=False)
        w = w.astype(ct, copy=False)
        xd = to_nhwc(input_sizes, fmt)
        kh, kw, ci, m = w.shape
        wh, ww = windows(xd, kh, kw, attrs)
        dxp = np.zeros((xd[0], wh.size + wh.before + wh.after, ww.size + ww.before + ww.after,
                        ci), ct)
        if depthwise:
            g5 = gn.reshape(gn.shape[:3] + (ci, m))
        for i in range(kh):
            for j in range(kw):
                if depthwise:
                    dxp[:, wh.taps(i), ww.taps(j), :] += np.sum(g5 * w[i, j], axis=-1)
                else:
                    dxp[:, wh.taps(i), ww.taps(j), :] += gn @ w[i, j].T
        return _from_nhwc_array(_cropped(dxp, wh, ww).astype(g.dtype, copy=False), fmt)
    return kernel


def _backprop_filter_kernel(depthwise: bool):
    def kernel(x, g, *, filter_sizes, **attrs):
        fmt = attrs["data_format"]
        ct = _compute_dtype(x.dtype)
        xn = _nhwc_array(x, fmt).astype(ct, copy=False)
        gn = _nhwc_array(g, fmt).astype(ct, copy=False)
        kh, kw, ci, m = filter_sizes
        wh, ww = windows(xn.shape, kh, kw, attrs)
        xp = _padded(xn, wh, ww)
        if not depthwise:
            return _filter_gradient_gemm(xp, gn, wh, ww, filter_sizes).astype(x.dtype,
                                                                              copy=False)
        dw = np.zeros(tuple(filter_sizes), ct)
        rows = gn.shape[0] * wh.out * ww.out
        g5 = gn.reshape(rows, ci, m)
        for i in range(kh):
            for j in range(kw):
                patch = _taps(xp, wh, ww, i, j).reshape(rows, ci)
                dw[i, j] = np.einsum("rc,rcm->cm", patch, g5)
        return dw.astype(x.dtype, copy=False)
    return kernel


PATCH_BYTES = 32 << 20  # im2col patches gathered at once by the filter gradient


def _filter_gradient_gemm(xp: np.ndarray, g: np.ndarray, wh: Window, ww: Window,
                          filter_sizes) -> np.ndarray:
    """dW[K = (i, j, c), m] = patches[rows, K]^T @ g[rows, m], a few images' patches (im2col)
    at a time: one large GEMM per chunk instead of a small one per filter tap."""
    kh, kw, ci, m = filter_sizes
    if wh.out == 0 or ww.out == 0:
        return np.zeros(tuple(filter_sizes), xp.dtype)
    span_h, span_w = (kh - 1) * wh.dilation + 1, (kw - 1) * ww.dilation + 1
    views = np.lib.stride_tricks.sliding_window_view(xp, (span_h, span_w), axis=(1, 2))
    views = views[:, :(wh.out - 1) * wh.stride + 1:wh.stride,
                  :(ww.out - 1) * ww.stride + 1:ww.stride, :, ::wh.dilation, ::ww.dilation]
    per_image = wh.out * ww.out * kh * kw * ci * xp.itemsize
    step = max(1, PATCH_BYTES // max(per_image, 1))
    dw = np.zeros((kh * kw * ci, m), xp.dtype)
    for start in range(0, xp.shape[0], step):
        chunk = views[start:start + step].transpose(0, 1, 2, 4, 5, 3)  # [n, oh, ow, i, j, c]
        patches = chunk.reshape(-1, kh * kw * ci)
        dw += patches.T @ g[start:start + step].reshape(-1, m)
    return dw.reshape(kh, kw, ci, m)


CONV_DEFAULTS = {"padding": "VALID", "explicit_paddings": (), "dilations": (1, 1, 1, 1),
                 "data_format": "NHWC", "strides": (1, 1, 1, 1)}

for _name, _mnemonic, _depthwise in (("Conv2D", "conv2d", False),
                                     ("DepthwiseConv2dNative", "depthwise_conv2d", True)):
    # conv2d's CPU kernel is an im2col GEMM with its epilogue fused (codegen/conv.py)
    register_op(_name, _mnemonic, _conv_infer(_depthwise), _conv_kernel(_depthwise),
                attr_defaults=CONV_DEFAULTS, role=None if _depthwise else CONVOLUTION)
    register_op(_name + "BackpropInput",
                _mnemonic + "_backprop_input", _backprop_infer(_depthwise, "input_sizes"),
                _backprop_input_kernel(_depthwise), attr_defaults=CONV_DEFAULTS)
    register_op(_name + "BackpropFilter", _mnemonic + "_backprop_filter",
                _backprop_infer(_depthwise, "filter_sizes"), _backprop_filter_kernel(_depthwise),
                attr_defaults=CONV_DEFAULTS)


# -- pooling ------------------------------------------------------------------------------------
POOL_DEFAULTS = {"padding": "VALID", "data_format": "NHWC", "strides": (1, 1, 1, 1),
                 "ksize": (1, 1, 1, 1)}


def _pool_windows(nhwc, attrs) -> Tuple[Optional[Window], Optional[Window]]:
    if attrs["padding"] == "EXPLICIT":
        raise ShapeInferenceError("pooling takes padding SAME or VALID")
    kh, kw = _spatial_attr(attrs["ksize"], attrs["data_format"], "ksize")
    if kh < 1 or kw < 1:
        raise ShapeInferenceError(f"ksize {list(attrs['ksize'])} must be >= 1")
    return windows(nhwc, kh, kw, attrs)


def _pool_infer(inputs, **attrs):
    (x,) = inputs
    check_dtype(x, FLOATS, "input")
    _check_attrs(attrs)
    fmt = attrs["data_format"]
    xd = to_nhwc(_rank4(x, "input"), fmt)
    wh, ww = _pool_windows(xd, attrs)
    out = (xd[0], wh and wh.out, ww and ww.out, xd[3])
    return [TensorSpec(x.dtype, TensorShape(from_nhwc(out, fmt)))]


def _max_pool_kernel(x, **attrs):
    fmt = attrs["data_format"]
    xn = _nhwc_array(x, fmt)
    wh, ww = _pool_windows(xn.shape, attrs)
    xp = _padded(xn, wh, ww, -np.inf)
    out = np.full((xn.shape[0], wh.out, ww.out, xn.shape[3]), -np.inf, x.dtype)
    for i in range(wh.k):
        for j in range(ww.k):
            out = np.maximum(out, _taps(xp, wh, ww, i, j))
    return _from_nhwc_array(out, fmt)


def _pool_counts(wh: Window, ww: Window, dtype) -> np.ndarray:
    """How many real (unpadded) inputs each output's window covers: [1, oh, ow, 1]."""
    ones = _padded(np.ones((1, wh.size, ww.size, 1), dtype), wh, ww)
    count = np.zeros((1, wh.out, ww.out, 1), dtype)
    for i in range(wh.k):
        for j in range(ww.k):
            count += _taps(ones, wh, ww, i, j)
    return count


def _avg_pool_kernel(x, **attrs):
    fmt = attrs["data_format"]
    ct = _compute_dtype(x.dtype)
    xn = _nhwc_array(x, fmt).astype(ct, copy=False)
    wh, ww = _pool_windows(xn.shape, attrs)
    xp = _padded(xn, wh, ww)
    out = np.zeros((xn.shape[0], wh.out, ww.out, xn.shape[3]), ct)
    for i in range(wh.k):
        for j in range(ww.k):
            out += _taps(xp, wh, ww, i, j)
    out /= _pool_counts(wh, ww, ct)
    return _from_nhwc_array(out.astype(x.dtype, copy=False), fmt)


def _max_pool_grad_infer(inputs, **attrs):
    x, y, g = inputs
    check_same_dtype(inputs)
    (want,) = _pool_infer([x], **attrs)
    for spec, what in ((y, "orig_output"), (g, "grad")):
        if not spec.shape.is_compatible_with(want.shape):
            raise ShapeInferenceError(f"{what} has shape {spec.shape}, the pooling's output "
                                      f"has shape {want.shape}")
    return [TensorSpec(x.dtype, x.shape)]


def _max_pool_grad_kernel(x, y, g, **attrs):
    """Each output's gradient goes to the first maximum of its window (row-major), as TF."""
    fmt = attrs["data_format"]
    xn, yn, gn = (_nhwc_array(v, fmt) for v in (x, y, g))
    wh, ww = _pool_windows(xn.shape, attrs)
    xp = _padded(xn, wh, ww, -np.inf)
    dxp = np.zeros(xp.shape, x.dtype)
    taken = np.zeros(yn.shape, bool)
    for i in range(wh.k):
        for j in range(ww.k):
            hit = (_taps(xp, wh, ww, i, j) == yn) & ~taken
            dxp[:, wh.taps(i), ww.taps(j), :] += np.where(hit, gn, 0)
            taken |= hit
    return _from_nhwc_array(_cropped(dxp, wh, ww), fmt)


def _avg_pool_grad_infer(inputs, *, orig_input_shape, **attrs):
    (g,) = inputs
    check_dtype(g, FLOATS, "grad")
    if len(orig_input_shape) != 4:
        raise ShapeInferenceError(f"orig_input_shape must have 4 entries, got "
                                  f"{list(orig_input_shape)}")
    (want,) = _pool_infer([TensorSpec(g.dtype, TensorShape(tuple(orig_input_shape)))], **attrs)
    if not g.shape.is_compatible_with(want.shape):
        raise ShapeInferenceError(f"grad has shape {g.shape}, the pooling's output has shape "
                                  f"{want.shape}")
    return [TensorSpec(g.dtype, TensorShape(tuple(orig_input_shape)))]


def _avg_pool_grad_kernel(g, *, orig_input_shape, **attrs):
    fmt = attrs["data_format"]
    ct = _compute_dtype(g.dtype)
    gn = _nhwc_array(g, fmt).astype(ct, copy=False)
    xd = to_nhwc(orig_input_shape, fmt)
    wh, ww = _pool_windows(xd, attrs)
    share = gn / _pool_counts(wh, ww, ct)
    dxp = np.zeros((xd[0], wh.size + wh.before + wh.after, ww.size + ww.before + ww.after,
                    xd[3]), ct)
    for i in range(wh.k):
        for j in range(ww.k):
            dxp[:, wh.taps(i), ww.taps(j), :] += share
    return _from_nhwc_array(_cropped(dxp, wh, ww).astype(g.dtype, copy=False), fmt)


register_op("MaxPool", "max_pool", _pool_infer, _max_pool_kernel, attr_defaults=POOL_DEFAULTS)
register_op("AvgPool", "avg_pool", _pool_infer, _avg_pool_kernel, attr_defaults=POOL_DEFAULTS)
register_op("MaxPoolGrad", "max_pool_grad", _max_pool_grad_infer, _max_pool_grad_kernel,
            attr_defaults=POOL_DEFAULTS)
register_op("AvgPoolGrad", "avg_pool_grad", _avg_pool_grad_infer, _avg_pool_grad_kernel,
            attr_defaults=POOL_DEFAULTS)


# -- the TF1 API ------------------------------------------------------------------------------
def _four(value, data_format: str, what: str, spatial: int = 2) -> Tuple[int, ...]:
    """strides/dilations/ksize as TF1 takes them (an int, one per spatial dimension, or
    all 4) as the 4 entries of the op's attribute."""
    values = static_int_list(value, what) if value is not None else (1,)
    if len(values) == 1:
        values = values * spatial
    if len(values) == spatial:
        h, w = values
        return (1, h, w, 1) if data_format == "NHWC" else (1, 1, h, w)
    if len(values) == 4:
        return tuple(values)
    raise errors.ShapeError(f"{what} must have 1, 2 or 4 entries, got {list(values)}")


def _padding_attrs(padding, data_format: str) -> dict:
    if isinstance(padding, str):
        padding = padding.upper()
        if padding not in ("SAME", "VALID"):
            raise errors.InvalidArgumentError(f"padding must be 'SAME', 'VALID' or a list of "
                                              f"pairs, got {padding!r}")
        return {"padding": padding, "explicit_paddings": ()}
    pairs = [tuple(static_int_list(p, "padding")) for p in padding]
    if len(pairs) != 4 or any(len(p) != 2 for p in pairs):
        raise errors.InvalidArgumentError(f"explicit padding must be 4 pairs, got {padding!r}")
    n, c = (0, 3) if data_format == "NHWC" else (0, 1)
    if pairs[n] != (0, 0) or pairs[c] != (0, 0):
        raise errors.InvalidArgumentError(f"explicit padding {padding!r} must be 0 in the "
                                          f"batch and depth dimensions")
    return {"padding": "EXPLICIT", "explicit_paddings": tuple(v for p in pairs for v in p)}


def _format(data_format) -> str:
    fmt = data_format or "NHWC"
    if fmt not in FORMATS:
        raise errors.InvalidArgumentError(f"data_format must be 'NHWC' or 'NCHW', got {fmt!r}")
    return fmt


def _conv_attrs(strides, padding, data_format, dilations) -> dict:
    """A 2-D convolution's (or its adjoints') attributes from TF1's arguments."""
    fmt = _format(data_format)
    return {"strides": _four(strides, fmt, "strides"), "data_format": fmt,
            "dilations": _four(dilations, fmt, "dilations"), **_padding_attrs(padding, fmt)}


def conv2d(input, filter=None, strides=None, padding=None, use_cudnn_on_gpu=True,
           data_format="NHWC", dilations=None, name=None, filters=None):
    """`tf.nn.conv2d`: input [batch, h, w, in] (NHWC) or [batch, in, h, w] (NCHW), filter
    [kh, kw, in, out]."""
    x = convert_to_tensor(input)
    w = convert_to_tensor(filter if filter is not None else filters, dtype_hint=x.dtype)
    if padding is None or strides is None:
        raise TypeError("conv2d needs strides= and padding=")
    attrs = _conv_attrs(strides, padding, data_format, dilations)
    return apply_op("Conv2D", [x, w], attrs, name=name, default_name="Conv2D")


def convolution(input, filter, padding, strides=None, dilation_rate=None, name=None,
                data_format=None, filters=None):
    """`tf.nn.convolution` for 1-D and 2-D inputs."""
    x = convert_to_tensor(input)
    rank = x.shape.ndims
    if rank == 3:
        return conv1d(x, filter if filter is not None else filters, strides or 1, padding,
                      data_format=data_format, dilations=dilation_rate, name=name)
    return conv2d(x, filter if filter is not None else filters, strides or 1, padding,
                  data_format=data_format, dilations=dilation_rate, name=name)


def conv2d_backprop_input(input_sizes, filter, out_backprop, strides, padding,
                          use_cudnn_on_gpu=True, data_format="NHWC", dilations=None,
                          name=None):
    w = convert_to_tensor(filter)
    g = convert_to_tensor(out_backprop, dtype_hint=w.dtype)
    attrs = {**_conv_attrs(strides, padding, data_format, dilations),
             "input_sizes": static_int_list(input_sizes, "input_sizes")}
    return apply_op("Conv2DBackpropInput", [w, g], attrs, name=name,
                    default_name="Conv2DBackpropInput")


def conv2d_backprop_filter(input, filter_sizes, out_backprop, strides, padding,
                           use_cudnn_on_gpu=True, data_format="NHWC", dilations=None,
                           name=None):
    x = convert_to_tensor(input)
    g = convert_to_tensor(out_backprop, dtype_hint=x.dtype)
    attrs = {**_conv_attrs(strides, padding, data_format, dilations),
             "filter_sizes": static_int_list(filter_sizes, "filter_sizes")}
    return apply_op("Conv2DBackpropFilter", [x, g], attrs, name=name,
                    default_name="Conv2DBackpropFilter")


def conv2d_transpose(value=None, filter=None, output_shape=None, strides=None,
                     padding="SAME", data_format="NHWC", name=None, input=None, filters=None,
                     dilations=None):
    """The adjoint of conv2d: filter [kh, kw, out, in], output_shape the (static) shape of
    the result."""
    value = value if value is not None else input
    filter = filter if filter is not None else filters
    fmt = _format(data_format)
    w = convert_to_tensor(filter)
    g = convert_to_tensor(value, dtype_hint=w.dtype)
    sizes = list(static_int_list(output_shape, "output_shape"))
    if sizes[0] == -1 and g.shape.ndims == 4 and g.shape.dims[0] is not None:
        sizes[0] = g.shape.dims[0]
    if -1 in sizes:
        raise errors.UnimplementedError(f"conv2d_transpose output_shape {sizes} must be known "
                                        f"when the graph is built")
    if w.shape.ndims == 4 and g.shape.ndims == 4:
        in_depth = g.shape.dims[3 if fmt == "NHWC" else 1]
        if None not in (in_depth, w.shape.dims[3]) and in_depth != w.shape.dims[3]:
            raise errors.ShapeError(f"conv2d_transpose: input depth {in_depth} of "
                                    f"{g.describe()} must equal the filter's last dimension "
                                    f"{w.shape.dims[3]} (filter shape {w.shape})")
    return conv2d_backprop_input(sizes, w, g, strides, padding, data_format=fmt,
                                 dilations=dilations, name=name or "conv2d_transpose")


def conv1d(value=None, filters=None, stride=None, padding=None, use_cudnn_on_gpu=None,
           data_format=None, name=None, input=None, dilations=None):
    """`tf.nn.conv1d`: input [batch, width, in] (NWC) or [batch, in, width] (NCW), filters
    [k, in, out]; a conv2d over a height of 1."""
    value = value if value is not None else input
    fmt = data_format or "NWC"
    if fmt not in ("NWC", "NCW"):
        raise errors.InvalidArgumentError(f"conv1d data_format must be NWC or NCW, got {fmt!r}")
    x = convert_to_tensor(value)
    w = convert_to_tensor(filters, dtype_hint=x.dtype)
    from flowjit.graph.core import get_default_graph
    with get_default_graph().name_scope(name or "conv1d") as scope:
        spatial = 1 if fmt == "NWC" else 2
        x4 = array.expand_dims(x, spatial)
        w4 = array.expand_dims(w, 0)
        stride = static_int_list(stride, "stride")[-1] if not isinstance(stride, int) \
            else stride
        dilation = 1 if dilations is None else static_int_list(dilations, "dilations")[-1]
        pad = padding if isinstance(padding, str) else \
            [[0, 0], [0, 0], list(padding[1]), [0, 0]] if fmt == "NWC" else \
            [[0, 0], [0, 0], [0, 0], list(padding[2])]
        y = conv2d(x4, w4, [1, stride], pad, data_format="NHWC" if fmt == "NWC" else "NCHW",
                   dilations=[1, dilation])
        return array.squeeze(y, [spatial], name=scope)


def depthwise_conv2d(input, filter, strides, padding, rate=None, name=None, data_format=None,
                     dilations=None):
    """`tf.nn.depthwise_conv2d`: filter [kh, kw, in, multiplier], out depth in * multiplier."""
    x = convert_to_tensor(input)
    w = convert_to_tensor(filter, dtype_hint=x.dtype)
    attrs = _conv_attrs(strides, padding, data_format, rate if rate is not None else dilations)
    return apply_op("DepthwiseConv2dNative", [x, w], attrs, name=name,
                    default_name="depthwise")


def _pool(op_type: str, default_name: str):
    def pool(value=None, ksize=None, strides=None, padding=None, data_format="NHWC", name=None,
             input=None):
        fmt = _format(data_format)
        x = convert_to_tensor(value if value is not None else input)
        if padding is None or ksize is None or strides is None:
            raise TypeError(f"{default_name} needs ksize=, strides= and padding=")
        attrs = {"ksize": _four(ksize, fmt, "ksize"), "strides": _four(strides, fmt, "strides"),
                 "data_format": fmt, "padding": _padding_attrs(padding, fmt)["padding"]}
        return apply_op(op_type, [x], attrs, name=name, default_name=default_name)
    pool.__name__ = default_name
    pool.__doc__ = f"`tf.nn.{default_name.lower()}` over 2-D windows of an NHWC/NCHW input."
    return pool


max_pool = _pool("MaxPool", "MaxPool")
avg_pool = _pool("AvgPool", "AvgPool")


def _pool1d(pool2d, default_name: str):
    def pool(input, ksize, strides, padding, data_format="NWC", name=None):
        if data_format not in ("NWC", "NCW"):
            raise errors.InvalidArgumentError(f"data_format must be NWC or NCW, got "
                                              f"{data_format!r}")
        x = convert_to_tensor(input)
        from flowjit.graph.core import get_default_graph
        with get_default_graph().name_scope(name or default_name) as scope:
            spatial = 1 if data_format == "NWC" else 2
            k, s = (_one_spatial(v, data_format, what)
                    for v, what in ((ksize, "ksize"), (strides, "strides")))
            y = pool2d(array.expand_dims(x, spatial), [1, k], [1, s], padding,
                       data_format="NHWC" if data_format == "NWC" else "NCHW")
            return array.squeeze(y, [spatial], name=scope)
    pool.__name__ = default_name
    return pool


def _one_spatial(value, data_format: str, what: str) -> int:
    """A 1-D pooling's ksize/strides: an int, [k], or all 3 entries."""
    values = static_int_list(value, what)
    if len(values) == 3:
        return values[1 if data_format == "NWC" else 2]
    if len(values) != 1:
        raise errors.InvalidArgumentError(f"{what} must have 1 or 3 entries, got {list(values)}")
    return values[0]


max_pool1d = _pool1d(max_pool, "MaxPool1d")
avg_pool1d = _pool1d(avg_pool, "AvgPool1D")
max_pool2d = max_pool
avg_pool2d = avg_pool
