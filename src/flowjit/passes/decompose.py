"""Data-movement ops rewritten into the kernel layer's primitives (affine copies, concat,
reshape), so that every target that compiles those compiles these, with no kernels of
their own (as XLA expands ops its backends do not implement):

    stack(xs, axis)           -> concatenate(reshape(x) with a 1 inserted at axis, ...)
    split(x, sizes, axis)     -> one slice per piece
    unstack(x, axis)          -> slice then reshape (the axis dropped), per piece
    tile(x, multiples)        -> reshape(broadcast_to(reshape(x, [1, d0, 1, d1, ...]),
                                                     [m0, d0, m1, d1, ...]), out shape)
    pad(x, CONSTANT, c)       -> per padded axis, concatenate(c block, x, c block), the
                                 blocks broadcast from one scalar constant
    add_n(x0, x1, ...)        -> x0 + x1 + ... (elementwise: fusion makes one loop of it)
    matmul of rank 3 and up   -> one 2-D matmul per batch element (batch dims broadcast as
                                 numpy's), side by side: at most MAX_BATCH of them
    conv2d_backprop_input     -> conv2d(dy, the filter flipped in space with its channels
      (stride 1, NHWC)           swapped, explicitly padded): the forward convolution's kernel
                                 (an im2col GEMM on the CPU) computes the input's gradient
    max_pool, avg_pool        -> the max (sum / k*k) of the k*k strided slices of x, one per
      (NHWC, windows that        window tap
      tile: stride = ksize,
      no padding)
    max_pool_grad,            -> per tap, g where that tap holds its window's first maximum
      avg_pool_grad (same)       (g / k*k), interleaved back into x's shape: [N, OH, KH, OW,
                                 KW, C] reshaped, zero rows appended where VALID dropped some
    depthwise_conv2d (NHWC)   -> per tap, a strided slice of the (constant-)padded input
                                 times the tap's weights, summed (one fused loop)
    conv2d, pools, depthwise  -> transpose to NHWC, the NHWC op (rewritten in turn), transpose
      in NCHW                    back

Only instructions with static shapes are rewritten (a Session compiles per feed shape);
REFLECT and SYMMETRIC pads stay as they are (numpy).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from flowjit.ir.core import Func, Instr, TensorType, Value


def _static(instr: Instr) -> bool:
    return all(v.type.is_static for v in instr.operands + instr.results)


def _reshape(x: Value, shape, loc, result: Optional[Value] = None) -> Instr:
    result = result or Value(TensorType(x.type.dtype, tuple(shape)))
    return Instr("reshape", [x], {"shape": tuple(shape)}, [result], loc)


def _stack(instr: Instr) -> List[Instr]:
    out_shape = instr.result.type.shape
    axis = instr.attrs["axis"] % len(out_shape)
    piece = out_shape[:axis] + (1,) + out_shape[axis + 1:]
    reshapes = [_reshape(x, piece, instr.loc) for x in instr.operands]
    return reshapes + [Instr("concatenate", [r.result for r in reshapes], {"axis": axis},
                             instr.results, instr.loc)]


def _pieces(instr: Instr, sizes) -> List[Tuple[Tuple[int, ...], Tuple[int, ...]]]:
    """(begin, size) of each piece of x along the op's axis."""
    shape = instr.operands[0].type.shape
    axis = instr.attrs["axis"] % len(shape)
    pieces, start = [], 0
    for n in sizes:
        begin = tuple(start if d == axis else 0 for d in range(len(shape)))
        pieces.append((begin, shape[:axis] + (n,) + shape[axis + 1:]))
        start += n
    return pieces


def _split(instr: Instr) -> List[Instr]:
    x = instr.operands[0]
    return [Instr("slice", [x], {"begin": begin, "size": size}, [result], instr.loc)
            for (begin, size), result in zip(_pieces(instr, instr.attrs["sizes"]),
                                             instr.results)]


