"""The CPU executable: the optimized IR as a sequence of thunks, one per instruction.

An instruction the code generator handles (elementwise and fused loops, reductions, matmul
with its epilogue) runs as a native kernel; any other runs its numpy reference kernel. Every
native call is preceded by a check that each buffer has exactly the shape and dtype the
kernel was compiled for, so generated code never reads or writes out of bounds.
"""
from __future__ import annotations

import ctypes
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.codegen import kernels
from flowjit.codegen.target import CPUTarget, cpu_target
from flowjit.interp.evaluate import execute
from flowjit.ir.core import Func, Instr, Value


class NativeThunk:
    """Calls one compiled kernel: buffers are [output, *inputs]."""

    __slots__ = ("fn", "instr", "inputs", "output", "shape", "dtype", "expected", "kind")

    def __init__(self, fn, instr: Instr, inputs: List[int], output: int, kind: str) -> None:
        self.fn = fn
        self.instr = instr
        self.inputs = inputs
        self.output = output
        self.kind = kind
        result = instr.result.type
        self.shape, self.dtype = tuple(result.shape), result.dtype.np_dtype
        self.expected = [(tuple(v.type.shape), v.type.dtype.np_dtype) for v in instr.operands]

    def run(self, slots: List[Optional[np.ndarray]]) -> None:
        args = (ctypes.c_void_p * (1 + len(self.inputs)))()
        out = np.empty(self.shape, self.dtype)
        args[0] = out.ctypes.data
        for position, (slot, (shape, dtype)) in enumerate(zip(self.inputs, self.expected), 1):
            array = slots[slot]
            if array.shape != shape or array.dtype != dtype:
                raise errors.InternalError(
                    f"buffer {position} of the kernel for {self.instr.describe()} is "
                    f"{array.dtype}{list(array.shape)}, compiled for {dtype}{list(shape)}")
            if not array.flags.c_contiguous:
                array = slots[slot] = np.ascontiguousarray(array)
            args[position] = array.ctypes.data
        self.fn(args)
        slots[self.output] = out


class NumpyThunk:
    """Runs one instruction with the interpreter's numpy kernel."""

    __slots__ = ("instr", "inputs", "outputs")

    def __init__(self, instr: Instr, inputs: List[int], outputs: List[int]) -> None:
        self.instr, self.inputs, self.outputs = instr, inputs, outputs

    def run(self, slots: List[Optional[np.ndarray]]) -> None:
        results = execute(self.instr, [slots[i] for i in self.inputs])
        for slot, value in zip(self.outputs, results):
            slots[slot] = value


def build(func: Func, target: Optional[CPUTarget] = None
          ) -> Tuple[Callable[[Sequence[np.ndarray]], List[np.ndarray]], Dict[str, int]]:
    """The run function of `func` on the CPU, and how many instructions are native."""
    target = target or cpu_target()
    slot: Dict[Value, int] = {}
    for p in func.params:
        slot[p.value] = len(slot)
    thunks = []
    stats = {"native": 0, "numpy": 0}
    for index, instr in enumerate(func.body):
        for r in instr.results:
            slot[r] = len(slot)
        inputs = [slot[v] for v in instr.operands]
        kind = kernels.kernel_kind(instr)
        if kind is None:
            thunks.append(NumpyThunk(instr, inputs, [slot[r] for r in instr.results]))
            stats["numpy"] += 1
            continue
        name = f"k{index}_{instr.op}"
        module = target.new_module(name)
        kernels.emit_kernel(module, name, instr)
        fn = target.compile_kernel(module, name)
        thunks.append(NativeThunk(fn, instr, inputs, slot[instr.result], kind))
        stats["native"] += 1
    n_params = len(func.params)
    n_slots = len(slot)
    result_slots = [slot[r.value] for r in func.results]

    def run(inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
        slots: List[Optional[np.ndarray]] = list(inputs) + [None] * (n_slots - n_params)
        for thunk in thunks:
            thunk.run(slots)
        return [slots[i] for i in result_slots]

    return run, stats
