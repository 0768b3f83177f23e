"""tf.summary.FileWriter: event files that TensorBoard's own reader reads back - summaries,
the graph as a GraphDef, run metadata."""
import os

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")
from tensorboard.compat.proto import summary_pb2  # noqa: E402


def read_back(logdir):
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.SCALARS: 0})
    accumulator.Reload()
    return accumulator


def scalar_summary(tag, value):
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])


def test_scalars_and_graph_read_back(tmp_path):
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    with tf.variable_scope("dense"):
        w = tf.get_variable("W", [3, 2])
    y = tf.nn.relu(tf.matmul(x, w), name="y")
    losses = [1.0 / (step + 1) for step in range(5)]
    with tf.summary.FileWriter(str(tmp_path), tf.get_default_graph(), flush_secs=1) as writer:
        for step, loss in enumerate(losses):
            writer.add_summary(scalar_summary("loss", loss).SerializeToString(), step)
        writer.add_summary(scalar_summary("accuracy", 0.5), global_step=4)
    accumulator = read_back(tmp_path)
    assert sorted(accumulator.Tags()["scalars"]) == ["accuracy", "loss"]
    events = accumulator.Scalars("loss")
    assert [e.step for e in events] == list(range(5))
    np.testing.assert_allclose([e.value for e in events], losses, rtol=1e-6)
    graph_def = accumulator.Graph()
    nodes = {node.name: node for node in graph_def.node}
    assert [node.name for node in graph_def.node] == \
        [op.name for op in tf.get_default_graph().get_operations()]
    assert nodes["dense/W"].op == "VariableV2" and nodes["y"].op == "Relu"
    assert list(nodes["y"].input) == [y.op.inputs[0].op.name]
    assert [d.size for d in nodes["dense/W"].attr["shape"].shape.dim] == [3, 2]
    assert nodes[y.op.inputs[0].op.name].attr["transpose_a"].b is False
    assert [d.size for d in nodes["x"].attr["_output_shapes"].list.shape[0].dim] == [-1, 3]


def test_run_metadata_and_old_name(tmp_path):
    x = tf.placeholder(tf.float32, [2], name="x")
    y = tf.reduce_sum(x * 3.0)
    metadata = tf.RunMetadata()
    with tf.Session() as sess:
        sess.run(y, {x: [1.0, 2.0]}, run_metadata=metadata,
                 options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE))
    writer = tf.train.SummaryWriter(str(tmp_path))
    writer.add_run_metadata(metadata, "step1", global_step=1)
    writer.close()
    with pytest.raises(errors.FailedPreconditionError, match=str(tmp_path)):
        writer.add_summary(scalar_summary("late", 1.0))
    writer.reopen()
    writer.add_summary(scalar_summary("late", 2.0), 3)
    writer.close()
    accumulator = read_back(tmp_path)
    assert accumulator.Tags()["run_metadata"] == ["step1"]
    node_names = [n.node_name for n in
                  accumulator.RunMetadata("step1").step_stats.dev_stats[0].node_stats]
    assert "flowjit/execute" in node_names
    assert len([f for f in os.listdir(tmp_path) if f.startswith("events.out")]) == 2


def test_add_summary_rejects_what_is_not_a_summary(tmp_path):
    with tf.summary.FileWriter(str(tmp_path)) as writer:
        with pytest.raises(errors.InvalidArgumentError, match="not a serialized Summary"):
            writer.add_summary(b"\xff\xff\xff")
        with pytest.raises(TypeError, match="Summary"):
            writer.add_summary(3.0)
