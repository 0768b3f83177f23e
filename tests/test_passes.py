"""Each pass: IR text in, expected IR text out; and random graphs (hypothesis) give the same
values before and after every pass and the whole pipeline."""
import re
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowjit as tf
from flowjit.compiler import CompileOptions, optimize
from flowjit.interp import evaluate
from flowjit.ir.core import TensorType
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import verify
from flowjit.lower import lower
from flowjit.passes import canonicalize, const_fold, cse, dce, fusion
from flowjit.passes.manager import available_passes


def run_pass(pass_module, text):
    func = parse_func(textwrap.dedent(text))
    verify(func)
    out, changed = pass_module.run(func)
    verify(out)
    return print_func(out), changed


def expect(text):
    return textwrap.dedent(text).strip("\n") + "\n"


def test_const_fold_evaluates_small_constant_expressions():
    out, changed = run_pass(const_fold, """
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[] = constant {dtype=f32, value=dense<f32[], [2.0]>}
          %1: f32[] = constant {dtype=f32, value=dense<f32[], [3.0]>}
          %2: f32[] = add %0, %1
          %3: f32[3] = mul %x, %2
          return %3 {fetch="y:0"}
        }""")
    assert changed
    assert out == expect("""
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[] = constant {dtype=f32, value=dense<f32[], [2.0]>}
          %1: f32[] = constant {dtype=f32, value=dense<f32[], [3.0]>}
          %2: f32[] = constant {dtype=f32, value=dense<f32[], [5.0]>}
          %3: f32[3] = mul %x, %2
          return %3 {fetch="y:0"}
        }""")


def test_const_fold_respects_the_size_limit_and_folds_static_shape_queries():
    out, changed = run_pass(const_fold, """
        func @f(%x: f32[4,5] {feed="x:0"}) {
          %0: f32[] = constant {dtype=f32, value=dense<f32[], [0.0]>}
          %1: f32[1000,1000] = broadcast_scalar %0 {shape=[1000, 1000]}
          %2: i32[2] = shape_of %x {out_type=i32}
          return %1 {fetch="zeros:0"}, %2 {fetch="Shape:0"}
        }""")
    assert changed
    assert "broadcast_scalar" in out  # a million-element constant would bloat the program
    assert "%2: i32[2] = constant {dtype=i32, value=dense<i32[2], [4, 5]>}" in out


def test_const_fold_leaves_errors_to_the_run():
    out, changed = run_pass(const_fold, """
        func @f() {
          %0: i32[] = constant {dtype=i32, value=dense<i32[], [1]>}
          %1: i32[] = constant {dtype=i32, value=dense<i32[], [0]>}
          %2: i32[] = floordiv %0, %1
          return %2 {fetch="d:0"}
        }""")
    assert not changed and "floordiv" in out


def test_cse_merges_identical_pure_instructions_only():
    out, changed = run_pass(cse, """
        func @f(%x: f32[3] {feed="x:0"}, %c: i64[] {rng="r"}, %d: i64[] {rng="r2"}) {
          %0: f32[3] = exp %x
          %1: f32[3] = exp %x
          %2: f32[3] = add %0, %1
          %3: f32[2] = rng_uniform %c {dtype=f32, seed=1, seed2=2, shape=[2]}
          %4: f32[2] = rng_uniform %c {dtype=f32, seed=1, seed2=2, shape=[2]}
          return %2 {fetch="a:0"}, %3 {fetch="b:0"}, %4 {fetch="c:0"}
        }""")
    assert changed
    assert out.count("= exp") == 1 and "add %0, %0" in out
    assert out.count("rng_uniform") == 2


def test_dce_removes_unused_instructions():
    out, changed = run_pass(dce, """
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = exp %x
          %1: f32[3] = log %x
          %2: f32[3] = tanh %1
          return %0 {fetch="e:0"}
        }""")
    assert changed
    assert out == expect("""
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = exp %x
          return %0 {fetch="e:0"}
        }""")


