"""Random ops with TF1 seed semantics, built on a counter-based generator (Philox4x32-10).

A random op's numbers are a pure function of (graph seed, op seed, element index, how many
times the op has run in this Session). That makes runs reproducible, lets a fresh Session
restart the sequence as TF1 does, and lets any backend (numpy, LLVM, PTX) produce the very
same numbers by evaluating the same function.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import get_default_graph
from flowjit.graph.registry import TensorSpec, register_op
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import FLOATS, INTS, apply_op, check_dtype
from flowjit.ops.shape_values import (int_tuple, known_dims, partial_value,
                                      register_dynamic_form, shape_argument)

DEFAULT_GRAPH_SEED = 87654321
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)


# -- the generator ----------------------------------------------------------------------------
def philox4x32(counters: np.ndarray, key: Tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Philox4x32 on an [n, 4] uint32 array of counters; returns [n, 4] uint32 outputs."""
    out = np.empty(counters.shape, dtype=np.uint32)
    for start in range(0, len(counters), _PHILOX_CHUNK):
        chunk = slice(start, start + _PHILOX_CHUNK)
        out[chunk] = _philox_rounds(counters[chunk], key, rounds)
    return out


# Blocks per pass: the working arrays of a chunk (6 x 128 KiB) stay in the L2 cache, which
# makes the generator several times faster than one pass over a large tensor.
_PHILOX_CHUNK = 1 << 14


def _philox_rounds(counters: np.ndarray, key: Tuple[int, int], rounds: int) -> np.ndarray:
    """Philox4x32's rounds on the words as uint64 (for the 32x32->64 products), in place."""
    c0, c1, c2, c3 = (counters[:, i].astype(np.uint64) for i in range(4))
    p0, p1 = np.empty_like(c0), np.empty_like(c0)
    k0, k1 = int(key[0]), int(key[1])
    for _ in range(rounds):
        np.multiply(c0, _PHILOX_M[0], out=p0)
        np.multiply(c2, _PHILOX_M[1], out=p1)
        # (c0, c1, c2, c3) <- (hi(p1) ^ c1 ^ k0, lo(p1), hi(p0) ^ c3 ^ k1, lo(p0))
        np.right_shift(p1, _SHIFT32, out=c0)
        c0 ^= c1
        c0 ^= np.uint64(k0)
        np.right_shift(p0, _SHIFT32, out=c2)
        c2 ^= c3
        c2 ^= np.uint64(k1)
        np.bitwise_and(p1, _MASK32, out=c1)
        np.bitwise_and(p0, _MASK32, out=c3)
        k0 = (k0 + _PHILOX_W[0]) & 0xFFFFFFFF
        k1 = (k1 + _PHILOX_W[1]) & 0xFFFFFFFF
    out = np.empty(counters.shape, dtype=np.uint32)
    for i, word in enumerate((c0, c1, c2, c3)):
        out[:, i] = word
    return out


def philox_blocks(blocks: np.ndarray, seed: int, seed2: int, run: int, stream: int = 0
                  ) -> np.ndarray:
    """The [len(blocks), 4] uint32 words of the given blocks (uint64 indices) for run number
    `run` of an op seeded (seed, seed2): word i of the op's stream is word i % 4 of block
    i // 4, so any subset of the stream can be drawn alone."""
    counters = np.empty((len(blocks), 4), dtype=np.uint32)
    counters[:, 0] = (blocks & _MASK32).astype(np.uint32)
    counters[:, 1] = (blocks >> np.uint64(32)).astype(np.uint32)
    counters[:, 2] = np.uint32(run & 0xFFFFFFFF)
    # (a counter's high bits: a loop iteration's salt, ops/control_flow.py)
    counters[:, 3] = np.uint32((stream + (run >> 32)) & 0xFFFFFFFF)
    return philox4x32(counters, (_fold64(seed), _fold64(seed2)))


