"""The PTX target: the same kernel bodies as the CPU, one GPU thread per output element.

What differs from the CPU lives here: the triple and data layout, the iteration (the thread's
global index instead of a loop nest), the calling convention (`ptx_kernel`, one pointer
parameter per buffer), and the math library: the emitters' calls of LLVM math intrinsics
that NVPTX cannot select (pow, sin, cos, exp, log) and of C's libm (expm1, log1p, tanh) become
calls of CUDA's libdevice (`__nv_powf`, ...), whose bitcode is linked in and internalized. A
kernel that would still call something the GPU lacks is refused with an error (NVPTX would
abort the whole process: "Cannot select"). The scalar emitters and `Region.evaluate` are
shared, so an elementwise fusion compiles to PTX exactly as it does for the CPU. Launching
(pycuda) is the GPU backend issue's; this module stops at PTX text, which `ptxas` checks.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from typing import List, Optional, Tuple

import llvmlite.binding as llvm
from llvmlite import ir

from flowjit.codegen import kernels
from flowjit.codegen.target import run_default_pipeline
from flowjit.config import config
from flowjit.ir.core import Instr

TRIPLE = "nvptx64-nvidia-cuda"
I32 = ir.IntType(32)
# What the emitters call -> libdevice's function (float32 names end in 'f').
_LIBDEVICE = {f"llvm.{op}.{t}": f"__nv_{op}{'f' if t == 'f32' else ''}"
              for op in ("pow", "sin", "cos", "exp", "log") for t in ("f32", "f64")}
_LIBDEVICE.update({f"{op}{s}": f"__nv_{op}{s}" for op in ("expm1", "log1p", "tanh")
                   for s in ("", "f")})
# LLVM math intrinsics the NVPTX backend cannot select (it aborts the process on them);
# every other `llvm.*` intrinsic the emitters or the optimizer use, it selects.
_UNSELECTABLE = tuple(f"llvm.{op}." for op in ("pow", "powi", "sin", "cos", "tan", "exp",
                                                "exp10", "log", "log10", "sincos"))


def _unavailable(name: str) -> bool:
    """Whether a called function is neither an intrinsic NVPTX selects nor defined."""
    return not name.startswith("llvm.") or name.startswith(_UNSELECTABLE)


class PTXUnsupportedError(Exception):
    """A kernel calls something the GPU target cannot compile (and NVPTX would abort on)."""


@functools.lru_cache(maxsize=1)
def libdevice_path() -> Optional[str]:
    """CUDA's libdevice bitcode: under CUDA_HOME/CUDA_PATH, next to ptxas, or in
    /usr/local/cuda; None without a CUDA toolkit."""
    homes = [config.cuda_home, "/usr/local/cuda"]
    ptxas = shutil.which("ptxas")
    if ptxas:
        homes.append(os.path.dirname(os.path.dirname(os.path.realpath(ptxas))))
    for home in filter(None, homes):
        path = os.path.join(home, "nvvm", "libdevice", "libdevice.10.bc")
        if os.path.isfile(path):
            return path
    return None


class PTXTarget:
    name = "ptx"

    def __init__(self, arch: str = "sm_90", ptx_version: str = "+ptx80") -> None:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        self.arch = arch
        self.machine = llvm.Target.from_triple(TRIPLE).create_target_machine(
            cpu=arch, features=ptx_version, opt=3)

    def supports(self, instr: Instr) -> bool:
        """Whether this target compiles `instr`: an elementwise kernel whose math the GPU
        has (libdevice present where the emitters need it)."""
        if kernels.kernel_kind(instr) != "elementwise":
            return False
        try:
            _gpu_math(str(self.emit_elementwise(instr)))
        except PTXUnsupportedError:
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
        """PTX text of `module`; raises PTXUnsupportedError (never aborts) if it calls math
        the GPU lacks."""
        text, needs_libdevice = _gpu_math(str(module))
        parsed = llvm.parse_assembly(text)
        parsed.verify()
        if needs_libdevice:
            kernel_names = {f.name for f in parsed.functions if not f.is_declaration}
            try:
                with open(libdevice_path(), "rb") as f:
                    library = llvm.parse_bitcode(f.read())
                library.triple, library.data_layout = parsed.triple, parsed.data_layout
                parsed.link_in(library)
            except (OSError, RuntimeError) as e:  # unreadable, or from a newer LLVM
                raise PTXUnsupportedError(f"cannot link libdevice ({libdevice_path()}): "
                                          f"{e}") from None
            for fn in parsed.functions:  # internal: unused library code is dropped
                if not fn.is_declaration and fn.name not in kernel_names:
                    fn.linkage = "internal"
        run_default_pipeline(self.machine, llvm.create_pipeline_tuning_options(speed_level=3),
                             parsed)
        _check_selectable(parsed)
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


def _gpu_math(text: str) -> Tuple[str, bool]:
    """The LLVM IR text with math calls renamed to libdevice's, and whether it needs
    libdevice; PTXUnsupportedError for a call nothing on the GPU provides."""
    called = set(re.findall(r'^declare [^@]*@"?([\w.$]+)"?\(', text, flags=re.MULTILINE))
    renamed = {name: _LIBDEVICE[name] for name in called if name in _LIBDEVICE}
    missing = sorted(name for name in called - set(renamed) if _unavailable(name))
    if missing:
        raise PTXUnsupportedError(f"no GPU implementation of {', '.join(missing)}")
    if renamed and libdevice_path() is None:
        raise PTXUnsupportedError(f"{', '.join(sorted(renamed))} need CUDA's libdevice "
                                  f"(libdevice.10.bc), and no CUDA toolkit was found (set "
                                  f"CUDA_HOME)")
    for name, replacement in renamed.items():
        text = re.sub(rf'@"?{re.escape(name)}"?\(', f"@{replacement}(", text)
    return text, bool(renamed)


def _check_selectable(module: llvm.ModuleRef) -> None:
    """After optimization, every function still declared must be one NVPTX selects."""
    missing = sorted(f.name for f in module.functions
                     if f.is_declaration and _unavailable(f.name))
    if missing:
        raise PTXUnsupportedError(f"no GPU implementation of {', '.join(missing)}")
