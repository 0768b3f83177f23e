"""Saving and loading graphs: the text round-trips, and a loaded graph lowers and runs exactly
like the graph it was saved from."""
import numpy as np
import pytest

import flowjit as tf
from flowjit.graph.serialize import (GraphFileError, graph_from_text, graph_to_text,
                                     is_graph_file, load_graph, write_graph)
from flowjit.ir.core import TensorType
from flowjit.ir.printer import print_func
from flowjit.lower import lower

FETCHES = ["model/logits:0", "model/loss:0", "model/onehot:0", "model/window:0", "noise:0"]


def build_model() -> tf.Graph:
    """Every kind of attribute: dtypes, shapes, tuples, nested tuples with None, arrays,
    floats, bools, strings; plus variables, random ops, scopes and control edges."""
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(1234)
        x = tf.placeholder(tf.float32, [None, 6], name="x")
        labels = tf.placeholder(tf.int32, [None], name="labels")
        with tf.name_scope("model"):
            w = tf.Variable(tf.truncated_normal([6, 3], stddev=0.5), name="w")
            b = tf.Variable(tf.constant([0.5, -1.0, 2.0]), name="b")
            logits = tf.add(tf.matmul(x, w), b, name="logits")
            onehot = tf.one_hot(labels, 3, on_value=2.0, off_value=-1.0, name="onehot")
            tf.reduce_mean(tf.reduce_sum(tf.square(logits - onehot), axis=1), name="loss")
            tf.identity(logits[:, 1:3][::-1], name="window")
        tf.add(tf.random_uniform([2, 2], seed=7), tf.constant(np.eye(2, dtype=np.float32)),
               name="noise")
        with tf.control_dependencies([tf.global_variables_initializer()]):
            tf.no_op(name="ready")
    return graph


def feeds_for(graph: tf.Graph) -> dict:
    rng = np.random.RandomState(0)
    return {graph.get_tensor_by_name("x:0"): rng.rand(4, 6).astype(np.float32),
            graph.get_tensor_by_name("labels:0"): np.array([0, 2, 1, 2], np.int32)}


def lowered_text(graph: tf.Graph, fetch: str) -> str:
    fetches = [graph.get_tensor_by_name(fetch)]
    feed_types = {t: TensorType(t.dtype, v.shape) for t, v in feeds_for(graph).items()}
    return print_func(lower(fetches, feed_types=feed_types))


def run(graph: tf.Graph):
    with tf.Session(graph=graph) as sess:
        sess.run("init")
        return sess.run(FETCHES, feeds_for(graph))


def test_text_round_trips_exactly():
    original = build_model()
    text = graph_to_text(original)
    assert graph_to_text(graph_from_text(text)) == text


def test_loaded_ops_have_the_same_names_types_attrs_inputs_and_sites():
    original = build_model()
    loaded = graph_from_text(graph_to_text(original))
    assert loaded.seed == 1234
    pairs = list(zip(original.get_operations(), loaded.get_operations()))
    assert len(pairs) == len(original.get_operations()) == len(loaded.get_operations())
    for before, after in pairs:
        assert (after.name, after.type, after.site) == (before.name, before.type, before.site)
        assert [t.name for t in after.inputs] == [t.name for t in before.inputs]
        assert [c.name for c in after.control_inputs] == [c.name for c in before.control_inputs]
        assert sorted(after.attrs) == sorted(before.attrs)
        for key, value in before.attrs.items():
            if isinstance(value, np.ndarray):
                assert after.attrs[key].dtype == value.dtype
                np.testing.assert_array_equal(after.attrs[key], value)
            else:
                assert after.attrs[key] == value, (before.name, key)


@pytest.mark.parametrize("fetch", FETCHES)
def test_loaded_graph_lowers_to_the_same_ir(fetch):
    original = build_model()
    loaded = graph_from_text(graph_to_text(original))
    assert lowered_text(loaded, fetch) == lowered_text(original, fetch)


def test_loaded_graph_runs_to_the_same_values(tmp_path):
    original = build_model()
    path = write_graph(original, str(tmp_path / "logs"), "model.graph")
    loaded = load_graph(path)
    for before, after in zip(run(original), run(loaded)):
        np.testing.assert_array_equal(after, before)


def test_constants_are_written_in_full():
    graph = tf.Graph()
    with graph.as_default():
        value = np.arange(1000, dtype=np.float32) / 7
        tf.constant(value, name="c")
    loaded = graph_from_text(graph_to_text(graph))
    np.testing.assert_array_equal(loaded.get_operation_by_name("c").attrs["value"], value)


def test_ops_added_to_a_loaded_graph_get_fresh_names():
    loaded = graph_from_text(graph_to_text(build_model()))
    with loaded.as_default():
        assert tf.no_op(name="ready").name == "ready_1"
        with tf.name_scope("model") as scope:
            assert scope == "model_1/"


def test_write_graph_creates_logdir_and_returns_the_path(tmp_path):
    path = write_graph(build_model(), str(tmp_path / "a" / "b"), "g.txt")
    assert path == str(tmp_path / "a" / "b" / "g.txt")
    assert is_graph_file(path)
    assert not is_graph_file(__file__)


def test_errors_name_the_line_and_the_op():
    text = graph_to_text(build_model()).replace("= MatMul(", "= MatMool(")
    with pytest.raises(GraphFileError, match=r"line \d+: cannot recreate op 'model/MatMul' "
                                             r"\(MatMool\): no op type 'MatMool'"):
        graph_from_text(text)
    with pytest.raises(GraphFileError, match="not a flowjit graph file: line 1"):
        graph_from_text("print('hello')\n")


def test_a_training_graph_trains_the_same_after_loading():
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        w = tf.Variable(tf.random_normal([3, 2], seed=3), name="w")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
        tf.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
        tf.global_variables_initializer()
    loaded = graph_from_text(graph_to_text(graph))

    def train(g: tf.Graph):
        with tf.Session(graph=g) as sess:
            sess.run("init")
            sess.run("train", {"x:0": np.arange(6, dtype=np.float32).reshape(2, 3)})
            return sess.run("w:0")

    np.testing.assert_array_equal(train(loaded), train(graph))