CANONICALIZE_HEADER = """
    func @f(%x: f32[2,3] {feed="x:0"}, %v: f32[3] {feed="v:0"}) {
      %0: f32[] = constant {dtype=f32, value=dense<f32[], [1.0]>}
      %1: f32[] = constant {dtype=f32, value=dense<f32[], [0.0]>}
      %2: f32[] = constant {dtype=f32, value=dense<f32[], [2.0]>}
"""


@pytest.mark.parametrize("body,result,expected", [
    ("%3: f32[2,3] = mul %x, %0", "%3", "return %x"),                  # x * 1
    ("%3: f32[2,3] = add %1, %x", "%3", "return %x"),                  # 0 + x
    ("%3: f32[2,3] = div %x, %0", "%3", "return %x"),                  # x / 1
    ("%3: f32[2,3] = identity %x", "%3", "return %x"),
    ("%3: f32[2,3] = stop_gradient %x", "%3", "return %x"),
    ("%3: f32[2,3] = neg %x\n%4: f32[2,3] = neg %3", "%4", "return %x"),
    ("%3: f32[3,2] = transpose %x {perm=[1, 0]}\n"
     "%4: f32[2,3] = transpose %3 {perm=[1, 0]}", "%4", "return %x"),
    ("%3: f32[6] = reshape %x {shape=[6]}\n"
     "%4: f32[2,3] = reshape %3 {shape=[2, 3]}", "%4", "return %x"),
    ("%3: f32[2,3] = pow %x, %2", "%3", "= square %x"),
    ("%3: f32[6] = reshape %x {shape=[6]}\n"
     "%4: f32[3,2] = reshape %3 {shape=[3, 2]}", "%4", "= reshape %x {shape=[3, 2]}"),
    ("%3: f32[1,2,3] = expand_dims %x {axis=0}", "%3", "= reshape %x {shape=[1, 2, 3]}"),
    ("%3: f32[2,3] = broadcast_scalar %2 {shape=[2, 3]}\n"
     "%4: f32[2,3] = mul %x, %3", "%4", "= mul %x, %2"),
])
def test_canonicalize_rules(body, result, expected):
    text = CANONICALIZE_HEADER + textwrap.indent(body, "      ") + \
        f"\n      return {result} {{fetch=\"y:0\"}}\n    }}"
    out, changed = run_pass(canonicalize, text)
    assert changed
    assert expected in out


def test_canonicalize_keeps_an_identity_that_broadcasts():
    # v + zeros[2,3] grows v from [3] to [2,3]: not a no-op.
    out, changed = run_pass(canonicalize, CANONICALIZE_HEADER + """
          %3: f32[2,3] = broadcast_scalar %1 {shape=[2, 3]}
          %4: f32[2,3] = add %v, %3
          return %4 {fetch="y:0"}
        }""")
    assert "add %v, %3" in out


def test_fusion_of_an_elementwise_chain_a_reduction_and_a_matmul_epilogue():
    out, changed = run_pass(fusion, """
        func @f(%x: f32[4,8] {feed="x:0"}, %w: f32[8,3] {var="w"}, %b: f32[3] {var="b"}) {
          %0: f32[4,3] = matmul %x, %w {transpose_a=false, transpose_b=false}
          %1: f32[4,3] = add %0, %b
          %2: f32[4,3] = relu %1
          %3: f32[4,8] = exp %x
          %4: f32[4,8] = mul %3, %3
          %5: f32[4] = reduce_sum %4 {axis=[1], keepdims=false}
          return %2 {fetch="h:0"}, %5 {fetch="s:0"}
        }""")
    assert changed
    assert out == expect("""
        func @f(%x: f32[4,8] {feed="x:0"}, %w: f32[8,3] {var="w"}, %b: f32[3] {var="b"}) {
          %0: f32[4,3] = fusion %x, %w, %b {kind="contraction"} {
            ^(%p: f32[4,8], %p_1: f32[8,3], %p_2: f32[3]):
              %1: f32[4,3] = matmul %p, %p_1 {transpose_a=false, transpose_b=false}
              %2: f32[4,3] = add %1, %p_2
              %3: f32[4,3] = relu %2
              yield %3
          }
          %4: f32[4] = fusion %x {kind="reduce"} {
            ^(%p: f32[4,8]):
              %5: f32[4,8] = exp %p
              %6: f32[4,8] = mul %5, %5
              %7: f32[4] = reduce_sum %6 {axis=[1], keepdims=false}
              yield %7
          }
          return %0 {fetch="h:0"}, %4 {fetch="s:0"}
        }""")


