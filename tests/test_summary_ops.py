"""Summary ops: string tensors holding serialized Summary protos, written by FileWriter and
read back with TensorBoard's own event reader (on whichever backend the suite runs)."""
import io
import wave

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")
from tensorboard.compat.proto import summary_pb2  # noqa: E402

ALL = {kind: 0 for kind in (event_accumulator.SCALARS, event_accumulator.HISTOGRAMS,
                            event_accumulator.IMAGES, event_accumulator.TENSORS,
                            event_accumulator.AUDIO)}


def read_back(logdir):
    accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance=ALL)
    accumulator.Reload()
    return accumulator


def test_training_loop_writes_scalars_histograms_images_and_text(tmp_path):
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    y = tf.placeholder(tf.float32, [None, 1], name="y")
    w = tf.get_variable("w", [2, 1], initializer=tf.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - y))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.name_scope("train"):
        tf.summary.scalar("loss", loss)
    tf.summary.histogram("weights", w)
    tf.summary.image("inputs", tf.reshape(x, [-1, 1, 2, 1]), max_outputs=2)
    tf.summary.text("note", tf.constant("step *done*"))
    merged = tf.summary.merge_all()
    rng = np.random.default_rng(0)
    data_x = rng.uniform(0, 1, (8, 2)).astype(np.float32)
    data_y = data_x @ np.array([[1.0], [-2.0]], np.float32)
    losses, weights = [], []
    with tf.Session() as sess, tf.summary.FileWriter(str(tmp_path), sess.graph) as writer:
        sess.run(tf.global_variables_initializer())
        for step in range(4):
            weights.append(sess.run(w))
            summary, value, _ = sess.run([merged, loss, train], {x: data_x, y: data_y})
            assert isinstance(summary, bytes)
            writer.add_summary(summary, step)
            losses.append(value)
    accumulator = read_back(tmp_path)
    tags = accumulator.Tags()
    assert tags["scalars"] == ["train/loss"] and tags["histograms"] == ["weights"]
    assert sorted(tags["images"]) == ["inputs/image/0", "inputs/image/1"]
    assert tags["tensors"] == ["note"]
    scalars = accumulator.Scalars("train/loss")
    assert [e.step for e in scalars] == [0, 1, 2, 3]
    np.testing.assert_allclose([e.value for e in scalars], losses, rtol=1e-6)
    assert losses[-1] < losses[0]
    for event, value in zip(accumulator.Histograms("weights"), weights):
        histo = event.histogram_value
        assert histo.num == value.size and histo.min == value.min()
        np.testing.assert_allclose([histo.sum, histo.sum_squares],
                                   [value.sum(), np.square(value.astype(np.float64)).sum()],
                                   rtol=1e-6)
    image = accumulator.Images("inputs/image/1")[0]
    from PIL import Image
    pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
    expected = (data_x[1] * np.float32(255 / data_x[1].max())).astype(np.uint8)
    np.testing.assert_array_equal(pixels.reshape(-1), expected)
    text = accumulator.Tensors("note")[0].tensor_proto
    assert text.string_val == [b"step *done*"]
    assert {node.op for node in accumulator.Graph().node} >= {"ScalarSummary", "MergeSummary"}


def test_histogram_buckets_count_every_value_where_it_falls():
    values = np.concatenate([np.linspace(-3, 5, 101), [0.0, 0.0, 1e-3]]).astype(np.float32)
    with tf.Session() as sess:
        serialized = sess.run(tf.summary.histogram("h", tf.constant(values)))
    histo = summary_pb2.Summary.FromString(serialized).value[0].histo
    limits = np.array(histo.bucket_limit)
    assert np.all(np.diff(limits) > 0) and sum(histo.bucket) == values.size
    lower = np.concatenate([[-np.inf], limits[:-1]])
    data = values.astype(np.float64)
    counted = [np.count_nonzero((data >= lo) & (data < hi)) for lo, hi in zip(lower, limits)]
    assert counted == list(histo.bucket)
    assert histo.min == data.min() and histo.max == data.max()


def test_tags_follow_name_scopes_families_and_uniquing():
    v = tf.constant(1.0)
    first = tf.summary.scalar("loss", v)
    second = tf.summary.scalar("loss", v)
    with tf.name_scope("eval"):
        scoped = tf.summary.scalar("acc uracy", v, family="metrics")
    other = tf.summary.scalar("hidden", v, collections=["mine"])
    with tf.Session() as sess:
        outs = sess.run([first, second, scoped, tf.summary.merge_all()])
        tags = [[value.tag for value in summary_pb2.Summary.FromString(s).value] for s in outs]
    assert tags == [["loss"], ["loss_1"], ["metrics/eval/metrics/acc_uracy"],
                    ["loss", "loss_1", "metrics/eval/metrics/acc_uracy"]]
    assert first.op.name == "loss" and tf.get_collection("mine") == [other]
    assert tf.summary.merge_all("nothing here") is None


def test_old_names_and_writer(tmp_path):
    a = tf.placeholder(tf.float32, [2])
    tf.scalar_summary(["first", "second"], a)
    tf.histogram_summary("dist", a)
    merged = tf.merge_all_summaries()
    writer = tf.train.SummaryWriter(str(tmp_path))
    with tf.Session() as sess:
        writer.add_summary(sess.run(merged, {a: [0.5, 2.0]}), 7)
    writer.close()
    accumulator = read_back(tmp_path)
    assert [accumulator.Scalars(t)[0].value for t in ("first", "second")] == [0.5, 2.0]
    assert accumulator.Histograms("dist")[0].step == 7


def test_audio_is_a_wav_file_of_the_samples():
    clip = np.sin(np.linspace(0, 20, 400, dtype=np.float32)).reshape(1, 400)
    with tf.Session() as sess:
        serialized = sess.run(tf.summary.audio("tone", tf.constant(clip), 8000, max_outputs=1))
    value = summary_pb2.Summary.FromString(serialized).value[0]
    assert value.tag == "tone/audio" and value.audio.sample_rate == 8000
    with wave.open(io.BytesIO(value.audio.encoded_audio_string)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getnframes()) == (8000, 1, 400)
        samples = np.frombuffer(wav.readframes(400), "<i2")
    np.testing.assert_allclose(samples / 32767.0, clip[0], atol=1 / 32767.0)


def test_tensor_summary_keeps_the_tensor_and_metadata():
    value = np.arange(6, dtype=np.int32).reshape(2, 3)
    with tf.Session() as sess:
        serialized = sess.run(tf.summary.tensor_summary(
            "t", tf.constant(value), summary_description="six numbers", display_name="T"))
    out = summary_pb2.Summary.FromString(serialized).value[0]
    from flowjit.graph.graph_def import array_from_tensor_proto
    np.testing.assert_array_equal(array_from_tensor_proto(out.tensor), value)
    assert (out.metadata.display_name, out.metadata.summary_description) == ("T", "six numbers")


def test_run_time_errors_name_the_problem():
    x = tf.placeholder(tf.float32, [None])
    duplicate = tf.summary.merge([tf.scalar_summary("same", 1.0), tf.scalar_summary("same", 2.0)])
    histogram = tf.summary.histogram("values", x)
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="Duplicate tag same"):
            sess.run(duplicate)
        with pytest.raises(errors.InvalidArgumentError, match="Nan in summary histogram for: "
                                                              "values"):
            sess.run(histogram, {x: [1.0, np.nan]})
    with pytest.raises(ValueError, match="dtype string"):
        tf.summary.text("t", tf.constant(1.0))
    with pytest.raises(errors.ShapeError, match="4-D"):
        tf.summary.image("im", tf.zeros([2, 3]))
