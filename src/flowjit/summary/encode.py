"""What the summary ops' kernels compute: `Summary` protos (the tensorboard package's
messages), built as TensorFlow 1's summary kernels build them.

- scalars: one `simple_value` per element;
- histograms: TF's default buckets (limits +-1e-12 * 1.1^k up to 1e20, and 0, then
  DBL_MAX), runs of empty buckets collapsed into one, as `histogram.cc` encodes them;
- images: floats scaled into uint8 as `summary_image_op.cc` does (all non-negative:
  255 / max; else 127 / max|x| around 128; non-finite pixels get `bad_color`), PNG-encoded
  by Pillow;
- audio: samples clipped to [-1, 1], 16-bit PCM WAV by Python's `wave` module;
- tensors: a `TensorProto` with the `SummaryMetadata` given (text summaries are string
  tensors for the "text" plugin).
"""
from __future__ import annotations

import functools
import io
import sys
import wave
from typing import Sequence

import numpy as np

from flowjit import errors
from flowjit.io.protos import MissingDependencyError, tensorflow_proto


def _summary_pb2():
    return tensorflow_proto("summary")


def scalar(tags: np.ndarray, values: np.ndarray):
    """One `simple_value` per element: `tags` and `values` have the same shape."""
    tags, values = np.asarray(tags), np.asarray(values)
    if tags.shape != values.shape:
        raise errors.InvalidArgumentError(f"tags and values not the same shape: "
                                          f"{list(tags.shape)} != {list(values.shape)}")
    pb = _summary_pb2()
    return pb.Summary(value=[pb.Summary.Value(tag=_text(tag), simple_value=float(value))
                             for tag, value in zip(tags.reshape(-1), values.reshape(-1))])


@functools.lru_cache(maxsize=None)
def default_bucket_limits() -> np.ndarray:
    """TF's `InitDefaultBuckets`: -DBL_MAX's bucket ... -1e-12, 0, 1e-12 ... 1e20-ish,
    DBL_MAX (the upper limit of each bucket)."""
    positive, v = [], 1.0e-12
    while v < 1.0e20:
        positive.append(v)
        v *= 1.1
    limits = [-x for x in reversed(positive)] + [0.0] + positive + [sys.float_info.max]
    return np.array(limits, dtype=np.float64)


def histogram(tag: str, values: np.ndarray):
    """A `HistogramProto` of `values` under `tag`; NaN or Inf is an InvalidArgumentError, as
    in TF1."""
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(data)):
        raise errors.InvalidArgumentError(f"Nan in summary histogram for: {tag}")
    limits = default_bucket_limits()
    # A value goes to the first bucket whose limit is above it (std::upper_bound).
    counts = np.bincount(np.searchsorted(limits, data, side="right"),
                         minlength=len(limits))[:len(limits)]
    pb = _summary_pb2()
    histo = pb.HistogramProto(num=float(data.size), sum=float(data.sum()),
                              sum_squares=float(np.dot(data, data)),
                              min=float(data.min()) if data.size else sys.float_info.max,
                              max=float(data.max()) if data.size else -sys.float_info.max)
    i = 0
    while i < len(counts):
        end, count = limits[i], counts[i]
        i += 1
        while count <= 0 and i < len(counts) and counts[i] <= 0:  # a run of empty buckets
            end, count = limits[i], counts[i]
            i += 1
        histo.bucket_limit.append(float(end))
        histo.bucket.append(float(count))
    return pb.Summary(value=[pb.Summary.Value(tag=tag, histo=histo)])


def _as_uint8_image(image: np.ndarray, bad_color: np.ndarray) -> np.ndarray:
    """One [h, w, c] image as uint8, scaled as TF1's ImageSummary scales float images."""
    if image.dtype == np.uint8:
        return image
    pixels = image.astype(np.float32).reshape(-1, image.shape[-1])
    finite = np.all(np.isfinite(pixels), axis=1)
    good = pixels[finite]
    low = float(good.min()) if good.size else 0.0
    high = float(good.max()) if good.size else 0.0
    if low < 0:
        bound = max(abs(low), abs(high))
        scale, offset = (0.0 if bound < 1e-6 else 127.0 / bound), 128.0
    else:
        scale, offset = (0.0 if high < 1e-6 else 255.0 / high), 0.0
    out = np.empty(pixels.shape, np.uint8)
    out[finite] = (good * np.float32(scale) + np.float32(offset)).astype(np.uint8)
    out[~finite] = bad_color[:pixels.shape[1]]
    return out.reshape(image.shape)