def test_printed_value_numbers_are_unique_across_regions_and_the_function():
    """A region's values once repeated the function's numbers (%1 in a fusion, %1 after
    it), which read as the same value."""
    out, _ = run_pass(fusion, """
        func @f(%x: f32[4] {feed="x:0"}) {
          %0: f32[4] = exp %x
          %1: f32[4] = tanh %0
          %2: f32[] = reduce_sum %x {axis=[0], keepdims=false}
          %3: f32[4] = mul %1, %2
          return %3 {fetch="y:0"}
        }""")
    numbers = re.findall(r"%(\d+):", out)
    assert numbers and len(numbers) == len(set(numbers)), out
    assert print_func(parse_func(out)) == out


def test_fusion_does_not_duplicate_a_value_with_several_users():
    out, _ = run_pass(fusion, """
        func @f(%x: f32[4] {feed="x:0"}) {
          %0: f32[4] = exp %x
          %1: f32[4] = tanh %0
          %2: f32[4] = sigmoid %0
          return %1 {fetch="a:0"}, %2 {fetch="b:0"}
        }""")
    assert out.count("= exp") == 1 and "fusion" not in out


def test_fusion_splits_a_long_chain_into_groups_of_bounded_size():
    """Code generation is superlinear in the size of one kernel: a chain longer than
    MAX_GROUP becomes several fusions, each feeding the next."""
    x = tf.placeholder(tf.float32, [4], name="x")
    y = x
    for _ in range(2 * fusion.MAX_GROUP + 10):
        y = tf.sin(y)
    func = lower([y], [], {x: TensorType(tf.float32, (4,))})
    fused, changed = fusion.run(func)
    verify(fused)
    assert changed and len(fused.body) == 3
    assert all(len(i.region.body) <= fusion.MAX_GROUP for i in fused.body)
    data = np.linspace(-1, 1, 4, dtype=np.float32)
    np.testing.assert_allclose(evaluate(fused, [data])[0], evaluate(func, [data])[0])


# -- random graphs: every pass preserves values ------------------------------------------
UNARY = [tf.negative, tf.abs, tf.exp, tf.tanh, tf.sigmoid, tf.nn.relu, tf.square,
         tf.identity, tf.stop_gradient, lambda t: tf.negative(tf.negative(t))]
BINARY = [tf.add, tf.subtract, tf.multiply, tf.maximum, tf.minimum]
CONSTANTS = [0.0, 1.0, 2.0, -0.5]


@st.composite
def programs(draw):
    """A random straight-line TF program over a [3,4] and a [4] input, as a list of steps."""
    steps = []
    for _ in range(draw(st.integers(2, 10))):
        kind = draw(st.sampled_from(["unary", "binary", "const", "reduce", "reshape",
                                     "transpose", "matmul", "fill"]))
        steps.append((kind, draw(st.integers(0, 1000)), draw(st.integers(0, 1000))))
    return steps