def _unstack(instr: Instr) -> List[Instr]:
    x = instr.operands[0]
    new = []
    for (begin, size), result in zip(_pieces(instr, [1] * instr.attrs["num"]),
                                     instr.results):
        piece = Value(TensorType(x.type.dtype, size))
        new.append(Instr("slice", [x], {"begin": begin, "size": size}, [piece], instr.loc))
        new.append(_reshape(piece, result.type.shape, instr.loc, result))
    return new


def _tile(instr: Instr) -> List[Instr]:
    x = instr.operands[0]
    shape, multiples = x.type.shape, instr.attrs["multiples"]
    spread = tuple(n for d in shape for n in (1, d))
    grown = tuple(n for m, d in zip(multiples, shape) for n in (m, d))
    first = _reshape(x, spread, instr.loc)
    wide = Value(TensorType(x.type.dtype, grown))
    return [first, Instr("broadcast_to", [first.result], {"shape": grown}, [wide], instr.loc),
            _reshape(wide, instr.result.type.shape, instr.loc, instr.result)]


def _pad(instr: Instr) -> Optional[List[Instr]]:
    if instr.attrs["mode"] != "CONSTANT" or not instr.operands[0].type.shape:
        return None
    x = instr.operands[0]
    dtype = x.type.dtype
    fill = Value(TensorType(dtype, ()))
    new = [Instr("constant", [], {"dtype": dtype,
                                  "value": np.full((), instr.attrs["constant_value"],
                                                   dtype.np_dtype)}, [fill], instr.loc)]
    current = x
    padded = [(axis, lo, hi) for axis, (lo, hi) in enumerate(instr.attrs["paddings"])
              if lo or hi]
    for n, (axis, lo, hi) in enumerate(padded):
        shape = current.type.shape
        parts = []
        for width in (lo, None, hi):
            if width is None:
                parts.append(current)
            elif width:
                block = Value(TensorType(dtype, shape[:axis] + (width,) + shape[axis + 1:]))
                new.append(Instr("broadcast_to", [fill], {"shape": block.type.shape}, [block],
                                 instr.loc))
                parts.append(block)
        out_shape = shape[:axis] + (shape[axis] + lo + hi,) + shape[axis + 1:]
        result = instr.result if n == len(padded) - 1 else \
            Value(TensorType(dtype, out_shape))
        new.append(Instr("concatenate", parts, {"axis": axis}, [result], instr.loc))
        current = result
    if not padded:  # nothing to pad: a copy
        new = [_reshape(x, x.type.shape, instr.loc, instr.result)]
    return new


def _add_n(instr: Instr) -> List[Instr]:
    first, *rest = instr.operands
    if not rest:
        return [_reshape(first, first.type.shape, instr.loc, instr.result)]
    new, total = [], first
    for n, x in enumerate(rest):
        result = instr.result if n == len(rest) - 1 else Value(instr.result.type)
        new.append(Instr("add", [total, x], {}, [result], instr.loc))
        total = result
    return new


# Batched matmuls with more batch elements than this stay one (numpy) instruction: each
# element is a kernel call of its own.
MAX_BATCH = 64


