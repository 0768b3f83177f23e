"""The GPU seam: a fused elementwise kernel compiles to PTX through llvmlite's NVPTX backend
from the same kernel body as the CPU, and ptxas accepts it. (Launching on a GPU is the GPU
backend's issue: no test here needs a GPU.)"""
import os
import shutil
import subprocess
import sys

import pytest

import flowjit as tf
from flowjit.codegen import ptx
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
    ptx = target.to_ptx(target.emit_kernel(fusion))
    assert ".visible .entry kernel(" in ptx and ".target sm_90" in ptx
    assert "%tid.x" in ptx and "ld.global" in ptx and "st.global" in ptx
    assert "call" not in ptx  # no libm: exp/tanh are inline arithmetic


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="the CUDA toolkit (ptxas) is absent")
def test_ptxas_assembles_the_generated_ptx():
    target = PTXTarget()
    ok, messages = target.assemble(target.to_ptx(target.emit_kernel(_fused_chain_instr())))
    assert ok, messages


def _last_kernel(fn, dtype=tf.float32):
    x = tf.placeholder(dtype, [100], name="x")
    func = optimize(lower([fn(x) * 2.0 + 1.0], [], {x: TensorType(dtype, (100,))}),
                    CompileOptions())
    return func.body[-1]


GPU_MATH = {"pow": lambda x: tf.pow(x, 2.5), "sin": tf.sin, "cos": tf.cos, "exp": tf.exp,
            "log": tf.log, "expm1": tf.expm1, "log1p": tf.log1p, "tanh": tf.tanh,
            "softplus": tf.nn.softplus, "elu": tf.nn.elu}


@pytest.mark.skipif(ptx.libdevice_path() is None or shutil.which("ptxas") is None,
                    reason="the CUDA toolkit (libdevice, ptxas) is absent")
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("op", sorted(GPU_MATH))
def test_math_the_gpu_lacks_comes_from_libdevice_and_assembles(op, dtype):
    target = PTXTarget()
    kernel = _last_kernel(GPU_MATH[op], dtype)
    assert target.supports(kernel)
    text = target.to_ptx(target.emit_kernel(kernel))
    assert len(text.splitlines()) < 1000  # only the library functions used are kept
    ok, messages = target.assemble(text)
    assert ok, messages


def test_without_libdevice_math_kernels_are_refused_with_an_error_not_an_abort(monkeypatch):
    monkeypatch.setattr(ptx, "libdevice_path", lambda: None)
    target = PTXTarget()
    for op in ("pow", "sin", "expm1"):
        kernel = _last_kernel(GPU_MATH[op])
        assert not target.supports(kernel)
        with pytest.raises(ptx.PTXUnsupportedError, match="libdevice"):
            target.to_ptx(target.emit_kernel(kernel))
    assert target.supports(_last_kernel(tf.sigmoid))  # inline arithmetic needs no library


def test_dumping_gpu_math_never_kills_or_changes_the_run(tmp_path):
    """NVPTX aborts the process on an intrinsic it cannot select (tf.pow under
    FLOWJIT_DUMP_DIR exited with 134); dumping must leave the run as it is."""
    program = ("import numpy as np, flowjit as tf\n"
               "x = tf.placeholder(tf.float32, [4])\n"
               "y = tf.pow(x, 2.5) + tf.sin(x) + tf.expm1(x)\n"
               "with tf.Session() as s:\n"
               "    print(s.run(y, {x: np.arange(4, dtype=np.float32)}).tolist())\n")
    outputs = []
    for dump in (None, str(tmp_path / "dumps")):
        env = dict(os.environ)
        env.pop("FLOWJIT_DUMP_DIR", None)
        if dump:
            env["FLOWJIT_DUMP_DIR"] = dump
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    (dumped,) = (tmp_path / "dumps").glob("*/ptx.ptx")
    assert ".entry" in dumped.read_text() or "not compiled to PTX" in dumped.read_text()
