"""The PTX target: the same kernel bodies as the CPU, one GPU thread per output element.

What differs from the CPU lives here: the triple and data layout, the iteration (the thread's
global index instead of a loop nest), the calling convention (`ptx_kernel`, one pointer
parameter per buffer), and which math may be used (no libm: an op whose emitter would call
the C library is not compiled for the GPU). The scalar emitters and `Region.evaluate` are
shared, so an elementwise fusion compiles to PTX exactly as it does for the CPU. Launching
(pycuda) is the GPU backend issue's; this module stops at PTX text, which `ptxas` checks.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from typing import List, Tuple

import llvmlite.binding as llvm
from llvmlite import ir

from flowjit.codegen import kernels
from flowjit.ir.core import Instr

TRIPLE = "nvptx64-nvidia-cuda"
I32 = ir.IntType(32)
LIBM_OPS = ("expm1", "log1p", "softplus", "elu")  # their emitters call the C math library
# llvm.sin / llvm.cos: NVPTX cannot select them (without libdevice), and LLVM then aborts the
# whole process ("Cannot select: fsin"), e.g. flowjit-dump of any program using tf.sin.
NO_NVPTX_LOWERING = ("sin", "cos")


class PTXTarget:
    name = "ptx"

    def __init__(self, arch: str = "sm_90", ptx_version: str = "+ptx80") -> None:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        self.arch = arch
        self.machine = llvm.Target.from_triple(TRIPLE).create_target_machine(
            cpu=arch, features=ptx_version, opt=3)

    def supports(self, instr: Instr) -> bool:
        if kernels.kernel_kind(instr) != "elementwise":
            return False
        body = instr.region.body if instr.region is not None else [instr]
        for sub in body:
            if sub.op in LIBM_OPS or sub.op in NO_NVPTX_LOWERING:
                return False
            if sub.op == "tanh" and sub.result.type.dtype.name == "float64":
                return False
        return True

    def emit_elementwise(self, instr: Instr, name: str = "kernel") -> ir.Module:
        """`void name(ptr out, ptr in0, ...)`: thread i computes output element i."""
        module = ir.Module(name=name)
        module.triple = TRIPLE
        module.data_layout = str(self.machine.target_data)
        region = kernels.Region(instr)
        out_type = instr.result.type
        fn = ir.Function(module, ir.FunctionType(
            ir.VoidType(), [kernels.PTR] * (1 + len(region.params))), name)
        fn.calling_convention = "ptx_kernel"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        index = b.zext(b.add(b.mul(_sreg(b, "ctaid.x"), _sreg(b, "ntid.x")),
                             _sreg(b, "tid.x")), kernels.I64)
        size = out_type.num_elements
        with b.if_then(b.icmp_signed("<", index, ir.Constant(kernels.I64, size))):
            coordinates = _unflatten(b, index, out_type.shape)
            env = region.evaluate(b, dict(zip(region.params, fn.args[1:])), coordinates,
                                  out_type.shape)
            kernels.store(b, env[region.body[-1].result], fn.args[0], out_type.dtype, index)
        b.ret_void()
        return module

    def to_ptx(self, module: ir.Module) -> str:
        parsed = llvm.parse_assembly(str(module))
        parsed.verify()
        options = llvm.create_pipeline_tuning_options(speed_level=3)
        builder = llvm.create_pass_builder(self.machine, options)
        builder.getModulePassManager().run(parsed, builder)
        return self.machine.emit_assembly(parsed)

    def assemble(self, ptx: str) -> Tuple[bool, str]:
        """Runs `ptxas` on the PTX (when the CUDA toolkit is installed): (ok, messages)."""
        ptxas = shutil.which("ptxas")
        if ptxas is None:
            raise FileNotFoundError("ptxas is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            source = f"{tmp}/kernel.ptx"
            with open(source, "w") as f:
                f.write(ptx)
            done = subprocess.run([ptxas, f"-arch={self.arch}", "-o", f"{tmp}/kernel.cubin",
                                   source], capture_output=True, text=True)
        return done.returncode == 0, done.stdout + done.stderr


def _sreg(b: ir.IRBuilder, register: str) -> ir.Value:
    """A PTX special register (thread/block index or size) as i32."""
    name = f"llvm.nvvm.read.ptx.sreg.{register}"
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(I32, []), name)
    return b.call(fn, [])


def _unflatten(b: ir.IRBuilder, index: ir.Value, shape) -> List[ir.Value]:
    """Row-major coordinates of a flat index."""
    coordinates = []
    for d in reversed(shape):
        extent = ir.Constant(kernels.I64, d)
        coordinates.append(b.urem(index, extent))
        index = b.udiv(index, extent)
    return coordinates[::-1]