def _batched_matmul(instr: Instr) -> Optional[List[Instr]]:
    a, b = instr.operands
    out_shape = instr.result.type.shape
    if len(out_shape) < 3:
        return None
    batch = out_shape[:-2]
    count = int(np.prod(batch))
    if count > MAX_BATCH or count == 0:
        return None
    new: List[Instr] = []

    def flat(x: Value) -> Tuple[Value, Tuple[int, ...]]:
        """x as [its batch elements, rows, cols], and its batch dims padded to the output's."""
        shape = x.type.shape
        dims = (1,) * (len(batch) - (len(shape) - 2)) + shape[:-2]
        new.append(_reshape(x, (int(np.prod(dims)),) + shape[-2:], instr.loc))
        return new[-1].result, dims

    def element(x3: Value, dims, index) -> Value:
        """Batch element `index` (of the output's batch) of a [n, r, c] value, as [r, c]."""
        position = int(np.ravel_multi_index([i if d != 1 else 0 for i, d in zip(index, dims)],
                                            dims))
        r, c = x3.type.shape[1:]
        piece = Value(TensorType(x3.type.dtype, (1, r, c)))
        new.append(Instr("slice", [x3], {"begin": (position, 0, 0), "size": (1, r, c)},
                         [piece], instr.loc))
        new.append(_reshape(piece, (r, c), instr.loc))
        return new[-1].result

    (a3, a_dims), (b3, b_dims) = flat(a), flat(b)
    products = []
    m, n = out_shape[-2:]
    for index in np.ndindex(*batch):
        product = Value(TensorType(instr.result.type.dtype, (m, n)))
        new.append(Instr("matmul", [element(a3, a_dims, index), element(b3, b_dims, index)],
                         instr.attrs, [product], instr.loc))
        new.append(_reshape(product, (1, m, n), instr.loc))
        products.append(new[-1].result)
    whole = Value(TensorType(instr.result.type.dtype, (count, m, n)))
    new.append(Instr("concatenate", products, {"axis": 0}, [whole], instr.loc))
    new.append(_reshape(whole, out_shape, instr.loc, instr.result))
    return new


def _conv2d_backprop_input(instr: Instr) -> Optional[List[Instr]]:
    """dx[y] = sum_i dy[y + before - i*d] . W[i]^T: with i' = KH-1-i, a stride-1 convolution
    of dy padded by (KH-1)*d - before in front and H - OH + before behind (each dim)."""
    from flowjit.ops.conv import windows
    w, dy = instr.operands
    attrs = instr.attrs
    if attrs["data_format"] != "NHWC" or tuple(attrs["strides"]) != (1, 1, 1, 1) or \
            w.type.dtype.name not in ("float32", "float64"):
        return None
    kh, kw, ci, co = w.type.shape
    wh, ww = windows(attrs["input_sizes"], kh, kw, attrs)
    pads = []
    for win in (wh, ww):
        front = (win.k - 1) * win.dilation - win.before
        back = win.size - win.out + win.before
        if front < 0 or back < 0:
            return None  # (padding wider than the window: stays numpy)
        pads.append((front, back))
    (top, bottom), (left, right) = pads
    dtype = w.type.dtype
    flipped = Value(TensorType(dtype, (kh, kw, ci, co)))
    swapped = Value(TensorType(dtype, (kh, kw, co, ci)))
    reverse = ("range", None, None, -1)
    return [Instr("strided_slice", [w], {"spec": (reverse, reverse)}, [flipped], instr.loc),
            Instr("transpose", [flipped], {"perm": (0, 1, 3, 2)}, [swapped], instr.loc),
            Instr("conv2d", [dy, swapped],
                  {"strides": (1, 1, 1, 1), "padding": "EXPLICIT",
                   "explicit_paddings": (0, 0, top, bottom, left, right, 0, 0),
                   "dilations": tuple(attrs["dilations"]), "data_format": "NHWC"},
                  instr.results, instr.loc)]


def _tiling_windows(instr: Instr, nhwc) -> Optional[Tuple[int, int, int, int]]:
    """(KH, KW, OH, OW) of a pooling whose windows tile its input without overlap or
    padding (stride = ksize; SAME only where it pads nothing), else None."""
    from flowjit.ops.conv import _pool_windows
    attrs = instr.attrs
    if attrs["data_format"] != "NHWC" or tuple(attrs["strides"]) != tuple(attrs["ksize"]):
        return None
    wh, ww = _pool_windows(nhwc, attrs)
    if wh.before or wh.after or ww.before or ww.after or not wh.out or not ww.out:
        return None
    return wh.k, ww.k, wh.out, ww.out


