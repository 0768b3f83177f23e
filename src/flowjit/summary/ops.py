"""The summary ops: `tf.summary.scalar`, `histogram`, `image`, `audio`, `text`,
`tensor_summary`, `merge`, `merge_all`, and TF1's older names (`tf.scalar_summary`, ...).

A summary op is an ordinary op of the op table, under TensorFlow's op type and inputs
(`ScalarSummary(tags, values)`, `MergeSummary(inputs)`, ...): it returns a serialized
`Summary` protocol buffer as a scalar string tensor, so `sess.run(merged)` gives the bytes
`FileWriter.add_summary` takes, as in TF1. Its output is a string, so every backend runs it in
the host part of an executable, with the numpy kernel here (built by `summary/encode.py`).
Summary ops are pure (TF1's are stateless): equal ones may be merged, unused ones removed.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence

import numpy as np

from flowjit import dtypes
from flowjit.graph.core import GraphKeys, Tensor, get_default_graph
from flowjit.graph.registry import DTypeInferenceError, ShapeInferenceError, TensorSpec, \
    register_op
from flowjit.graph.shape import TensorShape
from flowjit.io.protos import tensorflow_proto
from flowjit.ops.base import NUMERIC, apply_op, check_dtype, convert_to_tensor
from flowjit.summary import encode

_SCALAR_STRING = TensorSpec(dtypes.string, TensorShape([]))
_REAL = NUMERIC + (dtypes.bool_,)
_IMAGE_DTYPES = (dtypes.uint8, dtypes.float16, dtypes.float32, dtypes.float64)


def _serialized(summary) -> np.ndarray:
    return np.array(summary.SerializeToString(), dtype=object)


def _tag(tag: np.ndarray) -> str:
    value = np.asarray(tag).reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _check_tag(spec: TensorSpec, what: str = "tag") -> None:
    if spec.dtype is not dtypes.string:
        raise DTypeInferenceError(f"the {what} of a summary must be a string, got dtype "
                                  f"{spec.dtype.name}")
    if spec.shape.ndims not in (None, 0):
        raise ShapeInferenceError(f"the {what} of a summary must be a scalar, got shape "
                                  f"{spec.shape}")


# -- the ops --------------------------------------------------------------------------------
def _scalar_infer(inputs):
    tags, values = inputs
    if tags.dtype is not dtypes.string:
        raise DTypeInferenceError(f"tags must be strings, got dtype {tags.dtype.name}")
    check_dtype(values, _REAL, "values")
    if not tags.shape.is_compatible_with(values.shape):
        raise ShapeInferenceError(f"tags and values not the same shape: {tags.shape} != "
                                  f"{values.shape}")
    return [_SCALAR_STRING]


def _histogram_infer(inputs):
    _check_tag(inputs[0])
    check_dtype(inputs[1], _REAL, "values")
    return [_SCALAR_STRING]


def _image_infer(inputs, *, max_images, bad_color):
    _check_tag(inputs[0])
    check_dtype(inputs[1], _IMAGE_DTYPES, "tensor")
    shape = inputs[1].shape
    if shape.ndims is not None and (shape.ndims != 4 or shape.dims[-1] not in (None, 1, 3, 4)):
        raise ShapeInferenceError(f"Tensor must be 4-D with last dim 1, 3, or 4, not {shape}")
    return [_SCALAR_STRING]


def _audio_infer(inputs, *, max_outputs):
    _check_tag(inputs[0])
    check_dtype(inputs[1], (dtypes.float32,), "tensor")
    if inputs[1].shape.ndims not in (None, 2, 3):
        raise ShapeInferenceError(f"Tensor must be 3-D or 2-D, got: {inputs[1].shape}")
    check_dtype(inputs[2], (dtypes.float32,), "sample_rate")
    return [_SCALAR_STRING]


def _tensor_infer(inputs):
    _check_tag(inputs[0])
    _check_tag(inputs[2], "serialized_summary_metadata")
    return [_SCALAR_STRING]


def _merge_infer(inputs):
    if not inputs:
        raise ShapeInferenceError("merge needs at least one summary")
    for i, spec in enumerate(inputs):
        if spec.dtype is not dtypes.string:
            raise DTypeInferenceError(f"input {i} of a summary merge is not a serialized "
                                      f"summary (a string) but has dtype {spec.dtype.name}")
    return [_SCALAR_STRING]


register_op("ScalarSummary", "scalar_summary", _scalar_infer,
            lambda tags, values: _serialized(encode.scalar(tags, values)))
register_op("HistogramSummary", "histogram_summary", _histogram_infer,
            lambda tag, values: _serialized(encode.histogram(_tag(tag), values)))
register_op("ImageSummary", "image_summary", _image_infer,
            lambda tag, images, *, max_images, bad_color: _serialized(
                encode.image(_tag(tag), images, max_images, bad_color)))
register_op("AudioSummaryV2", "audio_summary", _audio_infer,
            lambda tag, sounds, rate, *, max_outputs: _serialized(
                encode.audio(_tag(tag), sounds, float(rate), max_outputs)))
register_op("TensorSummaryV2", "tensor_summary", _tensor_infer,
            lambda tag, value, metadata: _serialized(
                encode.tensor(_tag(tag), value, np.asarray(metadata).item())))
register_op("MergeSummary", "merge_summary", _merge_infer,
            lambda *inputs: _serialized(encode.merge(
                [item for array in inputs for item in np.asarray(array).reshape(-1)])))


# -- tf.summary.* ---------------------------------------------------------------------------
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")


def _clean_tag(name: Optional[str]) -> Optional[str]:
    """TF1's `clean_tag`: characters other than letters, digits, _-/. become '_'."""
    if name is None:
        return None
    cleaned = _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")
    return cleaned


