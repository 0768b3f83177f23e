"""The PTX target: kernel schedules (codegen/schedule.py) lowered to NVIDIA GPU code.

The schedule and the per-element scalar emitters are the CPU's; what differs lives here: the
triple and data layout, the iteration (grid-stride loops over 64-bit global indices, blocks
and warps instead of a loop nest and cores), the calling convention (`ptx_kernel`, one
pointer parameter per buffer), and the math library: the emitters' calls of LLVM math intrinsics
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

from flowjit.codegen import kernels, simd
from flowjit.codegen.schedule import Capabilities, Schedule, schedule
from flowjit.codegen.target import run_default_pipeline
from flowjit.config import config
from flowjit.graph import registry
from flowjit.ir.core import Instr

TRIPLE = "nvptx64-nvidia-cuda"
TARGET = "ptx"  # the emitters' key in the op table
I32 = ir.IntType(32)
I64 = kernels.I64
BLOCK = 256  # threads per block of the one-dimensional kernels
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

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(vector_bits=32, parallel_units=BLOCK, shared_memory_bytes=48 << 10,
                            math="libdevice", calling_convention="ptx_kernel")

    def tiles(self, sched: Schedule) -> dict:
        return {"block": BLOCK}

    def schedule(self, instr: Instr) -> Optional[Schedule]:
        """The instruction's schedule if this target has an emitter for it, else None."""
        sched = schedule(instr, self)
        if sched is None or TARGET not in kernels.anchor(sched).op_def.emitters:
            return None
        return sched

    def supports(self, instr: Instr) -> bool:
        """Whether this target compiles `instr`: it has an emitter for the kernel, and the
        math the kernel calls exists on the GPU (libdevice present where needed)."""
        if self.schedule(instr) is None:
            return False
        try:
            _gpu_math(str(self.emit_kernel(instr)))
        except PTXUnsupportedError:
            return False
        return True

    def emit_kernel(self, instr: Instr, name: str = "kernel") -> ir.Module:
        """A module with the kernel `void name(ptr out..., ptr in...)` of `instr`."""
        sched = self.schedule(instr)
        if sched is None:
            raise PTXUnsupportedError(f"no GPU kernel for {instr.op} at {instr.describe()}")
        module = ir.Module(name=name)
        module.triple = TRIPLE
        module.data_layout = str(self.machine.target_data)
        n_buffers = len(sched.instr.results) + len(sched.params)
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [kernels.PTR] * n_buffers),
                         name)
        fn.calling_convention = "ptx_kernel"
        for arg in fn.args:
            arg.add_attribute("noalias")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        kernels.anchor(sched).op_def.emitters[TARGET](b, sched, fn.args)
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


# -- emitters (registered in the op table for the GPU) -----------------------------------------
def _sreg(b: ir.IRBuilder, register: str) -> ir.Value:
    """A PTX special register (thread/block index or size), widened to i64: indices past
    2^31 elements must not wrap."""
    name = f"llvm.nvvm.read.ptx.sreg.{register}"
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(I32, []), name)
    return b.zext(b.call(fn, []), I64)


def grid_stride_loop(b: ir.IRBuilder, count: int):
    """for (i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x *
    blockDim.x): any grid size covers any count."""
    first = b.add(b.mul(_sreg(b, "ctaid.x"), _sreg(b, "ntid.x")), _sreg(b, "tid.x"))
    step = b.mul(_sreg(b, "nctaid.x"), _sreg(b, "ntid.x"))
    return simd.for_range(b, first, ir.Constant(I64, count), step=step, name="g")


def _unflatten(b: ir.IRBuilder, index: ir.Value, shape) -> List[ir.Value]:
    """Row-major coordinates of a flat index."""
    coordinates = []
    for d in reversed(shape):
        extent = ir.Constant(I64, d)
        coordinates.append(b.urem(index, extent))
        index = b.udiv(index, extent)
    return coordinates[::-1]


def emit_elementwise(b: ir.IRBuilder, sched: Schedule, args) -> None:
    """Each thread computes the elements i, i + grid size, ... of the (collapsed) space."""
    region = kernels.Region(sched.params, sched.body)
    out_type = sched.instr.result.type
    space = list(sched.space)
    size = 1
    for d in space:
        size *= d
    strides = {p: sched.strides_of(p) for p in sched.params if sched.strides_of(p) is not None}
    with grid_stride_loop(b, size) as index:
        coordinates = _unflatten(b, index, space)
        env = region.evaluate(b, dict(zip(sched.params, args[1:])), coordinates, space,
                              strides=strides)
        kernels.store(b, env[region.body[-1].result], args[0], out_type.dtype,
                      kernels.offset(b, coordinates, sched.out_strides))


registry.register_emitter(TARGET, emit_elementwise, role=registry.ELEMENTWISE)


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
