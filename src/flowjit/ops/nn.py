"""The core of `tf.nn` used by the seed programs: activations, softmax, the cross-entropies
(numerically stable, via log-sum-exp), bias_add, l2_loss and dropout."""
from __future__ import annotations

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import get_default_graph
from flowjit.graph.registry import (ROWWISE, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape
from flowjit.ops import array, math
from flowjit.ops.array import INDEX_DTYPES
from flowjit.ops.base import (FLOATS, NUMERIC, apply_op, check_dtype, check_same_dtype,
                              convert_operands, convert_to_tensor, normalize_axis)
from flowjit.ops.math import unary_rule


def _relu(x):
    return np.maximum(x, np.zeros((), x.dtype))


def _relu6(x):
    # min(max(x, 0), 6) like relu (np.clip would keep -0. where relu gives 0.)
    return np.minimum(np.maximum(x, np.zeros((), x.dtype)), np.asarray(6, x.dtype))


def _softplus(x):
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


def _elu(x):
    # x < 0 ? expm1(x) : x, as TF's kernel (elu(-0.) is -0.)
    return np.where(x < 0, np.expm1(np.minimum(x, 0)), x).astype(x.dtype)


register_op("Relu", "relu", unary_rule(NUMERIC), _relu, elementwise=True)
register_op("Relu6", "relu6", unary_rule(NUMERIC), _relu6, elementwise=True)
register_op("Softplus", "softplus", unary_rule(FLOATS), _softplus, elementwise=True)
register_op("Elu", "elu", unary_rule(FLOATS), _elu, elementwise=True)


def _activation(op_type: str):
    def fn(features, name=None):
        return apply_op(op_type, [convert_to_tensor(features)], name=name, default_name=op_type)
    fn.__name__ = op_type.lower()
    fn.__doc__ = f"`tf.nn.{op_type.lower()}`, elementwise."
    return fn


relu = _activation("Relu")
relu6 = _activation("Relu6")
softplus = _activation("Softplus")
elu = _activation("Elu")


def leaky_relu(features, alpha=0.2, name=None):
    x = convert_to_tensor(features)
    return math.maximum(x, math.multiply(x, alpha), name=name or "LeakyRelu")


# -- softmax ----------------------------------------------------------------------------------
def _softmax_rule(inputs, *, axis):
    (x,) = inputs
    check_dtype(x, FLOATS, "logits")
    if x.shape.ndims == 0:
        raise ShapeInferenceError("softmax needs logits of rank >= 1")
    return [TensorSpec(x.dtype, x.shape)]


def _row_max(x, axis):
    # (-inf for an empty axis: softmax of no classes is empty, their cross-entropy 0)
    return np.max(x, axis=axis, keepdims=True, initial=-np.inf)


def _log_softmax_kernel(x, *, axis):
    shifted = x - _row_max(x, axis)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))).astype(x.dtype)


def _softmax_kernel(x, *, axis):
    shifted = np.exp(x - _row_max(x, axis))
    return (shifted / np.sum(shifted, axis=axis, keepdims=True)).astype(x.dtype)


register_op("Softmax", "softmax", _softmax_rule, _softmax_kernel, role=ROWWISE,
            attr_defaults={"axis": -1})
register_op("LogSoftmax", "log_softmax", _softmax_rule, _log_softmax_kernel, role=ROWWISE,
            attr_defaults={"axis": -1})


def _softmax_api(op_type: str):
    def fn(logits, axis=None, name=None, dim=None):
        x = convert_to_tensor(logits)
        axis = -1 if axis is None and dim is None else (axis if axis is not None else dim)
        if x.shape.ndims is not None:
            try:
                axis = normalize_axis(axis, x.shape.ndims)
            except ShapeInferenceError as e:
                raise errors.ShapeError(f"{e}: {op_type} of {x.describe()}") from None
            if axis == x.shape.ndims - 1:
                axis = -1
        return apply_op(op_type, [x], {"axis": axis}, name=name, default_name=op_type)
    fn.__name__ = op_type.lower()
    return fn


