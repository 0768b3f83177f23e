"""Runs a PTX target's kernel (its LLVM IR, before NVPTX) on the CPU, one OS thread per GPU
thread, so that tests check the GPU kernels' results against numpy without a GPU.

The kernel's LLVM IR is compiled for the host with the GPU's intrinsics bound to Python:
the special registers (tid, ntid, ctaid, nctaid) to each thread's own values, `bar.sync`
to a barrier of the block's threads, and warp shuffles to an exchange through a barrier of
the warp's 32 threads. Shared memory (addrspace(3) globals) becomes ordinary globals; blocks
run one after another, so they do not share them. Slow (a barrier is a Python call): for
small shapes, and any grid size (the kernels' loops over blocks' work are grid-strided).
"""
from __future__ import annotations

import ctypes
import re
import threading
from typing import List, Sequence

import llvmlite.binding as llvm
import numpy as np

TIMEOUT = 30.0  # seconds a barrier waits before the run is declared hung
_SREGS = ("tid.x", "ntid.x", "ctaid.x", "nctaid.x")
_SHUFFLES = {"f32": ctypes.c_float, "i32": ctypes.c_int32}


class _Block:
    """One block's threads: their barrier and their warps' shuffle exchanges."""

    def __init__(self, threads: int) -> None:
        self.barrier = threading.Barrier(threads, timeout=TIMEOUT)
        warps = threads // 32
        self.warp_barriers = [threading.Barrier(32, timeout=TIMEOUT) for _ in range(warps)]
        self.exchange = [[0] * 32 for _ in range(warps)]


class Emulator:
    """`Emulator(llvm_ir_text)(launch_block, grid, buffers)` runs the kernel `kernel`."""

    def __init__(self, text: str, name: str = "kernel") -> None:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.local = threading.local()
        self.errors: List[BaseException] = []
        self._callbacks = []
        text = text.replace("addrspace(3)", "").replace("ptx_kernel", "")
        text = re.sub(r'^target (triple|datalayout) = .*$', "", text, flags=re.MULTILINE)
        for register in _SREGS:
            text = self._bind(text, f"llvm.nvvm.read.ptx.sreg.{register}",
                              ctypes.CFUNCTYPE(ctypes.c_int32),
                              lambda register=register: self._sreg(register))
        text = self._bind(text, "llvm.nvvm.barrier.cta.sync.aligned.all",
                          ctypes.CFUNCTYPE(None, ctypes.c_int32), lambda _id: self._sync())
        for suffix, ctype in _SHUFFLES.items():
            text = self._bind(text, f"llvm.nvvm.shfl.sync.down.{suffix}",
                              ctypes.CFUNCTYPE(ctype, ctypes.c_int32, ctype, ctypes.c_int32,
                                               ctypes.c_int32), self._shuffle)
        module = llvm.parse_assembly(text)
        module.verify()
        machine = llvm.Target.from_default_triple().create_target_machine(opt=1)
        self.engine = llvm.create_mcjit_compiler(module, machine)
        self.engine.finalize_object()
        address = self.engine.get_function_address(name)
        n_args = len(list(module.get_function(name).arguments))
        self.kernel = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * n_args)(address)

    def _bind(self, text: str, intrinsic: str, signature, fn) -> str:
        """Calls of `intrinsic` become calls of the Python `fn`."""
        callback = signature(self._guard(fn))
        self._callbacks.append(callback)
        name = "emu_" + re.sub(r"\W", "_", intrinsic)
        llvm.add_symbol(name, ctypes.cast(callback, ctypes.c_void_p).value)
        return re.sub(rf'@"?{re.escape(intrinsic)}"?(?=\()', f"@{name}", text)

    def _guard(self, fn):
        def guarded(*args):
            try:
                return fn(*args)
            except BaseException as e:  # (a callback must not raise into native code)
                self.errors.append(e)
                return 0
        return guarded

    def _sreg(self, register: str) -> int:
        local = self.local
        return {"tid.x": local.tid, "ntid.x": local.ntid, "ctaid.x": local.ctaid,
                "nctaid.x": local.nctaid}[register]

    def _sync(self) -> None:
        self.local.block.barrier.wait()

    def _shuffle(self, mask: int, value, delta: int, clamp: int):
        local = self.local
        lane, warp = local.tid % 32, local.tid // 32
        barrier, slots = local.block.warp_barriers[warp], local.block.exchange[warp]
        slots[lane] = value
        barrier.wait()
        result = slots[lane + delta] if lane + delta <= clamp else value
        barrier.wait()
        return result

    def __call__(self, block: int, grid: int, buffers: Sequence[np.ndarray]) -> None:
        self.launch(block, grid, [b.ctypes.data for b in buffers])

    def launch(self, block: int, grid: int, pointers: Sequence[int]) -> None:
        """Runs the kernel on buffers at these host addresses."""
        for ctaid in range(grid):
            state = _Block(block)

            def run(tid: int) -> None:
                local = self.local
                local.tid, local.ntid, local.ctaid, local.nctaid = tid, block, ctaid, grid
                local.block = state
                self.kernel(*pointers)

            threads = [threading.Thread(target=run, args=(t,)) for t in range(block)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if self.errors:
                raise self.errors[0]


class EmulatorDriver:
    """The CUDA backend's driver interface (runtime/cuda_driver.py) on the CPU: "device"
    memory is host memory (256-byte aligned numpy buffers, so kernels read it directly),
    kernels run on the Emulator from their LLVM IR (a plan's `modules`), and a small device
    (`limits`: one SM holding one block, two waves) makes grids of two blocks, so that every
    kernel's blocks stride over its work. Counts what it is asked to do (`calls`)."""

    def __init__(self) -> None:
        from flowjit.runtime.device_plan import DeviceLimits
        self.limits = DeviceLimits(sm_count=1, max_blocks_per_sm=1, waves=2)
        self.calls = {"alloc": 0, "free": 0, "to_device": 0, "to_host": 0, "copy": 0,
                      "launch": 0, "capture": 0, "replay": 0}
        self.live = {}  # address -> its buffer (alive while allocated)

    def alloc(self, nbytes: int):
        self.calls["alloc"] += 1
        raw = np.zeros(nbytes + 256, np.uint8)
        address = -(-raw.ctypes.data // 256) * 256
        self.live[address] = raw
        return raw, address

    def free(self, allocation, address: int) -> None:
        self.calls["free"] += 1
        del self.live[address]

    def to_device(self, address: int, array: np.ndarray) -> None:
        self.calls["to_device"] += 1
        ctypes.memmove(address, array.ctypes.data, array.nbytes)

    def to_host(self, address: int, shape, dtype) -> np.ndarray:
        self.calls["to_host"] += 1
        out = np.empty(shape, dtype)
        ctypes.memmove(out.ctypes.data, address, out.nbytes)
        return out

    def copy(self, destination: int, source: int, nbytes: int) -> None:
        self.calls["copy"] += 1
        ctypes.memmove(destination, source, nbytes)

    def synchronize(self) -> None:
        pass

    def load(self, plan):
        return {step.kernel: Emulator(str(module), step.kernel)
                for step, module in zip(plan.launches, plan.modules)}

    def registers(self, function) -> int:
        return 32

    def launch(self, function, grid: int, block: int, shared_bytes: int, pointers) -> None:
        self.calls["launch"] += 1
        function.launch(block, grid, pointers)

    def capture(self, sequence):
        self.calls["capture"] += 1
        return list(sequence)

    def replay(self, graph) -> None:
        self.calls["replay"] += 1
        for function, grid, block, shared, pointers in graph:
            self.launch(function, grid, block, shared, pointers)