def _png(image: np.ndarray) -> bytes:
    try:
        from PIL import Image
    except ImportError as e:
        raise MissingDependencyError(f"tf.summary.image encodes PNG with Pillow ({e}): "
                                     f"pip install 'flowjit[io]'") from None
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[image.shape[-1]]
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if mode == "L" else image, mode).save(buffer, "PNG")
    return buffer.getvalue()


def image(tag: str, images: np.ndarray, max_images: int, bad_color: Sequence[int]):
    """The first `max_images` of `images` ([batch, height, width, channels], channels 1, 3
    or 4) as PNGs, tagged `tag/image/i` (`tag/image` when max_images is 1)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise errors.InvalidArgumentError(f"Tensor must be 4-D with last dim 1, 3, or 4, not "
                                          f"{list(images.shape)}")
    color = np.resize(np.asarray(bad_color, np.uint8), images.shape[-1])
    pb = _summary_pb2()
    summary = pb.Summary()
    for i in range(min(max_images, images.shape[0])):
        pixels = _as_uint8_image(images[i], color)
        summary.value.add(tag=f"{tag}/image/{i}" if max_images > 1 else f"{tag}/image",
                          image=pb.Summary.Image(height=pixels.shape[0],
                                                 width=pixels.shape[1],
                                                 colorspace=pixels.shape[2],
                                                 encoded_image_string=_png(pixels)))
    return summary


def audio(tag: str, sounds: np.ndarray, sample_rate: float, max_outputs: int):
    """The first `max_outputs` clips of `sounds` ([batch, frames] or [batch, frames,
    channels], in [-1, 1]) as 16-bit WAV files, tagged `tag/audio/i` (or `tag/audio`)."""
    sounds = np.asarray(sounds, dtype=np.float32)
    if sounds.ndim == 2:
        sounds = sounds[:, :, None]
    if sounds.ndim != 3:
        raise errors.InvalidArgumentError(f"Tensor must be 3-D or 2-D, got: "
                                          f"{list(sounds.shape)}")
    if not sample_rate > 0:
        raise errors.InvalidArgumentError(f"sample_rate must be > 0, got {sample_rate}")
    pb = _summary_pb2()
    summary = pb.Summary()
    for i in range(min(max_outputs, sounds.shape[0])):
        pcm = (np.clip(sounds[i], -1.0, 1.0) * 32767.0).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(sounds.shape[2])
            wav.setsampwidth(2)
            wav.setframerate(int(round(sample_rate)))
            wav.writeframes(pcm.tobytes())
        summary.value.add(tag=f"{tag}/audio/{i}" if max_outputs > 1 else f"{tag}/audio",
                          audio=pb.Summary.Audio(sample_rate=float(sample_rate),
                                                 num_channels=sounds.shape[2],
                                                 length_frames=sounds.shape[1],
                                                 encoded_audio_string=buffer.getvalue(),
                                                 content_type="audio/wav"))
    return summary


def tensor(tag: str, value: np.ndarray, serialized_metadata: bytes):
    """`value` as a TensorProto, with its plugin's `SummaryMetadata`."""
    from flowjit.graph.graph_def import tensor_proto
    pb = _summary_pb2()
    metadata = pb.SummaryMetadata.FromString(serialized_metadata)
    return pb.Summary(value=[pb.Summary.Value(tag=tag, metadata=metadata,
                                              tensor=tensor_proto(np.asarray(value)))])


def merge(serialized: Sequence[bytes]):
    """The values of several serialized Summaries in one; a tag twice is an error."""
    pb = _summary_pb2()
    merged, seen = pb.Summary(), set()
    for item in serialized:
        try:
            part = pb.Summary.FromString(item)
        except Exception as e:  # protobuf's DecodeError
            raise errors.InvalidArgumentError(f"Could not parse one of the summary inputs "
                                              f"({e})") from None
        for value in part.value:
            if value.tag in seen:
                raise errors.InvalidArgumentError(f"Duplicate tag {value.tag} found in "
                                                  f"summary inputs")
            seen.add(value.tag)
            merged.value.add().CopyFrom(value)
    return merged


def _text(tag) -> str:
    return tag.decode("utf-8") if isinstance(tag, bytes) else str(tag)