softmax = _softmax_api("Softmax")
log_softmax = _softmax_api("LogSoftmax")


# -- cross-entropies --------------------------------------------------------------------------
def _xent_infer(inputs):
    logits, labels = inputs
    check_same_dtype(inputs)
    check_dtype(logits, FLOATS, "logits")
    if not logits.shape.is_compatible_with(labels.shape):
        raise ShapeInferenceError(f"logits and labels must have the same shape, got "
                                  f"{logits.shape} and {labels.shape}")
    shape = logits.shape.merge_with(labels.shape)
    if shape.ndims == 0:
        raise ShapeInferenceError("logits must have rank >= 1")
    batch = TensorShape(None) if shape.dims is None else TensorShape(shape.dims[:-1])
    return [TensorSpec(logits.dtype, batch), TensorSpec(logits.dtype, shape)]


def _xent_kernel(logits, labels):
    if logits.shape != labels.shape:
        raise errors.InvalidArgumentError(f"logits and labels must have the same shape, got "
                                          f"{list(logits.shape)} and {list(labels.shape)}")
    log_probs = _log_softmax_kernel(logits, axis=-1)
    loss = -np.sum(labels * log_probs, axis=-1)
    backprop = np.exp(log_probs) - labels
    return loss.astype(logits.dtype), backprop.astype(logits.dtype)


register_op("SoftmaxCrossEntropyWithLogits", "softmax_xent", _xent_infer, _xent_kernel,
            role=ROWWISE)


def _sparse_xent_infer(inputs):
    logits, labels = inputs
    check_dtype(logits, FLOATS, "logits")
    check_dtype(labels, INDEX_DTYPES, "labels")
    if logits.shape.ndims is not None and labels.shape.ndims is not None:
        if logits.shape.ndims != labels.shape.ndims + 1 or not TensorShape(
                logits.shape.dims[:-1]).is_compatible_with(labels.shape):
            raise ShapeInferenceError(f"labels must have the shape of logits without its last "
                                      f"dimension: logits {logits.shape}, labels "
                                      f"{labels.shape}")
    batch = labels.shape if labels.shape.dims is not None else TensorShape(None)
    return [TensorSpec(logits.dtype, batch), TensorSpec(logits.dtype, logits.shape)]


def check_sparse_labels(labels: np.ndarray, classes: int) -> None:
    """Out-of-range labels are an error (TF1's message); every backend checks first."""
    bad = (labels < 0) | (labels >= classes)
    if np.any(bad):
        value = int(labels[bad][0])
        raise errors.IndexOutOfRangeError(f"Received a label value of {value} which is outside "
                                          f"the valid range of [0, {classes}).")


def _check_sparse_xent(logits, labels):
    check_sparse_labels(labels, logits.shape[-1])


def _sparse_xent_kernel(logits, labels):
    _check_sparse_xent(logits, labels)
    log_probs = _log_softmax_kernel(logits, axis=-1)
    picked = np.take_along_axis(log_probs, labels[..., None].astype(np.int64), axis=-1)
    backprop = np.exp(log_probs)
    np.put_along_axis(backprop, labels[..., None].astype(np.int64),
                      np.take_along_axis(backprop, labels[..., None].astype(np.int64), -1) - 1,
                      axis=-1)
    return (-picked[..., 0]).astype(logits.dtype), backprop.astype(logits.dtype)


register_op("SparseSoftmaxCrossEntropyWithLogits", "sparse_softmax_xent", _sparse_xent_infer,
            _sparse_xent_kernel, check_inputs=_check_sparse_xent, role=ROWWISE)


def _require_keywords(sentinel, fn_name):
    if sentinel is not None:
        raise ValueError(f"Only call `{fn_name}` with named arguments (labels=..., "
                         f"logits=..., ...)")