def random_bits(n: int, seed: int, seed2: int, run: int, stream: int = 0) -> np.ndarray:
    """`n` uint32 words for run number `run` of an op seeded (seed, seed2)."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    return philox_blocks(blocks, seed, seed2, run, stream).reshape(-1)[:n]


def _fold64(x: int) -> int:
    x &= (1 << 64) - 1
    return (x ^ (x >> 32)) & 0xFFFFFFFF


def uniform01(n: int, dtype: np.dtype, seed: int, seed2: int, run: int, stream: int = 0):
    """Floats in [0, 1) with the full mantissa of `dtype`."""
    if np.dtype(dtype) == np.float64:
        return _uniform64(random_bits(2 * n, seed, seed2, run, stream))
    bits = random_bits(n, seed, seed2, run, stream)
    return ((bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)).astype(dtype)


def _uniform64(bits: np.ndarray) -> np.ndarray:
    """A float64 in [0, 1) from each pair of uint32 words."""
    bits = bits.astype(np.uint64)
    mantissa = ((bits[0::2] << np.uint64(21)) ^ bits[1::2]) & np.uint64((1 << 53) - 1)
    return mantissa.astype(np.float64) * 2.0 ** -53


def standard_normal(n: int, dtype: np.dtype, seed: int, seed2: int, run: int, stream: int = 0):
    """Box-Muller on pairs of uniforms; computed in float64, rounded to `dtype`."""
    pairs = np.arange((n + 1) // 2, dtype=np.uint64)
    return _normal_pairs(pairs, seed, seed2, run, stream)[:n].astype(dtype)


def _normal_pairs(pairs: np.ndarray, seed: int, seed2: int, run: int, stream: int
                  ) -> np.ndarray:
    """Normals 2p and 2p + 1 of the stream for each p in `pairs` (uint64), in float64: pair
    p is Box-Muller on the two uniforms of Philox block p."""
    u = _uniform64(philox_blocks(pairs, seed, seed2, run, stream).reshape(-1))
    radius = np.sqrt(-2.0 * np.log1p(-u[0::2]))  # 1 - u in (0, 1]: log is finite
    angle = 2.0 * np.pi * u[1::2]
    z = np.empty(2 * len(pairs), dtype=np.float64)
    z[0::2] = radius * np.cos(angle)
    z[1::2] = radius * np.sin(angle)
    return z


def truncated_standard_normal(n: int, dtype: np.dtype, seed: int, seed2: int, run: int):
    """Normals restricted to [-2, 2]: an element out of range is redrawn as the same element
    of fresh streams (1, 2, ...) until one is in range. Only the pairs that hold such an
    element are drawn again (about 1 in 11 at first), not whole streams."""
    z = standard_normal(n, np.float64, seed, seed2, run, stream=0)
    bad = np.flatnonzero(np.abs(z) > 2.0)
    stream = 1
    while bad.size:
        pairs, where = np.unique(bad // 2, return_inverse=True)
        redraw = _normal_pairs(pairs.astype(np.uint64), seed, seed2, run, stream)
        z[bad] = redraw[2 * where + bad % 2]
        bad = bad[np.abs(z[bad]) > 2.0]
        stream += 1
    return z.astype(dtype)


# -- seeds ----------------------------------------------------------------------------------
def get_seed(op_seed: Optional[int]) -> Tuple[int, int]:
    """TF1's rule for (graph seed, op seed) -> the pair of seeds an op uses."""
    graph = get_default_graph()
    graph_seed = graph.seed
    if graph_seed is not None:  # (the program's op count: a branch or loop body counts its
        # own ops from 0, so two alike bodies would draw alike numbers; TF1 counts globally)
        program = getattr(graph, "root", graph)
        return graph_seed, (op_seed if op_seed is not None else program.version)
    if op_seed is not None:
        return DEFAULT_GRAPH_SEED, op_seed
    fresh = np.frombuffer(os.urandom(16), dtype=np.uint64)
    return int(fresh[0] >> np.uint64(1)), int(fresh[1] >> np.uint64(1))


