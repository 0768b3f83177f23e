"""The CPU's conv2d kernel (codegen/conv.py: im2col chunks through the GEMM core, epilogue
fused) against the eager interpreter, and which convolutions get it."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import dtypes
from flowjit.codegen.schedule import kernel_kind
from flowjit.ir.builder import Builder
from flowjit.ir.core import TensorType, Value

R = np.random.default_rng(1)


def both(fetches, feed):
    results = []
    for backend in ("llvm", "eager"):
        with tf.Session(backend=backend) as sess:
            results.append(sess.run(fetches, feed))
    return results


CASES = [  # x, filter, strides, padding, dilations
    ((2, 9, 8, 5), (3, 3, 5, 7), (1, 1), "SAME", (1, 1)),
    ((3, 11, 10, 3), (5, 5, 3, 33), (2, 2), "VALID", (1, 1)),
    ((1, 12, 12, 4), (3, 2, 4, 16), (1, 2), "SAME", (2, 1)),
    ((2, 7, 7, 1), (5, 5, 1, 32), (1, 1), [[0, 0], [2, 1], [0, 3], [0, 0]], (1, 1)),
    ((40, 6, 6, 8), (1, 1, 8, 20), (1, 1), "VALID", (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_conv2d_with_fused_epilogue_matches_eager(case, dtype):
    xs, ws, strides, padding, dil = CASES[case]
    x = tf.placeholder(tf.as_dtype(dtype), xs)
    w = tf.constant(R.standard_normal(ws).astype(dtype))
    bias = tf.constant(R.standard_normal(ws[-1]).astype(dtype))
    conv = tf.nn.conv2d(x, w, strides, padding, dilations=dil)
    fused = tf.nn.relu(tf.nn.bias_add(conv, bias))
    residual = conv * 2.0 + tf.constant(R.standard_normal(conv.shape.as_list()).astype(dtype))
    compiled, eager = both([fused, residual], {x: R.standard_normal(xs).astype(dtype)})
    tol = 1e-4 if dtype == np.float32 else 1e-11
    for got, want in zip(compiled, eager):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _conv_instr(data_format="NHWC", dtype=dtypes.float32):
    b = Builder()
    shape = (2, 8, 8, 3) if data_format == "NHWC" else (2, 3, 8, 8)
    x = Value(TensorType(dtype, shape))
    w = Value(TensorType(dtype, (3, 3, 3, 4)))
    b.conv2d(x, w, strides=(1, 1, 1, 1), padding="SAME", explicit_paddings=(),
             dilations=(1, 1, 1, 1), data_format=data_format)
    return b.instrs[-1]


def test_which_convolutions_get_a_native_kernel():
    assert kernel_kind(_conv_instr()) == "contraction"
    assert kernel_kind(_conv_instr(dtype=dtypes.float64)) == "contraction"
    assert kernel_kind(_conv_instr("NCHW")) is None          # numpy reference
    assert kernel_kind(_conv_instr(dtype=dtypes.float16)) is None