def softmax_cross_entropy_with_logits_v2(_sentinel=None, labels=None, logits=None, axis=-1,
                                         name=None, dim=None):
    """Per-example cross-entropy of softmax(logits) against `labels` (a distribution)."""
    _require_keywords(_sentinel, "softmax_cross_entropy_with_logits_v2")
    logits, labels = convert_operands(logits, labels)
    axis = dim if dim is not None else axis
    rank = logits.shape.ndims
    if axis not in (-1, None) and rank is not None and axis % rank != rank - 1:
        perm = [i for i in range(rank) if i != axis % rank] + [axis % rank]
        logits, labels = array.transpose(logits, perm), array.transpose(labels, perm)
    if _needs_flattening(logits, labels):
        return _flattened_xent(logits, labels, name)
    loss, _backprop = apply_op("SoftmaxCrossEntropyWithLogits", [logits, labels], name=name,
                               default_name="SoftmaxCrossEntropyWithLogits")
    return loss


def _needs_flattening(logits, labels) -> bool:
    """TF1 flattens labels and logits to 2-D separately, so that they need only the same
    number of rows and classes (labels [1, N, C] with logits [N, C]). Shapes of equal rank
    are left alone: the op takes them as they are."""
    a, b = logits.shape.ndims, labels.shape.ndims
    return a is not None and b is not None and a != b


def _flattened_xent(logits, labels, name):
    classes = logits.shape.dims[-1] if logits.shape.ndims else None
    label_classes = labels.shape.dims[-1] if labels.shape.ndims else None
    if logits.shape.ndims == 0 or labels.shape.ndims == 0:
        raise errors.ShapeError(f"softmax_cross_entropy_with_logits needs logits and labels of "
                                f"rank >= 1, got {logits.describe()} with shape "
                                f"{logits.shape} and {labels.describe()} with shape "
                                f"{labels.shape}")
    if None not in (classes, label_classes) and classes != label_classes:
        raise errors.ShapeError(f"softmax_cross_entropy_with_logits: logits {logits.describe()} "
                                f"have {classes} classes but labels {labels.describe()} have "
                                f"{label_classes}")
    with get_default_graph().name_scope(name or "softmax_cross_entropy_with_logits") as scope:
        width = classes if classes is not None else label_classes
        flat_logits = array.reshape(logits, [-1, width if width is not None else
                                             array.shape(logits)[-1]])
        flat_labels = array.reshape(labels, [-1, width if width is not None else
                                             array.shape(labels)[-1]])
        loss, _backprop = apply_op("SoftmaxCrossEntropyWithLogits", [flat_logits, flat_labels],
                                   default_name="SoftmaxCrossEntropyWithLogits")
        batch = logits.shape.dims[:-1]
        if len(batch) == 1:
            return array.identity(loss, name=scope)
        if all(d is not None for d in batch):
            return array.reshape(loss, list(batch), name=scope)
        return array.reshape(loss, array.shape(logits)[:-1], name=scope)


def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1,
                                      name=None, axis=None):
    """TF1's original version: no gradient flows into `labels`."""
    _require_keywords(_sentinel, "softmax_cross_entropy_with_logits")
    labels = array.stop_gradient(convert_to_tensor(labels, dtype_hint=_dtype_of(logits)))
    return softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits,
                                                axis=dim if axis is None else axis, name=name)


def _dtype_of(x):
    return getattr(x, "dtype", None)


def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None,
                                             name=None):
    _require_keywords(_sentinel, "sparse_softmax_cross_entropy_with_logits")
    logits = convert_to_tensor(logits)
    labels = convert_to_tensor(labels, dtype_hint=dtypes.int32)
    loss, _backprop = apply_op("SparseSoftmaxCrossEntropyWithLogits", [logits, labels],
                               name=name, default_name="SparseSoftmaxCrossEntropyWithLogits")
    return loss


def sigmoid_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, name=None):
    """max(x, 0) - x * z + log(1 + exp(-|x|)): stable for logits of any magnitude."""
    _require_keywords(_sentinel, "sigmoid_cross_entropy_with_logits")
    logits, labels = convert_operands(logits, labels)
    with get_default_graph().name_scope(name or "logistic_loss") as scope:
        relu_logits = math.maximum(logits, 0.0)
        neg_abs = math.negative(math.abs(logits))
        return math.add(math.subtract(relu_logits, math.multiply(logits, labels)),
                        math.log1p(math.exp(neg_abs)), name=scope)