def set_random_seed(seed: Optional[int]) -> None:
    """Sets the graph-level seed of the default graph (TF1 `tf.set_random_seed`)."""
    get_default_graph().seed = None if seed is None else int(seed)


# -- ops --------------------------------------------------------------------------------------
# Each random op takes its run counter as input 0: an `RngCounter` op that the Session
# answers with how many times the op has run. That keeps the kernels (and the IR) pure.
register_op("RngCounter", "rng_counter",
            lambda inputs: [TensorSpec(dtypes.int64, TensorShape([]))], None, stateful=True)


def _random_infer(allowed):
    def infer(inputs, *, shape, dtype, seed, seed2, **_bounds):
        check_dtype(TensorSpec(dtype, TensorShape(shape)), allowed, "dtype")
        return [TensorSpec(dtype, TensorShape(shape))]
    return infer


def _normal_kernel(counter, *, shape, dtype, seed, seed2):
    n = int(np.prod(shape, dtype=np.int64))
    return standard_normal(n, dtype.np_dtype, seed, seed2, int(counter)).reshape(shape)


def _truncated_kernel(counter, *, shape, dtype, seed, seed2):
    n = int(np.prod(shape, dtype=np.int64))
    return truncated_standard_normal(n, dtype.np_dtype, seed, seed2,
                                     int(counter)).reshape(shape)


def _uniform_kernel(counter, *, shape, dtype, seed, seed2):
    n = int(np.prod(shape, dtype=np.int64))
    return uniform01(n, dtype.np_dtype, seed, seed2, int(counter)).reshape(shape)


def _uniform_int_kernel(counter, *, shape, dtype, seed, seed2, minval, maxval):
    n = int(np.prod(shape, dtype=np.int64))
    span = np.uint64(maxval - minval)
    bits = random_bits(2 * n, seed, seed2, int(counter)).astype(np.uint64)
    wide = (bits[0::2] << np.uint64(32)) | bits[1::2]
    return (minval + (wide % span).astype(np.int64)).astype(dtype.np_dtype).reshape(shape)


register_op("RandomStandardNormal", "rng_normal", _random_infer(FLOATS), _normal_kernel,
            uses_rng=True)
register_op("TruncatedNormal", "rng_truncated_normal", _random_infer(FLOATS),
            _truncated_kernel, uses_rng=True)
register_op("RandomUniform", "rng_uniform", _random_infer(FLOATS), _uniform_kernel,
            uses_rng=True)
register_op("RandomUniformInt", "rng_uniform_int", _random_infer(INTS), _uniform_int_kernel,
            uses_rng=True)


def _uniform_like_infer(inputs, *, dtype, seed, seed2):
    check_dtype(inputs[1], FLOATS, "x")
    return [TensorSpec(dtype, inputs[1].shape)]


def _uniform_like_kernel(counter, x, *, dtype, seed, seed2):
    return uniform01(x.size, dtype.np_dtype, seed, seed2, int(counter)).reshape(x.shape)


# Uniform noise shaped like its input: dropout on tensors with unknown (None) dims.
register_op("RandomUniformLike", "rng_uniform_like", _uniform_like_infer, _uniform_like_kernel,
            uses_rng=True)


def _apply_random(op_type: str, inputs, attrs, name, default_name):
    counter = apply_op("RngCounter", [], name=None,
                       default_name=f"{name.rstrip('/') if name else default_name}_counter")
    return apply_op(op_type, [counter] + list(inputs), attrs, name=name,
                    default_name=default_name)


def random_uniform_like(x, seed=None, name=None):
    """Uniform [0, 1) numbers with the run-time shape and dtype of `x`."""
    seed, seed2 = get_seed(seed)
    return _apply_random("RandomUniformLike", [x],
                         {"dtype": x.dtype, "seed": seed, "seed2": seed2}, name,
                         "RandomUniformLike")