def _taps(b, x: Value, kh: int, kw: int, oh: int, ow: int) -> List[Value]:
    """x[:, i::KH, j::KW, :] cut to [N, OH, OW, C], for each tap (i, j) in row-major order."""
    every = ("range", None, None, None)
    return [b.strided_slice(x, spec=(every, ("range", i, i + kh * (oh - 1) + 1, kh),
                                     ("range", j, j + kw * (ow - 1) + 1, kw)))
            for i in range(kh) for j in range(kw)]


def _pool(instr: Instr) -> Optional[List[Instr]]:
    from flowjit.ir.builder import Builder
    if instr.attrs["data_format"] == "NCHW":
        return _nchw_to_nhwc(instr)
    x = instr.operands[0]
    tiling = _tiling_windows(instr, x.type.shape)
    if tiling is None:
        return None
    b = Builder(instr.loc)
    taps = _taps(b, x, *tiling)
    combine = b.maximum if instr.op == "max_pool" else b.add
    total = taps[0]
    for tap in taps[1:]:
        total = combine(total, tap)
    if instr.op == "avg_pool":
        total = b.mul(total, b.constant(1.0 / len(taps), x.type.dtype))
    return b.instrs + [_reshape(total, total.type.shape, instr.loc, instr.result)]


def _pool_grad(instr: Instr) -> Optional[List[Instr]]:
    from flowjit.ir.builder import Builder
    out = instr.result
    tiling = _tiling_windows(instr, out.type.shape)
    if tiling is None:
        return None
    kh, kw, oh, ow = tiling
    b = Builder(instr.loc)
    if instr.op == "max_pool_grad":
        x, y, g = instr.operands
        zero = b.zeros(g.type)
        pieces, taken = [], None
        for tap in _taps(b, x, kh, kw, oh, ow):  # the first maximum of a window takes g
            (hit,) = b.emit("eq", [tap, y])
            if taken is not None:
                (hit,) = b.emit("and", [hit, b.emit("not", [taken])[0]])
            pieces.append(b.select(hit, g, zero))
            taken = hit if taken is None else b.emit("or", [taken, hit])[0]
    else:
        (g,) = instr.operands
        pieces = [b.mul(g, b.constant(1.0 / (kh * kw), g.type.dtype))] * (kh * kw)
    n, _, _, c = out.type.shape
    rows = [b.concatenate(*[b.reshape(p, shape=(n, oh, 1, ow, 1, c))
                            for p in pieces[i * kw:(i + 1) * kw]], axis=4)
            for i in range(kh)]
    grid = b.concatenate(*rows, axis=2) if kh > 1 else rows[0]
    dx = b.reshape(grid, shape=(n, oh * kh, ow * kw, c))
    height, width = out.type.shape[1:3]
    if (height, width) != (oh * kh, ow * kw):  # rows and columns VALID left out
        dx = b.pad(dx, paddings=((0, 0), (0, height - oh * kh), (0, width - ow * kw), (0, 0)),
                   mode="CONSTANT", constant_value=0.0)
        padded = _pad(b.instrs.pop())
        b.instrs.extend(padded)
        dx = padded[-1].result
    return b.instrs + [_reshape(dx, out.type.shape, instr.loc, out)]


def _nchw_to_nhwc(instr: Instr) -> Optional[List[Instr]]:
    """An NCHW convolution or pooling as its NHWC form between two transposes (the NHWC
    form is then rewritten or compiled as any other)."""
    if instr.attrs.get("data_format") != "NCHW":
        return None
    from flowjit.ir.builder import Builder

    def nhwc(values):  # a per-dimension attribute (N, C, H, W) -> (N, H, W, C)
        return (values[0], values[2], values[3], values[1])
    attrs = dict(instr.attrs, data_format="NHWC")
    for key in ("strides", "dilations", "ksize"):
        if key in attrs:
            attrs[key] = nhwc(tuple(attrs[key]))
    pads = tuple(attrs.get("explicit_paddings") or ())
    if len(pads) == 8:
        pairs = [pads[2 * i:2 * i + 2] for i in range(4)]
        attrs["explicit_paddings"] = tuple(p for pair in nhwc(pairs) for p in pair)
    b = Builder(instr.loc)
    x, rest = instr.operands[0], list(instr.operands[1:])
    moved = b.transpose(x, perm=(0, 2, 3, 1))
    (out,) = b.emit(instr.op, [moved] + rest, **attrs)
    return b.instrs + [Instr("transpose", [out], {"perm": (0, 3, 1, 2)}, instr.results,
                             instr.loc)]


