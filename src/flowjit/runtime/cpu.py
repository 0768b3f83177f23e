"""The CPU executable: the optimized IR as a sequence of thunks, one per instruction.

An instruction the code generator handles (elementwise and fused loops, reductions, matmul
with its epilogue) runs as a native kernel; any other runs its numpy reference kernel. Every
native call is preceded by a check that each buffer has exactly the shape and dtype the
kernel was compiled for, so generated code never reads or writes out of bounds.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.codegen import kernels
from flowjit.codegen.target import CPUTarget, cpu_target, kernel_function
from flowjit.interp.evaluate import execute
from flowjit.ir.core import FUSION, Func, Instr, Value
from flowjit.runtime.threads import WorkerPool, worker_pool


# Kernels with less work than this run on one core: elements for loops, flops for matmul.
# With the native pool a share reaches another core in ~2 us. Measured (benchmarks/
# thresholds.py): 1.15x at 2^14 elements of a fused chain, 1.75x at 2^16; matmuls gain
# nothing at 2^20 flops, 1.5x at 2^22.
PARALLEL_MIN_WORK = {"matmul": 1 << 21}
PARALLEL_MIN_ELEMENTS = 1 << 15
CHUNKS_PER_THREAD = 2  # a share per thread and a spare: a late or busy core delays less


class NativeThunk:
    """Calls one compiled kernel: buffers are [*outputs, *inputs, scratch]."""

    __slots__ = ("kernel", "fn", "instr", "checks", "outputs", "specs", "info", "extent",
                 "args_type", "pools", "precondition", "simple", "addresses", "pool", "grain",
                 "prepare")

    def __init__(self, kernel, instr: Instr, inputs: List[int], outputs: List[int],
                 info: kernels.KernelInfo, addresses: Dict[int, int],
                 pool: Optional[WorkerPool]) -> None:
        self.kernel = kernel  # owns the code: alive as long as this thunk
        self.fn = kernel.fn   # the raw ctypes function: one Python call layer less
        self.instr = instr
        self.outputs = outputs
        self.info = info
        self.extent = info.extent
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
        self.prepare = kernel_function(kernel, info.prepare) if info.prepare else None
        units = -(-info.extent // info.align)  # shares are whole multiples of `align` rows
        parallel = pool is not None and units > 1 and \
            info.extent * info.work_per_row >= PARALLEL_MIN_WORK.get(info.kind,
                                                                      PARALLEL_MIN_ELEMENTS)
        self.pool = pool if parallel else None
        chunks = min(units, pool.size * CHUNKS_PER_THREAD) if parallel else 1
        self.grain = -(-units // chunks) * info.align
        # The common case gets a lean path: one output, one thread, nothing else to do.
        self.simple = (len(outputs) == 1 and self.pool is None and not info.scratch
                       and self.precondition is None and info.extent > 0)

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
        scratch = self._scratch(args, position)  # noqa: F841 - alive during the call
        if self.extent > 0:  # (else the output is empty: nothing to compute)
            if self.prepare is not None:
                self.prepare(args, 0, 0)
            if self.pool is not None:
                self.pool.parallel_for(self.pool.memory, self.kernel.address, args, 0,
                                       self.extent, self.grain)
            else:
                self.fn(args, 0, self.extent)
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
        self.fn(self.args_type(*pointers), 0, self.extent)
        slots[self.outputs[0]] = out

    def _bad_input(self, slots, slot: int, shape, dtype) -> None:
        array = slots[slot]
        if array.shape != shape or array.dtype != dtype:
            raise errors.InternalError(
                f"an input buffer of the kernel for {self.instr.describe()} is "
                f"{array.dtype}{list(array.shape)}, compiled for {dtype}{list(shape)}")
        slots[slot] = np.ascontiguousarray(array)

    def _scratch(self, args, position: int) -> Optional[np.ndarray]:
        """Scratch for this call: written by `prepare` (or one share), read by the shares."""
        if not self.info.scratch:
            return None
        scratch = np.empty(self.info.scratch, self.specs[0][1])
        args[position] = scratch.ctypes.data
        return scratch


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
    pool = worker_pool(target)
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
                                  addresses, pool))
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
