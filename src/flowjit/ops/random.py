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
_PHILOX_M = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_PHILOX_W = (np.uint32(0x9E3779B9), np.uint32(0xBB67AE85))


# -- the generator ----------------------------------------------------------------------------
def philox4x32(counters: np.ndarray, key: Tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Philox4x32 on an [n, 4] uint32 array of counters; returns [n, 4] uint32 outputs."""
    c = [counters[:, i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    for _ in range(rounds):
        p0 = _PHILOX_M[0] * c[0]
        p1 = _PHILOX_M[1] * c[2]
        hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
        c = [hi1 ^ c[1] ^ np.uint64(k0), lo1, hi0 ^ c[3] ^ np.uint64(k1), lo0]
        k0 = np.uint32((int(k0) + int(_PHILOX_W[0])) & 0xFFFFFFFF)
        k1 = np.uint32((int(k1) + int(_PHILOX_W[1])) & 0xFFFFFFFF)
    return np.stack(c, axis=1).astype(np.uint32)


def random_bits(n: int, seed: int, seed2: int, run: int, stream: int = 0) -> np.ndarray:
    """`n` uint32 words for run number `run` of an op seeded (seed, seed2)."""
    blocks = (n + 3) // 4
    index = np.arange(blocks, dtype=np.uint64)
    counters = np.empty((blocks, 4), dtype=np.uint32)
    counters[:, 0] = (index & _MASK32).astype(np.uint32)
    counters[:, 1] = (index >> np.uint64(32)).astype(np.uint32)
    counters[:, 2] = np.uint32(run & 0xFFFFFFFF)
    # (a counter's high bits: a loop iteration's salt, ops/control_flow.py)
    counters[:, 3] = np.uint32((stream + (run >> 32)) & 0xFFFFFFFF)
    key = (_fold64(seed), _fold64(seed2))
    return philox4x32(counters, key).reshape(-1)[:n]


def _fold64(x: int) -> int:
    x &= (1 << 64) - 1
    return (x ^ (x >> 32)) & 0xFFFFFFFF


def uniform01(n: int, dtype: np.dtype, seed: int, seed2: int, run: int, stream: int = 0):
    """Floats in [0, 1) with the full mantissa of `dtype`."""
    if np.dtype(dtype) == np.float64:
        bits = random_bits(2 * n, seed, seed2, run, stream).astype(np.uint64)
        mantissa = ((bits[0::2] << np.uint64(21)) ^ bits[1::2]) & np.uint64((1 << 53) - 1)
        return mantissa.astype(np.float64) * 2.0 ** -53
    bits = random_bits(n, seed, seed2, run, stream)
    return ((bits >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)).astype(dtype)


def standard_normal(n: int, dtype: np.dtype, seed: int, seed2: int, run: int, stream: int = 0):
    """Box-Muller on pairs of uniforms; computed in float64, rounded to `dtype`."""
    pairs = (n + 1) // 2
    u = uniform01(2 * pairs, np.float64, seed, seed2, run, stream)
    radius = np.sqrt(-2.0 * np.log1p(-u[0::2]))  # 1 - u in (0, 1]: log is finite
    angle = 2.0 * np.pi * u[1::2]
    z = np.empty(2 * pairs, dtype=np.float64)
    z[0::2] = radius * np.cos(angle)
    z[1::2] = radius * np.sin(angle)
    return z[:n].astype(dtype)


def truncated_standard_normal(n: int, dtype: np.dtype, seed: int, seed2: int, run: int):
    """Normals restricted to [-2, 2] by redrawing out-of-range elements on fresh streams."""
    z = standard_normal(n, np.float64, seed, seed2, run, stream=0)
    stream = 1
    bad = np.abs(z) > 2.0
    while np.any(bad):
        redraw = standard_normal(n, np.float64, seed, seed2, run, stream)
        z = np.where(bad, redraw, z)
        bad = np.abs(z) > 2.0
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
