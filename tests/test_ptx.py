"""The GPU seam: a fused elementwise kernel compiles to PTX through llvmlite's NVPTX backend
from the same kernel body as the CPU, and ptxas accepts it. (Launching on a GPU is the GPU
backend's issue: no test here needs a GPU.)"""
import shutil

import pytest

import flowjit as tf
from flowjit.codegen.ptx import PTXTarget
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.core import TensorType
from flowjit.lower import lower


def _fused_chain_instr():
    x = tf.placeholder(tf.float32, [1000, 33], name="x")
    y = tf.nn.relu(1.5 * x + 0.25) * tf.sigmoid(x) - 0.5 * tf.tanh(x)
    func = optimize(lower([y], [], {x: TensorType(tf.float32, (1000, 33))}), CompileOptions())
    (fusion,) = [i for i in func.body if i.op == "fusion"]
    return fusion


def test_a_fused_kernel_becomes_ptx():
    target = PTXTarget()
    fusion = _fused_chain_instr()
    assert target.supports(fusion)
    ptx = target.to_ptx(target.emit_elementwise(fusion))
    assert ".visible .entry kernel(" in ptx and ".target sm_90" in ptx
    assert "%tid.x" in ptx and "ld.global" in ptx and "st.global" in ptx
    assert "call" not in ptx  # no libm: exp/tanh are inline arithmetic


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="the CUDA toolkit (ptxas) is absent")
def test_ptxas_assembles_the_generated_ptx():
    target = PTXTarget()
    ok, messages = target.assemble(target.to_ptx(target.emit_elementwise(_fused_chain_instr())))
    assert ok, messages


def test_ops_that_need_libm_are_not_offered_to_the_gpu():
    x = tf.placeholder(tf.float32, [8], name="x")
    func = optimize(lower([tf.expm1(x)], [], {x: TensorType(tf.float32, (8,))}),
                    CompileOptions())
    assert not PTXTarget().supports(func.body[-1])


@pytest.mark.parametrize("op", [tf.sin, tf.cos])
def test_ops_nvptx_cannot_select_are_not_offered_to_the_gpu(op):
    """NVPTX has no fsin/fcos: compiling them would abort the process (a dump of any program
    with tf.sin did)."""
    x = tf.placeholder(tf.float32, [8], name="x")
    func = optimize(lower([op(x)], [], {x: TensorType(tf.float32, (8,))}), CompileOptions())
    assert not PTXTarget().supports(func.body[-1])
