"""The IR: printing, parsing (round trip), verification, lowering semantics."""
import textwrap

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.compiler import CompileOptions, optimize
from flowjit.interp import evaluate
from flowjit.ir.core import TensorType
from flowjit.ir.parser import IRParseError, parse_func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import VerificationError, verify
from flowjit.lower import lower


def _mlp():
    x = tf.placeholder(tf.float32, [None, 8], name="x")
    labels = tf.placeholder(tf.int32, [None], name="labels")
    with tf.variable_scope("dense"):
        w = tf.get_variable("W", [8, 4], initializer=tf.random_normal_initializer(seed=1))
        b = tf.get_variable("b", [4], initializer=tf.zeros_initializer())
    h = tf.nn.relu(tf.matmul(x, w) + b)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=h))
    update = tf.assign_sub(w, 0.1 * tf.ones_like(w))
    return x, labels, w, b, h, loss, update


def _feed_types(**shapes):
    graph = tf.get_default_graph()
    types = {}
    for name, (dtype, shape) in shapes.items():
        types[graph.get_tensor_by_name(name + ":0")] = TensorType(dtype, shape)
    return types


def _varied_funcs():
    x, labels, w, b, h, loss, update = _mlp()
    sliced = tf.one_hot(labels, 4)[:, ::-1] * tf.nn.dropout(h, keep_prob=0.5, seed=3)
    feed_types = _feed_types(x=(tf.float32, (3, 8)), labels=(tf.int32, (3,)))
    generic = _feed_types(x=(tf.float32, (None, 8)), labels=(tf.int32, (None,)))
    return [lower([loss], [update.op], feed_types),
            lower([sliced, tf.shape(h), tf.argmax(h, 1)], [], feed_types),
            lower([loss, h], [], generic)]


def test_print_parse_round_trip():
    for func in _varied_funcs():
        text = print_func(func)
        again = parse_func(text)
        assert print_func(again) == text
        assert again == func
        verify(again)


def test_round_trip_after_optimization_with_fusion_regions():
    for func in _varied_funcs():
        optimized = optimize(func, CompileOptions(verify=True))
        text = print_func(optimized)
        assert parse_func(text) == optimized
    assert "fusion" in text and "yield" in text


def test_printer_is_deterministic_and_names_the_users_ops():
    x, labels, w, b, h, loss, update = _mlp()
    feed_types = _feed_types(x=(tf.float32, (2, 8)), labels=(tf.int32, (2,)))
    first = print_func(lower([loss], [update.op], feed_types))
    second = print_func(lower([loss], [update.op], feed_types))
    assert first == second
    assert 'loc("dense/b/Initializer' not in first  # pruned: not needed by this run
    assert '{feed="x:0"}' in first and '{var="dense/W"}' in first
    assert "f32[2,8]" in first and 'loc("MatMul", "MatMul", "test_ir.py:' in first


def test_lowering_prunes_and_keeps_unknown_dims_when_asked():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    tf.placeholder(tf.float32, name="unused")
    y = tf.reduce_sum(x * 2.0, axis=1)
    func = lower([y], [], _feed_types(x=(tf.float32, (None, 3))))
    assert [p.key for p in func.params] == ["x:0"]
    assert str(func.results[0].value.type) == "f32[?]"


def test_lowering_turns_assignments_into_values():
    w = tf.Variable(1.0, name="w")
    y = w * 10.0
    inc = tf.assign_add(w, 1.0)
    func = lower([y], [inc.op])
    roles = [(r.role, r.key) for r in func.results]
    assert roles == [("fetch", "mul:0"), ("var", "w")]
    start = np.array(3.0, np.float32)
    fetched, new_w = evaluate(func, [start])
    assert fetched == 30.0 and new_w == 4.0  # y read before the update


def test_lowering_reports_an_unfed_placeholder():
    x = tf.placeholder(tf.float32, [2], name="x")
    with pytest.raises(errors.InvalidArgumentError, match="must feed.*'x'"):
        lower([x * 2.0])


