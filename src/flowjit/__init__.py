"""flowjit: a define-then-run deep-learning compiler with the TensorFlow 1 API.

    import flowjit as tf
    a = tf.placeholder(tf.float32)
    b = tf.placeholder(tf.float32)
    with tf.Session() as sess:
        print(sess.run(a + b, {a: 4.0, b: 5.0}))   # 9.0
"""
from __future__ import annotations

import numpy as _np

import flowjit.ops  # noqa: F401 - registers every op
from flowjit import errors, initializers, nn, python, summary, train  # noqa: F401
from flowjit import contrib, layers, losses, metrics  # noqa: F401
from flowjit.platform import app, flags, gfile  # noqa: F401
from flowjit.platform import tf_logging as logging  # noqa: F401
from flowjit.config import config as _config
from flowjit.dtypes import (DType, as_dtype, bool_ as bool, double, float16, float32,  # noqa: F401
                            float64, half, int8, int16, int32, int64, string, uint8)
from flowjit.graph.core import (Graph, GraphKeys, Operation, Tensor, add_to_collection,  # noqa: F401
                                control_dependencies, device, get_collection,
                                get_collection_ref, get_default_graph, name_scope,
                                reset_default_graph)
from flowjit.graph.session import InteractiveSession, Session, get_default_session  # noqa: F401
from flowjit.graph.shape import TensorShape  # noqa: F401
from flowjit.ops.array import (broadcast_to, concat, expand_dims, identity, pad,  # noqa: F401
                               pack, rank, reshape, shape, size, split, squeeze, stack,
                               stop_gradient, tile, transpose, unpack, unstack, where, where_v2)
from flowjit.ops.creation import (fill, ones, ones_like, placeholder,  # noqa: F401
                                  placeholder_with_default, range, zeros, zeros_like)
from flowjit.ops.indexing import (gather, one_hot, slice, strided_slice,  # noqa: F401
                                  unsorted_segment_sum)
from flowjit.ops.base import constant, convert_to_tensor  # noqa: F401
from flowjit.ops.control_flow import case, cond, while_loop  # noqa: F401
from flowjit.ops.functional import foldl, foldr, map_fn, scan  # noqa: F401
from flowjit.ops.gradients import gradients  # noqa: F401
from flowjit.ops.tensor_array import TensorArray  # noqa: F401
from flowjit.ops.custom_gradient import (RegisterGradient, custom_gradient,  # noqa: F401
                                         no_gradient)
from flowjit.ops.custom_gradient import no_gradient as NotDifferentiable  # noqa: F401
from flowjit.ops.math import (abs, add, add_n, argmax, argmin, cast, ceil, clip_by_value,  # noqa: F401
                              cos, count_nonzero, div, divide, equal, exp, expm1, floor,
                              floordiv, floormod, greater, greater_equal, less, less_equal, log,
                              log1p, logical_and, logical_not, logical_or, logical_xor, matmul,
                              maximum, minimum, mod, multiply, negative, not_equal, pow,
                              realdiv, reciprocal, reduce_all, reduce_any, reduce_max,
                              reduce_mean, reduce_min, reduce_prod, reduce_sum, round, rsqrt,
                              scalar_mul, sigmoid, sign, sin, sqrt, square, squared_difference,
                              subtract, tanh, tensordot, to_float, to_int32, to_int64, truediv)
from flowjit.ops.host import (Assert, Print, add_check_numerics_ops, assert_equal,  # noqa: F401
                              assert_positive, assert_rank, check_numerics, numpy_function,
                              py_func)
from flowjit.ops.host import print_v2 as print  # noqa: F401,A001
from flowjit import debugging, strings  # noqa: F401,E402
from flowjit import compat  # noqa: F401,E402 - tf.compat.v1 is this module
from flowjit.ops.strings import as_string, string_join  # noqa: F401
from flowjit.summary.ops import (audio_summary, histogram_summary,  # noqa: F401
                                 image_summary, merge_all_summaries, merge_summary,
                                 scalar_summary)
from flowjit.ops.random import (random_normal, random_uniform, set_random_seed,  # noqa: F401
                                truncated_normal)
from flowjit.ops.state import assign, assign_add, assign_sub, group, no_op  # noqa: F401
from flowjit.ops.state import tuple_ as tuple  # noqa: F401
from flowjit.initializers import (constant_initializer, glorot_normal_initializer,  # noqa: F401
                                  glorot_uniform_initializer, ones_initializer,
                                  random_normal_initializer, random_uniform_initializer,
                                  truncated_normal_initializer, variance_scaling_initializer,
                                  zeros_initializer)
from flowjit.variables import (AUTO_REUSE, Variable, VariableScope, all_variables,  # noqa: F401
                               global_variables, global_variables_initializer,
                               get_variable, get_variable_scope, initialize_all_variables,
                               is_variable_initialized, local_variables,
                               local_variables_initializer, model_variables,
                               report_uninitialized_variables, trainable_variables,
                               variable_scope, variables_initializer)

__version__ = "0.1.0"

# TF1-era aliases that cost one line each.
mul = multiply
sub = subtract
neg = negative
arg_max = argmax
arg_min = argmin
select = where
newaxis = None
placeholder_with_default = placeholder_with_default


def get_seed(op_seed=None):
    from flowjit.ops.random import get_seed as _get_seed
    return _get_seed(op_seed)


if _config.numpy_repr == "legacy":
    # TF1 programs print numpy scalars from sess.run; with numpy >= 2 they would print as
    # np.float32(7.0). The seeds' slides show 7.0, so keep the 1.x repr (FLOWJIT_NUMPY_REPR).
    _np.set_printoptions(legacy="1.25")


# TF1's session protos (tf.ConfigProto(gpu_options=tf.GPUOptions(...)), tf.RunOptions,
# tf.RunMetadata) come from the optional protobuf messages: loaded on first use.
_CONFIG_PROTOS = ("ConfigProto", "GPUOptions", "GraphOptions", "OptimizerOptions",
                  "RunOptions", "RunMetadata")


def __getattr__(name):
    if name in _CONFIG_PROTOS:
        from flowjit.io.protos import tensorflow_proto
        return getattr(tensorflow_proto("config"), name)
    if name in ("Summary", "Event", "SessionLog"):  # tf.Summary(value=[...]), ...
        return getattr(summary, name)
    raise AttributeError(f"module 'flowjit' has no attribute '{name}'")
