"""Variable initializers (`tf.random_normal_initializer()`, ...): callables
`init(shape, dtype=None, partition_info=None) -> Tensor` that build the initial-value ops."""
from __future__ import annotations

import math as pymath
from typing import Optional

import numpy as np

from flowjit import dtypes
from flowjit.ops import creation, random
from flowjit.ops.base import constant as constant_tensor


class Initializer:
    dtype: dtypes.DType = dtypes.float32

    def _dtype(self, dtype) -> dtypes.DType:
        return dtypes.as_dtype(dtype) if dtype is not None else self.dtype

    def get_config(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class Zeros(Initializer):
    def __init__(self, dtype=dtypes.float32) -> None:
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return creation.zeros(shape, self._dtype(dtype))


class Ones(Zeros):
    def __call__(self, shape, dtype=None, partition_info=None):
        return creation.ones(shape, self._dtype(dtype))


class Constant(Initializer):
    def __init__(self, value=0, dtype=dtypes.float32, verify_shape=False) -> None:
        self.value = value
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        dtype = self._dtype(dtype)
        value = np.asarray(self.value)
        if value.ndim == 0:
            return creation.fill(shape, constant_tensor(value, dtype))
        return constant_tensor(value, dtype, shape=shape)


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=1.0, seed=None, dtype=dtypes.float32) -> None:
        self.mean, self.stddev, self.seed = mean, stddev, seed
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return random.random_normal(shape, self.mean, self.stddev, self._dtype(dtype), self.seed)


class TruncatedNormal(RandomNormal):
    def __call__(self, shape, dtype=None, partition_info=None):
        return random.truncated_normal(shape, self.mean, self.stddev, self._dtype(dtype),
                                       self.seed)


class RandomUniform(Initializer):
    def __init__(self, minval=0.0, maxval=None, seed=None, dtype=dtypes.float32) -> None:
        self.minval, self.maxval, self.seed = minval, maxval, seed
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        return random.random_uniform(shape, self.minval, self.maxval, self._dtype(dtype),
                                     self.seed)


class VarianceScaling(Initializer):
    """scale / fan (fan_in, fan_out or their average), as a truncated normal or a uniform."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 dtype=dtypes.float32) -> None:
        if scale <= 0:
            raise ValueError("`scale` must be a positive float.")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {mode}")
        distribution = {"normal": "truncated_normal"}.get(distribution.lower(),
                                                          distribution.lower())
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"Invalid `distribution` argument: {distribution}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed
        self.dtype = dtypes.as_dtype(dtype)

    def __call__(self, shape, dtype=None, partition_info=None):
        dtype = self._dtype(dtype)
        fan_in, fan_out = _fans(list(shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        scale = self.scale / max(1.0, fan[self.mode])
        if self.distribution == "truncated_normal":
            # 0.879... is the stddev of a standard normal truncated to [-2, 2].
            stddev = pymath.sqrt(scale) / 0.87962566103423978
            return random.truncated_normal(shape, 0.0, stddev, dtype, self.seed)
        if self.distribution == "untruncated_normal":
            return random.random_normal(shape, 0.0, pymath.sqrt(scale), dtype, self.seed)
        limit = pymath.sqrt(3.0 * scale)
        return random.random_uniform(shape, -limit, limit, dtype, self.seed)


def _fans(shape):
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform_initializer(seed: Optional[int] = None, dtype=dtypes.float32):
    return VarianceScaling(1.0, "fan_avg", "uniform", seed, dtype)


def glorot_normal_initializer(seed: Optional[int] = None, dtype=dtypes.float32):
    return VarianceScaling(1.0, "fan_avg", "truncated_normal", seed, dtype)


def he_normal(seed: Optional[int] = None):
    return VarianceScaling(2.0, "fan_in", "truncated_normal", seed)


def he_uniform(seed: Optional[int] = None):
    return VarianceScaling(2.0, "fan_in", "uniform", seed)


zeros_initializer = Zeros
ones_initializer = Ones
constant_initializer = Constant
random_normal_initializer = RandomNormal
truncated_normal_initializer = TruncatedNormal
random_uniform_initializer = RandomUniform
variance_scaling_initializer = VarianceScaling
xavier_initializer = glorot_uniform_initializer

# `tf.initializers.*` spellings
zeros = Zeros
ones = Ones
constant = Constant
random_normal = RandomNormal
truncated_normal = TruncatedNormal
random_uniform = RandomUniform
variance_scaling = VarianceScaling
glorot_uniform = glorot_uniform_initializer
glorot_normal = glorot_normal_initializer