class _SummaryScope:
    """TF1's `summary_scope`: a name scope `family/name`, whose full name is the tag (with
    the family in front again, so that TensorBoard groups it in the family's tab)."""

    def __init__(self, name: str, family: Optional[str]) -> None:
        name, family = _clean_tag(name), _clean_tag(family)
        self._family = family
        self._scope = get_default_graph().name_scope(name if family is None else
                                                     f"{family}/{name}")

    def __enter__(self):
        scope = self._scope.__enter__()
        base = scope.rstrip("/")
        return (base if self._family is None else f"{self._family}/{base}"), scope

    def __exit__(self, *exc):
        return self._scope.__exit__(*exc)


def _string(value: Any, name: str) -> Tensor:
    return convert_to_tensor(value, dtype=dtypes.string, name=name)


def _collect(summary: Tensor, collections: Optional[Sequence[str]],
             default: Sequence[str] = (GraphKeys.SUMMARIES,)) -> Tensor:
    for key in (default if collections is None else collections):
        summary.graph.add_to_collection(key, summary)
    return summary


def scalar(name: str, tensor, collections: Optional[Sequence[str]] = None,
           family: Optional[str] = None) -> Tensor:
    """`tf.summary.scalar`: a Summary with the scalar `tensor`'s value under the tag `name`
    (scoped by the enclosing name scopes, and `family`)."""
    with _SummaryScope(name, family) as (tag, scope):
        value = convert_to_tensor(tensor)
        summary = apply_op("ScalarSummary", [_string(tag, "tags"), value], name=scope)
    return _collect(summary, collections)


def histogram(name: str, values, collections: Optional[Sequence[str]] = None,
              family: Optional[str] = None) -> Tensor:
    """`tf.summary.histogram`: the distribution of `values` (any shape), in TF's buckets."""
    with _SummaryScope(name, family) as (tag, scope):
        summary = apply_op("HistogramSummary", [_string(tag, "tag"), convert_to_tensor(values)],
                           name=scope)
    return _collect(summary, collections)


def image(name: str, tensor, max_outputs: int = 3, collections: Optional[Sequence[str]] = None,
          family: Optional[str] = None) -> Tensor:
    """`tf.summary.image`: up to `max_outputs` images of `tensor` ([batch, height, width,
    1|3|4], uint8 or float) as PNGs, tagged `name/image/i`."""
    with _SummaryScope(name, family) as (tag, scope):
        summary = apply_op("ImageSummary", [_string(tag, "tag"), convert_to_tensor(tensor)],
                           {"max_images": int(max_outputs), "bad_color": (255, 0, 0, 255)},
                           name=scope)
    return _collect(summary, collections)


def audio(name: str, tensor, sample_rate, max_outputs: int = 3,
          collections: Optional[Sequence[str]] = None, family: Optional[str] = None) -> Tensor:
    """`tf.summary.audio`: up to `max_outputs` clips of `tensor` ([batch, frames(,
    channels)], float32 in [-1, 1]) as WAV files at `sample_rate` Hz."""
    with _SummaryScope(name, family) as (tag, scope):
        rate = convert_to_tensor(sample_rate, dtype=dtypes.float32, name="sample_rate")
        summary = apply_op("AudioSummaryV2", [_string(tag, "tag"), convert_to_tensor(tensor),
                                              rate], {"max_outputs": int(max_outputs)},
                           name=scope)
    return _collect(summary, collections)


