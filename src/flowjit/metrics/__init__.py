"""`tf.metrics`: streaming metrics as TF1 builds them. Each returns (value, update_op): the
running counts are local variables (LOCAL_VARIABLES and METRIC_VARIABLES: initialize them
with `tf.local_variables_initializer()`), `update_op` adds one batch to them and returns the
metric after that batch, `value` reads the metric without changing anything."""
from __future__ import annotations

import contextlib

import numpy as np

from flowjit import dtypes
from flowjit.graph.core import GraphKeys, get_default_graph
from flowjit.ops import array, creation, math, state
from flowjit.ops.base import constant, convert_to_tensor
from flowjit.variables import Variable, variable_scope


def metric_variable(shape, dtype, name: str) -> Variable:
    """A zero-initialized local variable holding a running count."""
    return Variable(np.zeros(shape, dtype.np_dtype), trainable=False, name=name,
                    collections=[GraphKeys.LOCAL_VARIABLES, GraphKeys.METRIC_VARIABLES])


def _div_no_nan(a, b):
    zero = math.equal(b, 0.0)
    return array.where_v2(zero, creation.zeros_like(a),
                          math.truediv(a, array.where_v2(zero, creation.ones_like(b), b)))


def _collect(collections, value) -> None:
    for key in collections or ():
        get_default_graph().add_to_collection(key, value)


@contextlib.contextmanager
def _metric_scope(name, default_name: str):
    with variable_scope(name, default_name=default_name):
        yield


def _float(x):
    return math.cast(convert_to_tensor(x), dtypes.float32)


def _weights_like(values, weights):
    ones = creation.ones_like(values)
    return ones if weights is None else math.multiply(ones, _float(weights))


def mean(values, weights=None, metrics_collections=None, updates_collections=None, name=None):
    """The (weighted) mean of every value seen: total / count."""
    with _metric_scope(name, "mean"):
        values = _float(values)
        total = metric_variable([], dtypes.float32, "total")
        count = metric_variable([], dtypes.float32, "count")
        w = _weights_like(values, weights)
        update_total = state.assign_add(total, math.reduce_sum(math.multiply(values, w)))
        update_count = state.assign_add(count, math.reduce_sum(w))
        value = _div_no_nan(total.value(), count.value())
        update_op = _div_no_nan(update_total, update_count)
        _collect(metrics_collections, value)
        _collect(updates_collections, update_op)
        return value, update_op


def accuracy(labels, predictions, weights=None, metrics_collections=None,
             updates_collections=None, name=None):
    """The fraction of predictions equal to their labels."""
    labels, predictions = convert_to_tensor(labels), convert_to_tensor(predictions)
    if labels.dtype is not predictions.dtype:
        predictions = math.cast(predictions, labels.dtype)
    is_correct = math.cast(math.equal(predictions, labels), dtypes.float32)
    return mean(is_correct, weights, metrics_collections, updates_collections,
                name or "accuracy")


def _true_false(labels, predictions, weights, keys):
    """The weighted sums of true/false positives/negatives named in `keys` for one batch."""
    labels = math.cast(convert_to_tensor(labels), dtypes.bool_)
    predictions = math.cast(convert_to_tensor(predictions), dtypes.bool_)
    w = _weights_like(math.cast(labels, dtypes.float32), weights)
    cases = {"true_positives": math.logical_and(labels, predictions),
             "false_positives": math.logical_and(math.logical_not(labels), predictions),
             "false_negatives": math.logical_and(labels, math.logical_not(predictions))}
    return {k: math.reduce_sum(math.multiply(math.cast(cases[k], dtypes.float32), w))
            for k in keys}


def _ratio(kind: str, other: str, labels, predictions, weights, metrics_collections,
           updates_collections, name):
    """tp / (tp + other): precision (other = false positives) or recall (false negatives)."""
    with _metric_scope(name, kind):
        batch = _true_false(labels, predictions, weights, ("true_positives", other))
        counts, updates = {}, {}
        for key, amount in batch.items():
            with get_default_graph().name_scope(key):
                counts[key] = metric_variable([], dtypes.float32, "count")
                updates[key] = state.assign_add(counts[key], amount)
        tp, rest = counts["true_positives"].value(), counts[other].value()
        value = _div_no_nan(tp, math.add(tp, rest))
        update_op = _div_no_nan(updates["true_positives"],
                                math.add(updates["true_positives"], updates[other]))
        _collect(metrics_collections, value)
        _collect(updates_collections, update_op)
        return value, update_op


def precision(labels, predictions, weights=None, metrics_collections=None,
              updates_collections=None, name=None):
    return _ratio("precision", "false_positives", labels, predictions, weights,
                  metrics_collections, updates_collections, name)


def recall(labels, predictions, weights=None, metrics_collections=None,
           updates_collections=None, name=None):
    return _ratio("recall", "false_negatives", labels, predictions, weights,
                  metrics_collections, updates_collections, name)


def auc(labels, predictions, weights=None, num_thresholds=200, metrics_collections=None,
        updates_collections=None, curve="ROC", name=None, summation_method="trapezoidal",
        thresholds=None):
    """Area under the ROC (or PR) curve from confusion counts at `num_thresholds` evenly
    spaced thresholds (TF1's: i / (n - 1), the ends nudged by 1e-7), by the trapezoidal
    rule."""
    if curve not in ("ROC", "PR") or summation_method != "trapezoidal":
        from flowjit import errors
        raise errors.UnimplementedError(f"auc supports curve ROC/PR with the trapezoidal "
                                        f"summation, got {curve}, {summation_method}")
    eps = 1e-7
    if thresholds is None:
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        thresholds = [0.0 - eps] + inner + [1.0 + eps]
    n = len(thresholds)
    with _metric_scope(name, "auc"):
        labels = math.cast(convert_to_tensor(labels), dtypes.bool_)
        predictions = array.reshape(_float(predictions), [1, -1])
        truth = array.reshape(labels, [1, -1])
        w = array.reshape(_weights_like(_float(labels), weights), [1, -1])
        above = math.greater(predictions, constant(np.array(thresholds, np.float32)[:, None]))
        cases = {"true_positives": math.logical_and(truth, above),
                 "false_negatives": math.logical_and(truth, math.logical_not(above)),
                 "true_negatives": math.logical_and(math.logical_not(truth),
                                                    math.logical_not(above)),
                 "false_positives": math.logical_and(math.logical_not(truth), above)}
        counts, updates = {}, {}
        for key, case in cases.items():
            counts[key] = metric_variable([n], dtypes.float32, key)
            amount = math.reduce_sum(math.multiply(math.cast(case, dtypes.float32), w), 1)
            updates[key] = state.assign_add(counts[key], amount)

        def area(c):
            tp, fn = c["true_positives"], c["false_negatives"]
            tn, fp = c["true_negatives"], c["false_positives"]
            recall_ = math.truediv(tp, math.add(math.add(tp, fn), eps))
            if curve == "ROC":
                x = math.truediv(fp, math.add(math.add(fp, tn), eps))
                y = recall_
            else:
                x = recall_
                y = math.truediv(tp, math.add(math.add(tp, fp), eps))
            dx = math.subtract(x[:n - 1], x[1:])
            return math.reduce_sum(math.multiply(dx, math.multiply(
                math.add(y[:n - 1], y[1:]), 0.5)))
        value = area({k: v.value() for k, v in counts.items()})
        update_op = area(updates)
        _collect(metrics_collections, value)
        _collect(updates_collections, update_op)
        return value, update_op
