"""Deep graphs: every stage walks them without recursion, and compiles them in linear time.

The chains here are 5,000 steps deep, five times Python's default recursion limit, so any walk
that recurses on the depth of the graph (a tensor's inputs, an instruction's operands) fails
with RecursionError. They run on the Session's default backend (FLOWJIT_BACKEND).
"""
import numpy as np
from llvmlite import ir

import flowjit as tf
from flowjit.codegen import kernels
from flowjit.codegen.segment import MAX_SEGMENT_KERNELS, KernelCall, emit_segment
from flowjit.compiler import CompileOptions, optimize
from flowjit.graph.serialize import graph_from_text, graph_to_text
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import TensorType
from flowjit.ir.dot import func_to_nx, to_dot
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import verify
from flowjit.lower import lower
from flowjit.passes.manager import PassManager, default_pipeline

DEPTH = 5000


def residual_chain(x, depth: int = DEPTH):
    """y = f(y) + y with f = tanh, `depth` times: each y has two consumers (f and the add).
    y grows by about 1 a step; dy/dx is a product of 1 + f'(y) over the steps."""
    y = x
    for _ in range(depth):
        y = tf.tanh(y) + y
    return y


def residual_chain_reference(x: np.ndarray, depth: int = DEPTH):
    """The chain's value and dy/dx in float64, by the chain rule step by step."""
    y, grad = x.astype(np.float64), np.ones(x.shape)
    for _ in range(depth):
        f = np.tanh(y)
        y, grad = f + y, grad * (2 - f * f)
    return y, grad


def test_gradients_of_a_deep_residual_chain():
    x = tf.placeholder(tf.float32, [3], name="x")
    y = residual_chain(x)
    (dy_dx,) = tf.gradients(y, x)
    feed = np.array([-0.5, 0.25, 1.0], np.float32)
    with tf.Session() as sess:
        value, grad = sess.run([y, dy_dx], {x: feed})
    expected_value, expected_grad = residual_chain_reference(feed)
    np.testing.assert_allclose(value, expected_value, rtol=1e-3)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-3)


def test_a_deep_chain_passes_through_every_stage():
    """Lowering, every pass, the verifier, the printer and parser, the interpreter, DOT and
    the graph file format, on a deep forward and backward chain."""
    x = tf.placeholder(tf.float32, [3], name="x")
    y = residual_chain(x)
    (dy_dx,) = tf.gradients(tf.reduce_sum(y), x)
    func = lower([y, dy_dx], feed_types={x: TensorType.from_spec(x.spec)})
    verify(func)
    optimized = PassManager(default_pipeline()).run(func)
    verify(optimized)
    text = print_func(optimized)  # fusions with thousands of operands, in regions
    assert print_func(parse_func(text)) == text
    to_dot(func_to_nx(optimized))
    feed = np.array([-0.5, 0.25, 1.0], np.float32)
    value, grad = evaluate(optimized, [feed])
    expected_value, expected_grad = residual_chain_reference(feed)
    np.testing.assert_allclose(value, expected_value, rtol=1e-3)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-3)

    graph = tf.get_default_graph()
    loaded = graph_from_text(graph_to_text(graph))
    assert len(loaded.get_operations()) == len(graph.get_operations())


def test_canonicalize_sees_through_a_deep_chain_of_scalar_broadcasts():
    """x * fill([], fill([], ... 2.0)): the splat value is found by a loop, not recursion."""
    x = tf.placeholder(tf.float32, [], name="x")
    c = tf.constant(2.0)
    for _ in range(DEPTH):
        c = tf.fill([], c)
    with tf.Session() as sess:
        assert sess.run(x * c, {x: 3.0}) == 6.0


# -- compile time: linear in the number of kernels ---------------------------------------------
def _compiled_chain(depth: int, distinct: bool = False):
    """A chain of `depth` kernels, compiled; each step's constant differs if `distinct`."""
    from flowjit.runtime import cpu
    x = tf.placeholder(tf.float32, [64], name="x")
    y = x
    for i in range(depth):
        y = tf.sin(y) * (0.5 + i if distinct else 0.5) + y
    func = optimize(lower([y], feed_types={x: TensorType.from_spec(x.spec)}),
                    CompileOptions(backend="llvm"))
    return cpu.build(func)


def test_a_deep_chain_is_split_into_segments_of_bounded_size():
    run, stats = _compiled_chain(300)
    assert stats["native"] == 300
    assert stats["largest_segment"] <= MAX_SEGMENT_KERNELS
    assert stats["segments"] >= 300 // MAX_SEGMENT_KERNELS
    feed = np.linspace(-1, 1, 64, dtype=np.float32)
    expected = feed.astype(np.float64)
    for _ in range(300):
        expected = np.sin(expected) * 0.5 + expected
    np.testing.assert_allclose(run([feed])[0], expected, rtol=1e-4)


def test_kernels_that_compute_the_same_function_are_emitted_once_per_segment():
    _, same = _compiled_chain(100)
    assert same["kernels_emitted"] == same["segments"]  # one kernel in each segment
    _, distinct = _compiled_chain(12, distinct=True)
    assert distinct["kernels_emitted"] == 12


def test_a_segment_function_does_not_grow_with_its_calls():
    """The calls are data: LLVM's work on the segment function is the same for 2 or 2000."""
    def segment_size(n_calls: int) -> int:
        module = ir.Module()
        ir.Function(module, kernels.KERNEL_TYPE, "k0")
        emit_segment(module, "segment", [KernelCall("k0", [1, 2, 0], 64, None)] * n_calls)
        return sum(len(block.instructions) for block in module.get_global("segment").blocks)

    assert segment_size(2000) == segment_size(2)


def test_a_segment_without_shared_calls_does_not_need_the_worker_pool():
    module = ir.Module()
    ir.Function(module, kernels.KERNEL_TYPE, "k0")
    emit_segment(module, "segment", [KernelCall("k0", [1, 2, 0], 64, None)] * 3)
    assert "flowjit_parallel_for" not in str(module)
    emit_segment(module, "shared", [KernelCall("k0", [1, 2, 0], 1 << 20, 1 << 16)])
    assert "flowjit_parallel_for" in str(module)