# -- bias_add / l2_loss / dropout -------------------------------------------------------------
def bias_add(value, bias, data_format=None, name=None):
    """value + bias with `bias` 1-D and matching the last dimension of `value`."""
    value, bias = convert_operands(value, bias)
    if bias.shape.ndims not in (1, None):
        raise errors.ShapeError(f"bias_add: bias {bias.describe()} must be 1-D, got shape "
                                f"{bias.shape}")
    if data_format not in (None, "NHWC", "N...C"):
        raise errors.UnimplementedError(f"bias_add data_format {data_format!r} is not "
                                        f"supported yet")
    last = value.shape.dims[-1] if value.shape.dims else None
    if last is not None and bias.shape.dims and bias.shape.dims[0] not in (None, last):
        raise errors.ShapeError(f"bias_add: bias {bias.describe()} has {bias.shape.dims[0]} "
                                f"elements but the last dimension of {value.describe()} is "
                                f"{last}")
    return math.add(value, bias, name=name or "BiasAdd")


def l2_loss(t, name=None):
    """sum(t ** 2) / 2."""
    t = convert_to_tensor(t)
    if not t.dtype.is_floating:
        raise errors.DTypeError(f"l2_loss needs a floating point tensor, got {t.describe()} "
                                f"of dtype {t.dtype.name}")
    with get_default_graph().name_scope(name or "L2Loss") as scope:
        return math.multiply(math.reduce_sum(math.square(t)), 0.5, name=scope)


def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None):
    """Zeroes elements with probability `rate` (= 1 - keep_prob) and scales the rest by
    1 / keep_prob. `keep_prob` may be a placeholder (fed 1.0 at test time)."""
    from flowjit.ops import random as random_ops
    x = convert_to_tensor(x)
    if (keep_prob is None) == (rate is None):
        raise ValueError("dropout needs exactly one of keep_prob and rate")
    if rate is not None:
        keep_prob = math.subtract(1.0, rate) if hasattr(rate, "dtype") else 1.0 - rate
    if isinstance(keep_prob, (int, float)) and not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    with get_default_graph().name_scope(name or "dropout") as scope:
        keep_prob = convert_to_tensor(keep_prob, dtype=x.dtype)
        if noise_shape is None:  # works for unknown (None) batch dimensions too
            uniform = random_ops.random_uniform_like(x, seed=seed)
        else:
            uniform = random_ops.random_uniform(_static_noise_shape(x, noise_shape),
                                                dtype=x.dtype, seed=seed)
        keep_mask = math.floor(math.add(keep_prob, uniform))
        return math.multiply(math.truediv(x, keep_prob), keep_mask, name=scope)


def _static_noise_shape(x, shape):
    dims = list(shape.dims) if hasattr(shape, "dims") else list(shape)
    if any(d is None for d in dims):
        raise errors.UnimplementedError(
            f"dropout noise_shape {dims} for {x.describe()} must be fully known; leave "
            f"noise_shape=None to draw noise of the (possibly unknown) shape of x")
    return dims


# -- more activations and losses (compositions of registered ops) -----------------------------
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(features, name=None):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)), with TF's constants."""
    x = convert_to_tensor(features)
    with get_default_graph().name_scope(name or "Selu") as scope:
        negative = math.multiply(elu(x), _SELU_ALPHA)
        return math.multiply(array.where_v2(math.greater(x, 0.0), x, negative), _SELU_SCALE,
                             name=scope)


def swish(features, beta=1.0, name=None):
    """x * sigmoid(beta * x)."""
    x = convert_to_tensor(features)
    with get_default_graph().name_scope(name or "swish") as scope:
        z = x if beta == 1.0 else math.multiply(x, beta)
        return math.multiply(x, math.sigmoid(z), name=scope)


silu = swish