def test_lowering_specializes_shapes_and_reports_inconsistent_feeds():
    a = tf.placeholder(tf.float32, [None, 3], name="a")
    b = tf.placeholder(tf.float32, [None, 3], name="b")
    total = a + b
    ok = lower([total], [], _feed_types(a=(tf.float32, (4, 3)), b=(tf.float32, (4, 3))))
    assert str(ok.results[0].value.type) == "f32[4,3]"
    with pytest.raises(errors.InvalidArgumentError, match="'add'"):
        lower([total], [], _feed_types(a=(tf.float32, (4, 3)), b=(tf.float32, (5, 3))))


VALID = """
func @f(%x: f32[2,3] {feed="x:0"}) {
  %0: f32[] = constant {dtype=f32, value=dense<f32[], [2.0]>}
  %1: f32[2,3] = mul %x, %0                loc("mul", "Mul", "prog.py:3")
  %2: f32[3] = reduce_sum %1 {axis=[0], keepdims=false}
  return %2 {fetch="Sum:0"}
}
"""


def test_parse_valid_text_and_evaluate():
    func = parse_func(VALID)
    verify(func)
    (out,) = evaluate(func, [np.ones((2, 3), np.float32)])
    np.testing.assert_array_equal(out, [4.0, 4.0, 4.0])


@pytest.mark.parametrize("mutation,message", [
    (("%1: f32[2,3] = mul %x, %0", "%1: f32[2,3] = mul %x, %2"), "undefined value"),
    (("%2: f32[3] = reduce_sum", "%2: f32[4] = reduce_sum"), "shape rule gives f32\\[3\\]"),
    (("%2: f32[3] = reduce_sum", "%2: i32[3] = reduce_sum"), "shape rule gives"),
    (("= mul %x, %0", "= frobnicate %x, %0"), "no op 'frobnicate'"),
    (("{axis=[0], keepdims=false}", "{axis=[0]}"), "bad attributes"),
])
def test_verifier_rejects_broken_ir(mutation, message):
    text = VALID.replace(*mutation)
    try:
        func = parse_func(text)
    except IRParseError as e:
        assert re_search(message, str(e))
        return
    with pytest.raises(VerificationError, match=message):
        verify(func)


def re_search(pattern, text):
    import re
    return re.search(pattern, text) is not None


def test_verifier_rejects_redefinition():
    from flowjit.ir.core import Instr
    func = parse_func(VALID)
    mul = func.body[1]
    func.body.insert(2, Instr("mul", mul.operands, {}, mul.results))  # defines %1 again
    with pytest.raises(VerificationError, match="not SSA"):
        verify(func)


def test_parser_reports_line_numbers():
    with pytest.raises(IRParseError, match="line 4"):
        parse_func(VALID.replace("mul %x, %0", "mul %x, %nope"))


def test_elided_dumps_say_they_cannot_be_parsed():
    c = tf.constant(np.arange(100, dtype=np.float32))
    x = tf.placeholder(tf.float32, [100], name="x")
    func = lower([x + c], [], _feed_types(x=(tf.float32, (100,))))
    text = print_func(func, elide_constants_over=16)
    assert "dense<f32[100], ...>" in text
    with pytest.raises(IRParseError, match="elided constant"):
        parse_func(text)


def test_special_float_values_round_trip():
    c = tf.constant([np.inf, -np.inf, np.nan, 1e-30, -0.0], tf.float32)
    func = lower([c * 1.0])
    again = parse_func(print_func(func))
    original = func.body[0].attrs["value"]
    parsed = again.body[0].attrs["value"]
    np.testing.assert_array_equal(original, parsed)
    assert parsed.dtype == np.float32


def test_string_element_types_print_and_parse_back():
    text = textwrap.dedent("""\
        func @f(%s: string[2] {feed="s:0"}) {
          %0: string[2] = identity %s
          return %0 {fetch="y:0"}
        }
        """)
    func = parse_func(text)
    assert func.params[0].value.type.dtype is tf.string
    assert print_func(func) == text