def _build(steps):
    x = tf.placeholder(tf.float32, [3, 4], name="x")
    v = tf.placeholder(tf.float32, [4], name="v")
    pool = [x, v, x * 1.0, v + 0.0]
    for kind, a, b in steps:
        t = pool[a % len(pool)]
        u = pool[b % len(pool)]
        if kind == "unary":
            new = UNARY[b % len(UNARY)](t)
        elif kind == "binary":
            try:
                new = BINARY[b % len(BINARY)](t, u)
            except tf.errors.ShapeError:
                continue
        elif kind == "const":
            new = BINARY[a % len(BINARY)](t, CONSTANTS[b % len(CONSTANTS)])
        elif kind == "reduce":
            rank = t.shape.ndims
            axis = None if rank == 0 or b % 3 == 0 else b % rank
            new = tf.reduce_sum(t, axis=axis, keepdims=bool(a % 2)) if a % 3 else \
                tf.reduce_max(t, axis=axis)
        elif kind == "reshape":
            new = tf.reshape(t, [-1])
        elif kind == "transpose":
            new = tf.transpose(t) if t.shape.ndims == 2 else tf.negative(t)
        elif kind == "fill":
            new = t + tf.zeros(t.shape.as_list()) * CONSTANTS[b % len(CONSTANTS)]
        else:
            if t.shape.ndims != 2:
                continue
            new = tf.matmul(t, t, transpose_b=True)
        pool.append(new)
    return x, v, pool[4:] or [x + v]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2 ** 31 - 1))
def test_every_pass_and_the_pipeline_preserve_values(steps, seed):
    with tf.Graph().as_default():
        x, v, outputs = _build(steps)
        feed_types = {x: TensorType(tf.float32, (3, 4)), v: TensorType(tf.float32, (4,))}
        func = lower(outputs, [], feed_types)
        rng = np.random.default_rng(seed)
        inputs = [rng.standard_normal((3, 4)).astype(np.float32),
                  rng.standard_normal(4).astype(np.float32)]
        reference = evaluate(func, inputs)
        candidates = [(p.name, p.run(func)[0]) for p in available_passes()]
        candidates.append(("pipeline", optimize(func, CompileOptions(verify=True))))
        for name, transformed in candidates:
            verify(transformed)
            got = evaluate(transformed, inputs)
            for ref, out in zip(reference, got):
                np.testing.assert_allclose(out, ref, rtol=1e-6, atol=0,
                                           err_msg=f"pass {name} changed a value")


def test_fusion_copies_scalar_constants_into_the_region():
    func = parse_func(textwrap.dedent("""
        func @f(%x: f32[4] {feed="x:0"}) {
          %0: f32[] = constant {dtype=f32, value=dense<f32[], [2.0]>}
          %1: f32[4] = mul %x, %0
          %2: f32[4] = tanh %1
          return %2 {fetch="a:0"}
        }"""))
    fused, _ = fusion.run(func)
    cleaned, _ = dce.run(fused)
    verify(cleaned)
    text = print_func(cleaned)
    assert "fusion %x {" in text  # one operand: the constant travels inside
    assert text.count("= constant") == 1 and text.index("fusion") < text.index("constant")
    (out,) = evaluate(cleaned, [np.array([0.0, 1.0, -1.0, 3.0], np.float32)])
    np.testing.assert_allclose(out, np.tanh(2 * np.array([0, 1, -1, 3], np.float32)))


def test_canonicalize_turns_static_ones_like_into_a_constant():
    out, _ = run_pass(canonicalize, CANONICALIZE_HEADER + """
          %3: f32[2,3] = ones_like %x
          %4: f32[] = reduce_sum %x {axis=none, keepdims=false}
          %5: f32[] = zeros_like %4
          return %3 {fetch="a:0"}, %5 {fetch="b:0"}
        }""")
    assert "ones_like" not in out and "zeros_like" not in out
    assert "= broadcast_to" in out and "value=dense<f32[], [0.0]>" in out


def test_canonicalize_uses_a_scalar_for_a_splat_constant_operand():
    out, changed = run_pass(canonicalize, CANONICALIZE_HEADER + """
          %3: f32[2,3] = constant {dtype=f32, value=dense<f32[2,3], splat 2.0>}
          %4: f32[2,3] = mul %x, %3
          return %4 {fetch="y:0"}
        }""")
    func = parse_func(out)
    mul = [i for i in func.body if i.op == "mul"][0]
    assert changed and mul.operands[1].type.shape == ()


