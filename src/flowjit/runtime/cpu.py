"""The CPU executable: the optimized IR as a sequence of thunks, one per instruction.

An instruction the code generator handles (elementwise and fused loops, reductions, matmul
with its epilogue) runs as a native kernel; any other runs its numpy reference kernel. Every
native call is preceded by a check that each buffer has exactly the shape and dtype the
kernel was compiled for, so generated code never reads or writes out of bounds.
"""
from __future__ import annotations

import ctypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.codegen import kernels
from flowjit.codegen.target import CPUTarget, cpu_target
from flowjit.interp.evaluate import execute
from flowjit.ir.core import FUSION, Func, Instr, Value


# Kernels with less work (elements, or flops for matmul) run on one core: handing a share
# to another thread costs tens of microseconds. Measured on the MLP benchmark: 2^22 beat
# 2^18, 2^24 and never.
PARALLEL_MIN_WORK = 1 << 22
_pool: Optional[ThreadPoolExecutor] = None


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                   thread_name_prefix="flowjit")
    return _pool


class NativeThunk:
    """Calls one compiled kernel: buffers are [*outputs, *inputs, scratch]."""

    __slots__ = ("kernel", "fn", "instr", "checks", "outputs", "specs", "info", "chunks",
                 "args_type", "pools", "precondition", "simple", "addresses")

    def __init__(self, kernel, instr: Instr, inputs: List[int], outputs: List[int],
                 info: kernels.KernelInfo, addresses: Dict[int, int]) -> None:
        self.kernel = kernel  # owns the code: alive as long as this thunk
        self.fn = kernel.fn   # the raw ctypes function: one Python call layer less
        self.instr = instr
        self.outputs = outputs
        self.info = info
        self.specs = [(tuple(r.type.shape), r.type.dtype.np_dtype) for r in instr.results]
        # (slot, shape, dtype) of each input: checked before every call
        self.checks = [(slot, tuple(v.type.shape), v.type.dtype.np_dtype)
                       for slot, v in zip(inputs, instr.operands)]
        self.args_type = ctypes.c_void_p * (len(outputs) + len(inputs) + 1)
        self.pools: List[List[np.ndarray]] = [[] for _ in outputs]
        # id -> data address of every pool buffer of this executable. Pool buffers live as
        # long as the executable, so an id found here is that buffer: no ctypes lookup.
        self.addresses = addresses
        self.precondition = instr.op_def.check_inputs if instr.op != FUSION else None
        work = info.extent * info.work_per_row
        units = -(-info.extent // info.align)  # shares are whole multiples of `align` rows
        parts = min(os.cpu_count() or 1, units) if work >= PARALLEL_MIN_WORK else 1
        bounds = [min(info.extent, units * p // parts * info.align) for p in range(parts + 1)]
        self.chunks = [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
        # The common case gets a lean path: one output, one share, nothing else to do.
        self.simple = (len(outputs) == 1 and len(self.chunks) == 1 and not info.scratch
                       and self.precondition is None)

    def _output_buffer(self, pool: List[np.ndarray], shape, dtype) -> np.ndarray:
        """An earlier output that nothing holds any more (not the caller, not a Session's
        variables), else a new array. Two buffers let a variable's update ping-pong: the
        new value is written into the buffer the value before last lived in, so a training
        step allocates nothing and touches no fresh pages."""
        for buffer in pool:
            if sys.getrefcount(buffer) == 3:  # the pool, `buffer` and the argument
                buffer.setflags(write=True)  # a Session marks variable values read-only
                return buffer
        buffer = np.empty(shape, dtype)
        if len(pool) < 2:
            pool.append(buffer)
            self.addresses[id(buffer)] = buffer.ctypes.data
        return buffer

    def _address(self, array: np.ndarray) -> int:
        address = self.addresses.get(id(array))
        return address if address is not None else array.ctypes.data

    def run(self, slots: List[Optional[np.ndarray]]) -> None:
        if self.simple:
            self._run_simple(slots)
            return
        args = self.args_type()
        position = 0
        outs = []
        for pool, (shape, dtype) in zip(self.pools, self.specs):
            out = self._output_buffer(pool, shape, dtype)
            outs.append(out)
            args[position] = self._address(out)
            position += 1
        inputs = []
        for slot, shape, dtype in self.checks:
            array = slots[slot]
            if array.shape != shape or array.dtype != dtype:
                raise errors.InternalError(
                    f"buffer {position} of the kernel for {self.instr.describe()} is "
                    f"{array.dtype}{list(array.shape)}, compiled for {dtype}{list(shape)}")
            if not array.flags.c_contiguous:
                array = slots[slot] = np.ascontiguousarray(array)
            inputs.append(array)
            args[position] = self._address(array)
            position += 1
        if self.precondition is not None:  # generated code does not raise: check first
            try:
                self.precondition(*inputs, **self.instr.attrs)
            except errors.OpError as e:
                raise type(e)(f"{e.message}\n  in {self.instr.describe()}") from None
        if len(self.chunks) == 1:
            scratch = self._scratch(args, position)  # noqa: F841 - alive during the call
            self.fn(args, *self.chunks[0])
        elif self.chunks:  # (no shares at all: the output is empty)
            self._run_in_parallel(args, position)
        for slot, out in zip(self.outputs, outs):
            slots[slot] = out

    def _run_simple(self, slots: List[Optional[np.ndarray]]) -> None:
        shape, dtype = self.specs[0]
        out = self._output_buffer(self.pools[0], shape, dtype)
        addresses = self.addresses
        pointers = [addresses.get(id(out)) or out.ctypes.data]
        for slot, shape, dtype in self.checks:
            array = slots[slot]
            if array.shape != shape or array.dtype != dtype or not array.flags.c_contiguous:
                self._bad_input(slots, slot, shape, dtype)
                array = slots[slot]
            pointers.append(addresses.get(id(array)) or array.ctypes.data)
        pointers.append(None)
        self.fn(self.args_type(*pointers), *self.chunks[0])
        slots[self.outputs[0]] = out

    def _bad_input(self, slots, slot: int, shape, dtype) -> None:
        array = slots[slot]
        if array.shape != shape or array.dtype != dtype:
            raise errors.InternalError(
                f"an input buffer of the kernel for {self.instr.describe()} is "
                f"{array.dtype}{list(array.shape)}, compiled for {dtype}{list(shape)}")
        slots[slot] = np.ascontiguousarray(array)

    def _scratch(self, args, position: int) -> Optional[np.ndarray]:
        if not self.info.scratch:
            return None
        scratch = np.empty(self.info.scratch, self.specs[0][1])
        args[position] = scratch.ctypes.data
        return scratch

    def _run_in_parallel(self, args, position: int) -> None:
        """One call per share of rows, on the thread pool (ctypes releases the GIL)."""
        calls, scratches = [], []
        for begin, end in self.chunks[1:]:
            own = self.args_type(*args)
            scratches.append(self._scratch(own, position))
            calls.append(_thread_pool().submit(self.fn, own, begin, end))
        scratches.append(self._scratch(args, position))
        self.fn(args, *self.chunks[0])  # the calling thread does the first share itself
        for call in calls:
            call.result()


class NumpyThunk:
    """Runs one instruction with the interpreter's numpy kernel."""

    __slots__ = ("instr", "inputs", "outputs")

    def __init__(self, instr: Instr, inputs: List[int], outputs: List[int]) -> None:
        self.instr, self.inputs, self.outputs = instr, inputs, outputs

    def run(self, slots: List[Optional[np.ndarray]]) -> None:
        results = execute(self.instr, [slots[i] for i in self.inputs])
        for slot, value in zip(self.outputs, results):
            slots[slot] = value


def build(func: Func, target: Optional[CPUTarget] = None, dump: Optional[Callable] = None
          ) -> Tuple[Callable[[Sequence[np.ndarray]], List[np.ndarray]], Dict[str, int]]:
    """The run function of `func` on the CPU, and how many instructions are native.
    `dump(stage, text)` receives the kernels' LLVM IR as generated and as optimized."""
    target = target or cpu_target()
    slot: Dict[Value, int] = {}
    for p in func.params:
        slot[p.value] = len(slot)
    thunks = []
    stats = {"native": 0, "numpy": 0}
    addresses: Dict[int, int] = {}  # shared by the thunks: see NativeThunk.addresses
    constants: Dict[int, np.ndarray] = {}  # slot -> value, computed once, here
    modules = []
    for index, instr in enumerate(func.body):
        for r in instr.results:
            slot[r] = len(slot)
        inputs = [slot[v] for v in instr.operands]
        if instr.op == "constant":
            value = execute(instr, [])[0]
            value.setflags(write=False)  # shared by every run: fetches of it are copied
            constants[slot[instr.result]] = value
            continue
        kind = kernels.kernel_kind(instr)
        if kind is None:
            thunks.append(NumpyThunk(instr, inputs, [slot[r] for r in instr.results]))
            stats["numpy"] += 1
            continue
        if kind == "matmul":  # its kernel calls the shared GEMM core by name
            target.ensure_gemm_core(instr.result.type.dtype)
        module = target.new_module(f"k{index}_{instr.op}")
        info = kernels.emit_kernel(module, "kernel", instr, target.lanes)
        modules.append((index, instr, module))
        fn = target.compile_kernel(module, "kernel")
        thunks.append(NativeThunk(fn, instr, inputs, [slot[r] for r in instr.results], info,
                                  addresses))
        stats["native"] += 1
    if dump is not None:
        _dump_kernels(modules, target, dump)
    n_params = len(func.params)
    n_slots = len(slot)
    result_slots = [slot[r.value] for r in func.results]
    initial: List[Optional[np.ndarray]] = [None] * (n_slots - n_params)
    for index, value in constants.items():
        initial[index - n_params] = value

    def run(inputs: Sequence[np.ndarray],
            trace: Optional[Dict[Value, np.ndarray]] = None) -> List[np.ndarray]:
        slots: List[Optional[np.ndarray]] = list(inputs) + initial
        for thunk in thunks:
            thunk.run(slots)
        if trace is not None:  # every intermediate value, for finding divergences
            trace.update((value, slots[i]) for value, i in slot.items())
        return [slots[i] for i in result_slots]

    return run, stats


def _dump_kernels(modules, target: CPUTarget, dump: Callable) -> None:
    def header(index, instr):
        return f"; instruction {index}: {instr.op} at {instr.describe()}\n"
    dump("llvm", "".join(header(i, instr) + str(m) + "\n" for i, instr, m in modules))
    dump("llvm-opt", "".join(header(i, instr) + target.optimized_ir(m) + "\n"
                             for i, instr, m in modules))