def _random_partial(allowed):
    def partial(inputs, known, *, dtype, seed, seed2, **_bounds):
        check_dtype(TensorSpec(dtype, TensorShape(None)), allowed, "dtype")
        return [TensorSpec(dtype, known_dims(known))]
    return partial


for _type, _allowed in (("RandomStandardNormal", FLOATS), ("TruncatedNormal", FLOATS),
                        ("RandomUniform", FLOATS), ("RandomUniformInt", INTS)):
    register_dynamic_form(_type, 1, ("shape",), int_tuple, _random_partial(_allowed))


def _random_op(op_type: str, shape, dtype, seed, name, default_name, **extra):
    """A random op; `shape` may be a tensor computed from shapes (`tf.shape(z)`)."""
    shape, shape_tensor = shape_argument(shape, "shape")
    if shape is not None and any(d < 0 for d in shape):
        raise errors.ShapeError(f"random shape must be non-negative, got {list(shape)}")
    seed, seed2 = get_seed(seed)
    attrs = {"dtype": dtypes.as_dtype(dtype), "seed": seed, "seed2": seed2, **extra}
    if shape_tensor is not None:
        attrs["known"] = partial_value(shape_tensor)
        return _apply_random(f"Dynamic{op_type}", [shape_tensor], attrs, name, default_name)
    return _apply_random(op_type, [], {"shape": shape, **attrs}, name, default_name)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=dtypes.float32, seed=None, name=None):
    dtype = dtypes.as_dtype(dtype)
    graph = get_default_graph()
    with graph.name_scope(name or "random_normal") as scope:
        raw = _random_op("RandomStandardNormal", shape, dtype, seed, None,
                         "RandomStandardNormal")
        return _scale_shift(raw, stddev, mean, scope)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=dtypes.float32, seed=None, name=None):
    dtype = dtypes.as_dtype(dtype)
    with get_default_graph().name_scope(name or "truncated_normal") as scope:
        raw = _random_op("TruncatedNormal", shape, dtype, seed, None, "TruncatedNormal")
        return _scale_shift(raw, stddev, mean, scope)


def random_uniform(shape, minval=0, maxval=None, dtype=dtypes.float32, seed=None, name=None):
    dtype = dtypes.as_dtype(dtype)
    with get_default_graph().name_scope(name or "random_uniform") as scope:
        if dtype.is_integer:
            if maxval is None:
                raise ValueError("random_uniform with an integer dtype needs maxval")
            lo, hi = int(minval), int(maxval)
            if hi <= lo:
                raise errors.InvalidArgumentError(f"random_uniform needs minval < maxval, "
                                                  f"got {lo} and {hi}")
            return _random_op("RandomUniformInt", shape, dtype, seed, scope,
                              "RandomUniformInt", minval=lo, maxval=hi)
        raw = _random_op("RandomUniform", shape, dtype, seed, None, "RandomUniform")
        maxval = 1.0 if maxval is None else maxval
        from flowjit.ops.math import subtract
        from flowjit.ops.base import convert_to_tensor
        lo = convert_to_tensor(minval, dtype=dtype) if not _is_number(minval) else minval
        hi = convert_to_tensor(maxval, dtype=dtype) if not _is_number(maxval) else maxval
        span = hi - lo if _is_number(lo) and _is_number(hi) else subtract(hi, lo)
        return _scale_shift(raw, span, lo, scope)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating))


def _scale_shift(raw, scale, offset, scope: str):
    """raw * scale + offset, skipping the no-op parts (a standard normal stays one op)."""
    from flowjit.ops.math import add, multiply
    if _is_number(scale) and scale == 1 and _is_number(offset) and offset == 0:
        from flowjit.ops.array import identity
        return identity(raw, name=scope)
    scaled = raw if (_is_number(scale) and scale == 1) else multiply(raw, scale, name="mul")
    return add(scaled, offset, name=scope)
