"""`tf.losses`: TF1's losses with weights and reductions. Each returns the reduced loss and
adds it to the LOSSES collection (`loss_collection`); `get_total_loss` adds them up with the
regularization losses."""
from __future__ import annotations

from flowjit import dtypes
from flowjit.graph.core import GraphKeys, get_default_graph
from flowjit.ops import array, creation, math, nn
from flowjit.ops.base import convert_to_tensor


class Reduction:
    """How the weighted per-element losses become the result (TF1's names)."""

    NONE = "none"
    SUM = "weighted_sum"
    MEAN = "weighted_mean"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    SUM_OVER_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_BY_NONZERO_WEIGHTS = SUM_OVER_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE,
                cls.SUM_OVER_NONZERO_WEIGHTS)


def _safe_div(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0."""
    zero = math.equal(denominator, 0.0)
    safe = array.where_v2(zero, creation.ones_like(denominator), denominator)
    return array.where_v2(zero, creation.zeros_like(numerator), math.truediv(numerator, safe))


def compute_weighted_loss(losses, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    if reduction not in Reduction.all():
        raise ValueError(f"Invalid reduction {reduction!r}, expected one of "
                         f"{Reduction.all()}")
    graph = get_default_graph()
    with graph.name_scope(scope or "weighted_loss"):
        losses = convert_to_tensor(losses)
        input_dtype = losses.dtype
        losses = math.cast(losses, dtypes.float32) if input_dtype is not dtypes.float64 \
            else losses
        weights = math.cast(convert_to_tensor(weights), losses.dtype)
        weighted = math.multiply(losses, weights)
        if reduction == Reduction.NONE:
            loss = weighted
        else:
            loss = math.reduce_sum(weighted)
            if reduction == Reduction.MEAN:
                loss = _safe_div(loss, math.reduce_sum(
                    math.multiply(creation.ones_like(losses), weights)))
            elif reduction == Reduction.SUM_OVER_BATCH_SIZE:
                loss = _safe_div(loss, math.cast(array.size(losses), losses.dtype))
            elif reduction == Reduction.SUM_BY_NONZERO_WEIGHTS:
                present = math.cast(math.not_equal(math.multiply(creation.ones_like(losses),
                                                                 weights), 0.0), losses.dtype)
                loss = _safe_div(loss, math.reduce_sum(present))
        loss = math.cast(loss, input_dtype) if loss.dtype is not input_dtype else loss
        if loss_collection:
            graph.add_to_collection(loss_collection, loss)
        return loss


def _pair(labels, predictions):
    predictions = convert_to_tensor(predictions)
    labels = math.cast(convert_to_tensor(labels, dtype_hint=predictions.dtype),
                       predictions.dtype)
    if labels.shape.ndims is not None and predictions.shape.ndims is not None and \
            not labels.shape.is_compatible_with(predictions.shape):
        from flowjit import errors
        raise errors.ShapeError(f"labels {labels.describe()} with shape {labels.shape} and "
                                f"predictions {predictions.describe()} with shape "
                                f"{predictions.shape} must have the same shape")
    return labels, predictions


def _loss(default_scope: str, per_element):
    def loss(labels, predictions, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
             reduction=Reduction.SUM_BY_NONZERO_WEIGHTS, **kwargs):
        with get_default_graph().name_scope(scope or default_scope):
            labels, predictions = _pair(labels, predictions)
            return compute_weighted_loss(per_element(labels, predictions, **kwargs), weights,
                                         None, loss_collection, reduction)
    loss.__name__ = default_scope
    return loss


mean_squared_error = _loss("mean_squared_error",
                           lambda y, p: math.squared_difference(p, y))
absolute_difference = _loss("absolute_difference", lambda y, p: math.abs(math.subtract(p, y)))


def _huber(labels, predictions, delta=1.0):
    error = math.abs(math.subtract(predictions, labels))
    quadratic = math.minimum(error, delta)
    linear = math.subtract(error, quadratic)
    return math.add(math.multiply(math.square(quadratic), 0.5), math.multiply(linear, delta))


def _log_loss(labels, predictions, epsilon=1e-7):
    return math.subtract(
        math.negative(math.multiply(labels, math.log(math.add(predictions, epsilon)))),
        math.multiply(math.subtract(1.0, labels),
                      math.log(math.add(math.subtract(1.0, predictions), epsilon))))


huber_loss = _loss("huber_loss", _huber)
log_loss = _loss("log_loss", _log_loss)


def hinge_loss(labels, logits, weights=1.0, scope=None, loss_collection=GraphKeys.LOSSES,
               reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """relu(1 - (2 * labels - 1) * logits), labels in {0, 1}."""
    with get_default_graph().name_scope(scope or "hinge_loss"):
        labels, logits = _pair(labels, logits)
        signs = math.subtract(math.multiply(labels, 2.0), 1.0)
        losses = nn.relu(math.subtract(1.0, math.multiply(signs, logits)))
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0,
                          scope=None, loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    with get_default_graph().name_scope(scope or "sigmoid_cross_entropy_loss"):
        labels, logits = _pair(multi_class_labels, logits)
        if label_smoothing:
            labels = math.add(math.multiply(labels, 1.0 - label_smoothing),
                              0.5 * label_smoothing)
        losses = nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def softmax_cross_entropy(onehot_labels, logits, weights=1.0, label_smoothing=0, scope=None,
                          loss_collection=GraphKeys.LOSSES,
                          reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    """Per-example softmax cross-entropy; smoothing mixes the labels with the uniform
    distribution: labels * (1 - s) + s / classes."""
    with get_default_graph().name_scope(scope or "softmax_cross_entropy_loss"):
        labels, logits = _pair(onehot_labels, logits)
        if label_smoothing:
            classes = math.cast(array.shape(logits)[-1], logits.dtype)
            labels = math.add(math.multiply(labels, 1.0 - label_smoothing),
                              math.truediv(label_smoothing, classes))
        losses = nn.softmax_cross_entropy_with_logits_v2(labels=array.stop_gradient(labels),
                                                         logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def sparse_softmax_cross_entropy(labels, logits, weights=1.0, scope=None,
                                 loss_collection=GraphKeys.LOSSES,
                                 reduction=Reduction.SUM_BY_NONZERO_WEIGHTS):
    with get_default_graph().name_scope(scope or "sparse_softmax_cross_entropy_loss"):
        losses = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return compute_weighted_loss(losses, weights, None, loss_collection, reduction)


def add_loss(loss, loss_collection=GraphKeys.LOSSES):
    if loss_collection:
        get_default_graph().add_to_collection(loss_collection, loss)


def get_losses(scope=None, loss_collection=GraphKeys.LOSSES):
    return get_default_graph().get_collection(loss_collection, scope)


def get_regularization_losses(scope=None):
    return get_default_graph().get_collection(GraphKeys.REGULARIZATION_LOSSES, scope)


def get_regularization_loss(scope=None, name="total_regularization_loss"):
    losses = get_regularization_losses(scope)
    if not losses:
        return convert_to_tensor(0.0, dtype=dtypes.float32)
    return math.add_n(losses, name=name)


def get_total_loss(add_regularization_losses=True, name="total_loss", scope=None):
    losses = list(get_losses(scope))
    if add_regularization_losses:
        losses += get_regularization_losses(scope)
    if not losses:
        raise ValueError("No losses found: tf.losses.get_total_loss needs losses in the "
                         "LOSSES or REGULARIZATION_LOSSES collections")
    return math.add_n(losses, name=name)
