"""The graph API: names, scopes, collections, lookup, printing, static shapes."""
import pytest

import flowjit as tf
from flowjit import errors


def test_unique_names_follow_tf1():
    a = tf.constant(1.0)
    b = tf.constant(2.0)
    assert a.name == "Const:0" and b.name == "Const_1:0"
    assert tf.add(a, b).name == "Add:0"
    assert (a + b).name == "add_1:0"  # uniquing is case-insensitive in TF1
    assert (a * b).name == "mul:0"
    assert (a * b).name == "mul_1:0"
    assert tf.nn.relu(a).name == "Relu:0"


def test_name_scope_nesting_and_reuse():
    with tf.name_scope("layer"):
        x = tf.constant(1.0, name="x")
        with tf.name_scope("inner"):
            y = tf.identity(x, name="y")
    with tf.name_scope("layer"):
        z = tf.constant(1.0, name="x")
    assert x.name == "layer/x:0"
    assert y.name == "layer/inner/y:0"
    assert z.name == "layer_1/x:0"


def test_lookup_by_name():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.reduce_sum(x, name="total")
    g = tf.get_default_graph()
    assert g.get_tensor_by_name("x:0") is x
    assert g.get_operation_by_name("total") is y.op
    assert y.op.inputs[0] is x and y.op.type == "Sum"
    assert y.op.outputs == (y,)


def test_lookup_of_unknown_name_suggests_close_matches():
    tf.placeholder(tf.float32, name="features")
    g = tf.get_default_graph()
    with pytest.raises(errors.NotFoundError, match="featurs.*Did you mean: 'features'"):
        g.get_tensor_by_name("featurs:0")
    with pytest.raises(KeyError):
        g.get_operation_by_name("nope")
    with pytest.raises(ValueError, match="Tensor names must be of the form"):
        g.get_tensor_by_name("features")


def test_tensor_printing_matches_tf1():
    x = tf.placeholder(tf.float32, name="x")
    c = tf.constant([[1.0, 2.0]], name="c")
    p = tf.placeholder(tf.float32, [None, 784], name="p")
    assert str(x) == 'Tensor("x:0", dtype=float32)'
    assert str(c) == 'Tensor("c:0", shape=(1, 2), dtype=float32)'
    assert str(p) == 'Tensor("p:0", shape=(?, 784), dtype=float32)'
    assert repr(p) == "<tf.Tensor 'p:0' shape=(?, 784) dtype=float32>"


def test_static_shapes_with_unknown_dims():
    x = tf.placeholder(tf.float32, [None, 784])
    w = tf.zeros([784, 10])
    y = tf.matmul(x, w) + tf.zeros([10])
    assert y.get_shape().as_list() == [None, 10]
    assert tf.reduce_mean(y, axis=1).shape.as_list() == [None]
    assert tf.reshape(x, [-1, 28, 28]).shape.as_list() == [None, 28, 28]
    assert tf.placeholder(tf.float32).shape.ndims is None


def test_build_time_shape_error_names_both_operands():
    a = tf.placeholder(tf.float32, [3], name="a")
    b = tf.placeholder(tf.float32, [4], name="b")
    with pytest.raises(errors.ShapeError) as info:
        a + b
    message = str(info.value)
    assert "'a:0'" in message and "'b:0'" in message
    assert "[3]" in message and "[4]" in message
    assert "test_graph.py" in message  # the user's creation site
    assert isinstance(info.value, ValueError)


def test_matmul_inner_dimension_error():
    x = tf.placeholder(tf.float32, [None, 784], name="images")
    w = tf.zeros([100, 10], name="W")
    with pytest.raises(errors.ShapeError, match="784 and 100"):
        tf.matmul(x, w)


def test_dtype_mismatch_is_a_type_error_naming_operands():
    x = tf.placeholder(tf.float32, name="x")
    n = tf.placeholder(tf.int32, name="n")
    with pytest.raises(errors.DTypeError) as info:
        x + n
    assert "'x:0'" in str(info.value) and "'n:0'" in str(info.value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match="not integral"):
        n + 0.5


def test_python_scalars_take_the_tensor_dtype():
    x = tf.placeholder(tf.float64)
    assert (x * 2).dtype is tf.float64
    assert (1 - x).dtype is tf.float64
    assert (tf.placeholder(tf.int32) + 1).dtype is tf.int32


def test_tensor_is_not_a_bool():
    x = tf.constant(1.0)
    with pytest.raises(TypeError, match="bool"):
        if x:
            pass


def test_collections_and_graph_keys():
    v = tf.Variable(1.0, name="v")
    frozen = tf.Variable(2.0, name="frozen", trainable=False)
    assert tf.global_variables() == [v, frozen]
    assert tf.trainable_variables() == [v]
    assert tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES) == [v]
    tf.add_to_collection("mine", 42)
    assert tf.get_collection("mine") == [42]
    assert tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, scope="fro") == [frozen]


def test_graphs_are_separate():
    g1, g2 = tf.Graph(), tf.Graph()
    with g1.as_default():
        a = tf.constant(1.0)
    with g2.as_default():
        b = tf.constant(2.0)
        assert tf.get_default_graph() is g2
        with pytest.raises(errors.InvalidArgumentError, match="different Graph"):
            a + b
    assert a.graph is g1


def test_control_dependencies_are_recorded():
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0)
    with tf.control_dependencies([inc]):
        read = tf.identity(v)
    assert inc.op in read.op.control_inputs


def test_operation_attributes():
    x = tf.placeholder(tf.float32, [2, 3], name="x")
    t = tf.transpose(x, [1, 0])
    assert t.op.get_attr("perm") == (1, 0)
    with pytest.raises(ValueError):
        t.op.get_attr("missing")
    assert t.op.node_def["input"] == ["x:0"]


def test_build_time_constant_values_feed_shape_rules():
    x = tf.placeholder(tf.float32, [4, 6])
    new_shape = tf.stack([2, 12])
    assert tf.reshape(x, new_shape).shape.as_list() == [2, 12]
    assert tf.reshape(x, tf.shape(tf.zeros([3, 8]))).shape.as_list() == [3, 8]
    y = tf.placeholder(tf.float32, [None, 6])
    # A shape known only in part gives a partly known static shape (the element count
    # fills in the one unknown dim), as TF1's shape inference does.
    assert tf.reshape(x, tf.shape(y)).shape.as_list() == [4, 6]
    assert tf.reshape(y, [tf.shape(y)[0], 2, -1]).shape.as_list() == [None, 2, None]