def _depthwise_conv2d(instr: Instr) -> Optional[List[Instr]]:
    """out[n, y, x, c*M + k] = sum over taps (i, j) of xp[n, y*s + i*d, x*s + j*d, c] *
    w[i, j, c, k]: per tap a strided slice of the padded input times the tap's weights,
    broadcast (elementwise: fusion sums the taps in one loop)."""
    from flowjit.ir.builder import Builder
    from flowjit.ops.conv import windows
    x, w = instr.operands
    if instr.attrs["data_format"] != "NHWC":
        return None
    kh, kw, c, m = w.type.shape
    n = x.type.shape[0]
    wh, ww = windows(x.type.shape, kh, kw, instr.attrs)
    if not wh.out or not ww.out or not kh or not kw:
        return None
    b = Builder(instr.loc)
    padded = x
    if wh.before or wh.after or ww.before or ww.after:
        b.pad(x, paddings=((0, 0), (wh.before, wh.after), (ww.before, ww.after), (0, 0)),
              mode="CONSTANT", constant_value=0.0)
        expanded = _pad(b.instrs.pop())
        b.instrs.extend(expanded)
        padded = expanded[-1].result
    every = ("range", None, None, None)
    total = None
    for i in range(kh):
        for j in range(kw):
            tap = b.strided_slice(padded, spec=(
                every, ("range", i * wh.dilation, i * wh.dilation + wh.stride * (wh.out - 1) + 1,
                        wh.stride),
                ("range", j * ww.dilation, j * ww.dilation + ww.stride * (ww.out - 1) + 1,
                 ww.stride)))
            weights = b.strided_slice(w, spec=(("index", i), ("index", j)))  # [c, m]
            if m == 1:
                term = b.mul(tap, b.reshape(weights, shape=(c,)))
            else:
                term = b.mul(b.reshape(tap, shape=(n, wh.out, ww.out, c, 1)), weights)
            total = term if total is None else b.add(total, term)
    return b.instrs + [_reshape(total, instr.result.type.shape, instr.loc, instr.result)]


RULES: Dict[str, Callable[[Instr], Optional[List[Instr]]]] = {
    "stack": _stack, "split": _split, "unstack": _unstack, "tile": _tile, "pad": _pad,
    "add_n": _add_n, "matmul": _batched_matmul, "conv2d_backprop_input": _conv2d_backprop_input,
    "max_pool": _pool, "avg_pool": _pool, "max_pool_grad": _pool_grad,
    "avg_pool_grad": _pool_grad, "conv2d": _nchw_to_nhwc,
    "depthwise_conv2d": lambda instr: _nchw_to_nhwc(instr) or _depthwise_conv2d(instr),
}


def run(func: Func) -> Tuple[Func, bool]:
    body: List[Instr] = []
    changed = False
    pending = list(reversed(func.body))
    while pending:  # (what a rule emits may be rewritten again: NCHW -> NHWC -> primitives)
        instr = pending.pop()
        rule = RULES.get(instr.op)
        new = rule(instr) if rule is not None and _static(instr) else None
        if new is None:
            body.append(instr)
        else:
            pending.extend(reversed(new))
            changed = True
    return (func.replace(body=body), True) if changed else (func, False)
