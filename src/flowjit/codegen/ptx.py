"""The PTX target: kernel schedules (codegen/schedule.py) lowered to NVIDIA GPU code.

The schedule and the per-element scalar emitters are the CPU's; what differs lives here and
in the GPU emitters: the triple and data layout, the iteration (blocks and warps instead of a
loop nest and cores), the calling convention (`ptx_kernel`, one pointer parameter per buffer:
the outputs, then the region's parameters), and the math library. The emitters, registered
in the op table for the target "ptx", one per kernel kind:
  elementwise, copy,  grid-stride loops, a thread per element, over 64-bit indices
  gather, concat      (ptx_kernels.py);
  reduce              a block per output (warp shuffles, then the warps' values through
                      shared memory) when the innermost axis is reduced, else a block per 32
                      consecutive outputs whose warps split the reduced elements; fused
                      prologues evaluated per element (ptx_kernels.py);
  rowwise             softmax, log_softmax and the cross-entropies, a block per row, the
                      row's max and sum block reductions (ptx_kernels.py);
  contraction         a 64 x 64 output tile per block through shared memory, K tiles of 16,
                      a 4 x 4 register tile per thread, then the epilogue in registers
                      (ptx_gemm.py); conv2d (NHWC) is the same GEMM with its A tiles
                      gathered from the input's patches (an implicit GEMM).
The target decides the geometry in `tiles` (printed with the schedule, `flowjit-dump
--stages kernels`): threads per block, blocks, static shared memory, the kind's own tiles;
`launch(instr)` returns it as a `gpu.Launch` for the runtime. Any grid computes a whole
kernel: blocks stride over their units of work (elements, outputs, rows, tiles).

Math: the emitters' calls of LLVM math intrinsics that NVPTX cannot select (pow, sin, cos,
exp, log) and of C's libm (expm1, log1p, tanh) become calls of CUDA's libdevice
(`__nv_powf`, ...), whose bitcode is linked in and internalized. A kernel that would still
call something the GPU lacks is refused with an error (NVPTX would abort the whole process:
"Cannot select"). Launching (pycuda) is the GPU backend issue's; this module stops at PTX
text, which `ptxas` checks (and tests/gpu_emulator.py runs on the CPU).
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from typing import Optional, Tuple

import llvmlite.binding as llvm
from llvmlite import ir

from flowjit.codegen import gpu, kernels, ptx_gemm, ptx_kernels
from flowjit.codegen.schedule import (CONTRACTION, REDUCE, ROWWISE, Capabilities, Schedule,
                                      schedule)
from flowjit.codegen.target import run_default_pipeline
from flowjit.config import config
from flowjit.graph import registry
from flowjit.ir.core import Instr

TRIPLE = "nvptx64-nvidia-cuda"
TARGET = "ptx"  # the emitters' key in the op table
BLOCK = 256  # threads per block, at most
# Blocks a grid-stride kernel launches, at most: 4 waves of 256-thread blocks on a 132-SM
# GPU (8 resident per SM); more only adds blocks that find no work.
GRID_LIMIT = 4096
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
        """The launch geometry of a schedule here (threads per `block`, blocks in the
        `grid`, static `shared_bytes`), and a kind's own tiles: a reduction's
        `outputs_per_block` (ptx_kernels.emit_reduce), a contraction's output, K and
        register tiles (ptx_gemm.py). `launch` reads the geometry back."""
        space = list(sched.space)
        if sched.kind == CONTRACTION:
            m, n, _k = space
            tiles = ptx_gemm.launch_tiles(sched.instr.result.type.dtype.np_dtype.itemsize)
            tiles["grid"] = _grid(-(-m // tiles["bm"]) * -(-n // tiles["bn"]))
            return tiles
        if sched.kind == REDUCE:
            accumulator = 8 if sched.facts["accumulator"] == "f64" else \
                sched.instr.result.type.dtype.np_dtype.itemsize
            kept = [d for i, d in enumerate(space) if i not in sched.reduce]
            outputs = _size(kept)
            count = _size(space) // outputs if outputs else 0  # reduced elements per output
            if not space or len(space) - 1 in sched.reduce:  # a block per output
                return {"block": _threads(count),
                        "outputs_per_block": 1, "grid": _grid(outputs),
                        "shared_bytes": (gpu.WARP + 1) * accumulator}
            threads = _threads(count)  # a warp per 32 reduced elements, up to BLOCK
            return {"block": threads, "outputs_per_block": gpu.WARP,
                    "grid": _grid(-(-outputs // gpu.WARP)),
                    "shared_bytes": threads * accumulator}
        if sched.kind == ROWWISE:
            rows, n = space
            return {"block": _threads(n), "grid": _grid(rows), "shared_bytes": (gpu.WARP + 1)
                    * sched.instr.operands[0].type.dtype.np_dtype.itemsize}
        elements = sched.instr.result.type.num_elements  # a thread per element
        return {"block": BLOCK, "grid": _grid(-(-elements // BLOCK))}

    def launch(self, instr: Instr) -> gpu.Launch:
        """How the kernel of `instr` is launched (from its schedule's tiles)."""
        sched = self.schedule(instr)
        if sched is None:
            raise PTXUnsupportedError(f"no GPU kernel for {instr.op} at {instr.describe()}")
        return gpu.Launch(sched.tiles["grid"], sched.tiles["block"],
                          sched.tiles.get("shared_bytes", 0))

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
        if gpu.shared_bytes(module) != sched.tiles.get("shared_bytes", 0):
            raise AssertionError(f"{instr.op}: the kernel declares {gpu.shared_bytes(module)} "
                                 f"bytes of shared memory, its tiles {sched.tiles}")
        return module

    def to_ptx(self, *modules: ir.Module) -> str:
        """PTX text of the modules (kernels of distinct names: one PTX module loads them
        all); raises PTXUnsupportedError (never aborts) if one calls math the GPU lacks."""
        parsed, needs_libdevice = None, False
        for module in modules:  # (linking renames clashing internal globals)
            text, needs = _gpu_math(str(module))
            one = llvm.parse_assembly(text)
            one.verify()
            parsed = one if parsed is None else parsed
            if one is not parsed:
                parsed.link_in(one)
            needs_libdevice = needs_libdevice or needs
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


# -- the emitters (ptx_kernels.py, ptx_gemm.py), in the op table for the GPU -------------------
for _role, _emitter in {registry.ELEMENTWISE: ptx_kernels.emit_elementwise,
                        registry.REDUCTION: ptx_kernels.emit_reduce,
                        registry.CONTRACTION: ptx_gemm.emit_contraction,
                        registry.ROWWISE: ptx_kernels.emit_rowwise,
                        registry.LAYOUT: ptx_kernels.emit_copy,
                        registry.GATHER: ptx_kernels.emit_gather,
                        registry.CONCAT: ptx_kernels.emit_concat}.items():
    registry.register_emitter(TARGET, _emitter, role=_role)
registry.register_emitter(TARGET, ptx_gemm.emit_convolution, op="Conv2D")


def _size(shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


def _grid(units: int) -> int:
    """Blocks for `units` blocks' worth of work (at least one: a launch needs one)."""
    return max(1, min(units, GRID_LIMIT))


def _threads(count: int) -> int:
    """Threads per block for `count` elements of a block's work: whole warps, at most
    BLOCK."""
    return min(BLOCK, max(gpu.WARP, -(-count // gpu.WARP) * gpu.WARP))


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