def softsign(features, name=None):
    """x / (1 + |x|)."""
    x = convert_to_tensor(features)
    with get_default_graph().name_scope(name or "Softsign") as scope:
        return math.truediv(x, math.add(math.abs(x), 1.0), name=scope)


def crelu(features, name=None, axis=-1):
    """relu(concat([x, -x], axis)): both signs' activations, twice the depth."""
    x = convert_to_tensor(features)
    with get_default_graph().name_scope(name or "CRelu") as scope:
        return relu(array.concat([x, math.negative(x)], axis), name=scope)


def weighted_cross_entropy_with_logits(labels=None, logits=None, pos_weight=None, name=None,
                                       targets=None):
    """sigmoid cross-entropy with positives weighted by pos_weight:
    (1 - z) * x + (1 + (q - 1) * z) * (log(1 + exp(-|x|)) + max(-x, 0))."""
    labels = targets if labels is None else labels
    logits, labels = convert_operands(logits, labels)
    with get_default_graph().name_scope(name or "logistic_loss") as scope:
        pos_weight = convert_to_tensor(pos_weight, dtype_hint=logits.dtype)
        log_weight = math.add(math.multiply(labels, math.subtract(pos_weight, 1.0)), 1.0)
        softplus_neg = math.add(math.log1p(math.exp(math.negative(math.abs(logits)))),
                                math.maximum(math.negative(logits), 0.0))
        return math.add(math.multiply(math.subtract(1.0, labels), logits),
                        math.multiply(log_weight, softplus_neg), name=scope)


def log_poisson_loss(targets, log_input, compute_full_loss=False, name=None):
    """exp(log_input) - log_input * targets, plus Stirling's approximation of log(targets!)
    for targets > 1 when compute_full_loss."""
    log_input, targets = convert_operands(log_input, targets)
    with get_default_graph().name_scope(name or "log_poisson_loss") as scope:
        result = math.subtract(math.exp(log_input), math.multiply(log_input, targets))
        if not compute_full_loss:
            return array.identity(result, name=scope)
        safe = math.maximum(targets, 1.0)
        stirling = math.add(math.subtract(math.multiply(safe, math.log(safe)), safe),
                            math.multiply(math.log(math.multiply(safe, 2 * np.pi)), 0.5))
        zeros = math.multiply(stirling, 0.0)
        return math.add(result, array.where_v2(math.greater(targets, 1.0), stirling, zeros),
                        name=scope)


def embedding_lookup(params, ids, partition_strategy="mod", name=None, validate_indices=True,
                     max_norm=None):
    """Rows of `params` (a tensor, or a list of shards) picked by `ids`; its gradient is a
    scatter-add of the rows' gradients (GatherV2's rule: UnsortedSegmentSum)."""
    from flowjit.ops import indexing
    if max_norm is not None:
        raise errors.UnimplementedError("embedding_lookup with max_norm is not supported")
    shards = list(params) if isinstance(params, (list, tuple)) else [params]
    shards = [convert_to_tensor(p) for p in shards]
    ids = convert_to_tensor(ids, dtype_hint=dtypes.int32)
    with get_default_graph().name_scope(name or "embedding_lookup") as scope:
        if len(shards) == 1:
            return indexing.gather(shards[0], ids, name=scope)
        sizes = [p.shape.dims[0] if p.shape.dims else None for p in shards]
        if None in sizes:
            raise errors.UnimplementedError("embedding_lookup over shards needs each shard's "
                                            "number of rows known when the graph is built")
        table = array.concat(shards, 0)
        n = len(shards)
        if partition_strategy == "div":
            return indexing.gather(table, ids, name=scope)
        if partition_strategy != "mod":
            raise errors.InvalidArgumentError(f"partition_strategy must be 'mod' or 'div', "
                                              f"got {partition_strategy!r}")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(ids.dtype.np_dtype)
        shard = math.floormod(ids, n)
        row = math.add(indexing.gather(starts, shard), math.floordiv(ids, n))
        return indexing.gather(table, row, name=scope)