def tensor_summary(name: str, tensor, summary_description: Optional[str] = None,
                   collections: Optional[Sequence[str]] = None, summary_metadata=None,
                   family: Optional[str] = None, display_name: Optional[str] = None) -> Tensor:
    """`tf.summary.tensor_summary`: the whole `tensor`, with `summary_metadata` (a
    `SummaryMetadata` naming the TensorBoard plugin that shows it)."""
    metadata = tensorflow_proto("summary").SummaryMetadata()
    if summary_metadata is not None:
        metadata.CopyFrom(summary_metadata)
    if display_name is not None:
        metadata.display_name = display_name
    if summary_description is not None:
        metadata.summary_description = summary_description
    with _SummaryScope(name, family) as (tag, scope):
        summary = apply_op("TensorSummaryV2",
                           [_string(tag, "tag"), convert_to_tensor(tensor),
                            _string(metadata.SerializeToString(),
                                    "serialized_summary_metadata")], name=scope)
    return _collect(summary, collections)


def text(name: str, tensor, collections: Optional[Sequence[str]] = None) -> Tensor:
    """`tf.summary.text`: a string tensor for TensorBoard's Text tab (markdown)."""
    value = convert_to_tensor(tensor)
    if value.dtype is not dtypes.string:
        raise ValueError(f"Expected tensor {value.name} to have dtype string, got "
                         f"{value.dtype.name}")
    pb = tensorflow_proto("summary")
    metadata = pb.SummaryMetadata(plugin_data=pb.SummaryMetadata.PluginData(plugin_name="text"))
    return tensor_summary(name, value, summary_metadata=metadata, collections=collections)


def merge(inputs: Sequence[Tensor], collections: Optional[Sequence[str]] = None,
          name: Optional[str] = None) -> Tensor:
    """`tf.summary.merge`: one Summary holding the values of all `inputs` (a tag twice is a
    run-time error, as in TF1)."""
    tensors = [convert_to_tensor(t) for t in inputs]
    summary = apply_op("MergeSummary", tensors, name=name, default_name="Merge")
    return _collect(summary, collections, default=())


def merge_all(key: str = GraphKeys.SUMMARIES, scope: Optional[str] = None,
              name: Optional[str] = None) -> Optional[Tensor]:
    """`tf.summary.merge_all`: merges the summaries of collection `key` (those made with
    the default `collections`); None when there are none."""
    summaries = get_default_graph().get_collection(key, scope)
    return merge(summaries, name=name) if summaries else None


# -- TF1's older names ----------------------------------------------------------------------
def scalar_summary(tags, values, collections: Optional[Sequence[str]] = None,
                   name: Optional[str] = None) -> Tensor:
    """`tf.scalar_summary(tags, values)`: tags used as given (a string, or strings shaped
    like `values`)."""
    summary = apply_op("ScalarSummary", [_string(tags, "tags"), convert_to_tensor(values)],
                       name=name, default_name="ScalarSummary")
    return _collect(summary, collections)


def histogram_summary(tag, values, collections: Optional[Sequence[str]] = None,
                      name: Optional[str] = None) -> Tensor:
    summary = apply_op("HistogramSummary", [_string(tag, "tag"), convert_to_tensor(values)],
                       name=name, default_name="HistogramSummary")
    return _collect(summary, collections)


def image_summary(tag, tensor, max_images: int = 3,
                  collections: Optional[Sequence[str]] = None,
                  name: Optional[str] = None) -> Tensor:
    summary = apply_op("ImageSummary", [_string(tag, "tag"), convert_to_tensor(tensor)],
                       {"max_images": int(max_images), "bad_color": (255, 0, 0, 255)},
                       name=name, default_name="ImageSummary")
    return _collect(summary, collections)


def audio_summary(tag, tensor, sample_rate, max_outputs: int = 3,
                  collections: Optional[Sequence[str]] = None,
                  name: Optional[str] = None) -> Tensor:
    rate = convert_to_tensor(sample_rate, dtype=dtypes.float32)
    summary = apply_op("AudioSummaryV2", [_string(tag, "tag"), convert_to_tensor(tensor), rate],
                       {"max_outputs": int(max_outputs)}, name=name,
                       default_name="AudioSummary")
    return _collect(summary, collections)


def merge_summary(inputs: Sequence[Tensor], collections: Optional[Sequence[str]] = None,
                  name: Optional[str] = None) -> Tensor:
    return merge(inputs, collections, name)


def merge_all_summaries(key: str = GraphKeys.SUMMARIES) -> Optional[Tensor]:
    return merge_all(key)


__all__: List[str] = ["scalar", "histogram", "image", "audio", "tensor_summary", "text",
                      "merge", "merge_all", "scalar_summary", "histogram_summary",
                      "image_summary", "audio_summary", "merge_summary", "merge_all_summaries"]