def test_autodiff_expands_a_gradients_request_in_place():
    from flowjit.passes import autodiff
    out, changed = run_pass(autodiff, """
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = mul %x, %x
          %1: f32[] = reduce_sum %0 {axis=none, keepdims=false}
          %2: f32[3] = gradients %1, %x {n_grad_ys=0, n_stops=0, n_xs=1, n_ys=1}
          return %1 {fetch="y:0"}, %2 {fetch="g:0"}
        }""")
    assert changed
    assert out == expect("""
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = mul %x, %x
          %1: f32[] = reduce_sum %0 {axis=none, keepdims=false}
          %2: f32[] = ones_like %1                                    loc("gradients/seed_grad")
          %3: f32[1] = reshape %2 {shape=[1]}                         loc("gradients/reduce_sum_grad")
          %4: f32[3] = broadcast_to %3 {shape=[3]}                    loc("gradients/reduce_sum_grad")
          %5: f32[3] = mul %4, %x                                     loc("gradients/mul_grad")
          %6: f32[3] = mul %4, %x                                     loc("gradients/mul_grad")
          %7: f32[3] = add %5, %6                                     loc("gradients/mul_grad")
          return %1 {fetch="y:0"}, %7 {fetch="g:0"}
        }""")
    (grad,) = evaluate(parse_func(out), [np.array([1.0, -2.0, 3.0], np.float32)])[1:]
    np.testing.assert_array_equal(grad, [2.0, -4.0, 6.0])  # d(sum x^2)/dx = 2x


def test_pass_timings_are_logged_when_asked(caplog, monkeypatch):
    import logging
    from flowjit.config import config
    monkeypatch.setattr(config, "log_passes", True)
    x = tf.placeholder(tf.float32, [3], name="x")
    with caplog.at_level(logging.INFO, logger="flowjit"):
        optimize(lower([x * 1.0 + 0.0], [], {x: TensorType(tf.float32, (3,))}),
                 CompileOptions())
    (message,) = [r.getMessage() for r in caplog.records if "passes of" in r.getMessage()]
    assert "canonicalize" in message and "(changed)" in message and " ms" in message


@pytest.fixture
def effect_op():
    """A test-only op with a side effect (like a print or a collective), unregistered after."""
    from flowjit.graph import registry
    op_def = registry.register_op("TestEffect", "test_effect",
                                  lambda inputs: [inputs[0]], lambda x: x, has_effects=True)
    yield op_def
    del registry.OP_DEFS["TestEffect"], registry._BY_MNEMONIC["test_effect"]


def test_dce_keeps_an_op_with_side_effects_whose_result_nobody_reads(effect_op):
    text = """
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = exp %x
          %1: f32[3] = test_effect %x
          %2: f32[3] = test_effect %x
          %3: f32[3] = log %x
          return %0 {fetch="e:0"}
        }"""
    out, changed = run_pass(dce, text)
    assert changed
    assert out == expect("""
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = exp %x
          %1: f32[3] = test_effect %x
          %2: f32[3] = test_effect %x
          return %0 {fetch="e:0"}
        }""")
    out, changed = run_pass(cse, text)  # two effects are two effects, never merged
    assert out.count("test_effect") == 2


def test_the_pass_manager_catches_a_pass_that_changes_the_ir_but_says_it_did_not():
    from flowjit.passes.manager import Pass, PassManager

    def dishonest(func):
        changed_func, changed = dce.run(func)
        return changed_func, False

    func = parse_func(textwrap.dedent("""
        func @f(%x: f32[3] {feed="x:0"}) {
          %0: f32[3] = exp %x
          %1: f32[3] = log %x
          return %0 {fetch="e:0"}
        }"""))
    with pytest.raises(AssertionError, match="'dishonest' reported no change"):
        PassManager([Pass("dishonest", dishonest)], verify=True).run(func)
    PassManager([Pass("dce", dce.run)], verify=True).run(func)  # an honest pass passes
