"""One native entry for a run of kernels, so that Python crosses into native code once per
run of kernels instead of once per kernel.

`void segment(ptr table, ptr pool)` calls each kernel of the run in order, handing it its
buffers (outputs, inputs, scratch) from `table`, a list of buffer addresses that the runtime
fills: fixed arena addresses once, at build time, the buffers Python sees before each call.
Kernels big enough to share run through the worker pool's `flowjit_parallel_for`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Hashable, List, Optional, Sequence

from llvmlite import ir

from flowjit.codegen.kernels import I64, KERNEL_TYPE, PTR
from flowjit.ir.core import Instr, structure_key

I32 = ir.IntType(32)
PARALLEL_FOR = "flowjit_parallel_for"  # runtime/threads.py; its symbol is registered there

# A segment's module holds its distinct kernels and a loop over its calls: LLVM's time on it
# grows with its kernels, and one LLVM call cannot be interrupted (Ctrl-C waits for it). A
# segment calls at most this many kernels, of at most this many IR instructions in all, so
# that each LLVM call is short and compile time grows linearly with the program. (Before,
# one module held every kernel of a run, inlined into one function: 600 kernels took 26 s,
# 3000 took 980 s.)
MAX_SEGMENT_KERNELS = 64
MAX_SEGMENT_INSTRUCTIONS = 1024


def kernel_size(instr: Instr) -> int:
    """IR instructions in the kernel of `instr` (its region's, for a fusion)."""
    return len(instr.region.body) if instr.region is not None else 1


def segment_has_room(segment: Sequence[Instr], instr: Instr) -> bool:
    """Whether `instr`'s kernel may join the kernels of `segment` in one module."""
    return (len(segment) < MAX_SEGMENT_KERNELS and
            sum(map(kernel_size, segment)) + kernel_size(instr) <= MAX_SEGMENT_INSTRUCTIONS)


def kernel_ids(instrs: Sequence[Instr]) -> List[int]:
    """For each instruction of one module, the number of its kernel (named `k<number>`):
    instructions that compute the same function share one kernel, so the module holds it
    once, and segments with the same kernels in the same order have the same text (and are
    compiled once)."""
    by_structure: Dict[Hashable, int] = {}
    return [by_structure.setdefault(structure_key(instr), len(by_structure))
            for instr in instrs]


@dataclass
class KernelCall:
    kernel: str            # the kernel's function, in the same module
    buffers: List[int]     # table index of each of its buffers, in the kernel's order
    extent: int            # rows [0, extent)
    grain: Optional[int]   # rows per share on the worker pool; None: one call, this thread
    prepare: Optional[str] = None  # run before the rows (packs scratch) ...
    prepare_extent: int = 1        # ... over [0, prepare_extent)
    prepare_grain: Optional[int] = None  # in shares of this many on the pool; None: here


# One step of a segment: kernel, prepare (or null), extent, grain (0: this thread only), the
# prepare function's extent and grain, and where its buffers' table indices start in the
# segment's list of them, and how many.
_STEP = ir.LiteralStructType([PTR, PTR, I64, I64, I64, I64, I32, I32])
_KERNEL_POINTER = ir.PointerType(KERNEL_TYPE)  # (prints as `ptr`; lets llvmlite call it)


def emit_segment(module: ir.Module, name: str, calls: List[KernelCall]) -> None:
    """Adds `void name(ptr table, ptr pool)` running `calls` in order.

    The calls are data, two constant arrays (the steps, and the table indices of their
    buffers), and the function is one loop over them: its size does not grow with the
    number of calls, so neither does the time LLVM spends on it, and kernels are compiled
    each on its own instead of inlined into one huge function."""
    calls = [call for call in calls if call.extent != 0]  # an empty output: nothing to do
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), name)
    table, pool = fn.args
    entry = fn.append_basic_block("entry")
    b = ir.IRBuilder(entry)
    if not calls:
        b.ret_void()
        return
    steps, indices = [], []
    for call in calls:
        kernel = module.globals.get(call.kernel) or ir.Function(module, KERNEL_TYPE,
                                                                 call.kernel)
        prepare = module.globals[call.prepare] if call.prepare is not None else \
            ir.Constant(PTR, None)
        steps.append(ir.Constant(_STEP, [kernel, prepare, ir.Constant(I64, call.extent),
                                         ir.Constant(I64, call.grain or 0),
                                         ir.Constant(I64, call.prepare_extent),
                                         ir.Constant(I64, call.prepare_grain or 0),
                                         ir.Constant(I32, len(indices)),
                                         ir.Constant(I32, len(call.buffers))]))
        indices.extend(call.buffers)
    steps_array = _constant_array(module, f"{name}.steps", _STEP, steps)
    indices_array = _constant_array(module, f"{name}.buffers", I32,
                                    [ir.Constant(I32, i) for i in indices])
    args = b.alloca(PTR, size=max(len(call.buffers) for call in calls))
    zero, one = ir.Constant(I64, 0), ir.Constant(I64, 1)
    step_block, copy_block, run_block, done = (fn.append_basic_block(n) for n in
                                               ("step", "copy", "run", "done"))
    b.branch(step_block)

    b.position_at_end(step_block)  # for each step:
    i = b.phi(I64, "i")
    i.add_incoming(zero, entry)
    step = b.gep(steps_array, [zero, i], source_etype=steps_array.value_type)

    def field(index: int, typ: ir.Type) -> ir.Value:
        return b.load(b.gep(step, [ir.Constant(I32, 0), ir.Constant(I32, index)],
                            source_etype=_STEP), typ=typ)

    kernel, prepare = field(0, _KERNEL_POINTER), field(1, _KERNEL_POINTER)
    extent, grain = field(2, I64), field(3, I64)
    prepare_extent, prepare_grain = field(4, I64), field(5, I64)
    first, count = b.zext(field(6, I32), I64), b.zext(field(7, I32), I64)
    b.branch(copy_block)

    b.position_at_end(copy_block)  # args[j] = table[buffers[first + j]], j < count (>= 1)
    j = b.phi(I64, "j")
    j.add_incoming(zero, step_block)
    index = b.load(b.gep(indices_array, [zero, b.add(first, j)],
                         source_etype=indices_array.value_type), typ=I32)
    address = b.load(b.gep(table, [b.zext(index, I64)], source_etype=PTR), typ=PTR)
    b.store(address, b.gep(args, [j], source_etype=PTR))
    j_next = b.add(j, one)
    j.add_incoming(j_next, copy_block)
    b.cbranch(b.icmp_unsigned("<", j_next, count), copy_block, run_block)

    b.position_at_end(run_block)

    def run(fn: ir.Value, extent: ir.Value, grain: ir.Value, shared: bool) -> None:
        """fn over [0, extent), on the pool in shares of `grain` (0: on this thread)."""
        if not shared:  # (then the pool may not even exist)
            b.call(fn, [args, zero, extent])
            return
        with b.if_else(b.icmp_unsigned("==", grain, zero)) as (alone, on_pool):
            with alone:
                b.call(fn, [args, zero, extent])
            with on_pool:
                parallel_for = module.globals.get(PARALLEL_FOR) or ir.Function(
                    module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR, I64, I64, I64]),
                    PARALLEL_FOR)
                b.call(parallel_for, [pool, fn, args, zero, extent, grain])

    with b.if_then(b.icmp_unsigned("!=", prepare, ir.Constant(_KERNEL_POINTER, None))):
        run(prepare, prepare_extent, prepare_grain,
            any(call.prepare_grain is not None for call in calls))
    run(kernel, extent, grain, any(call.grain is not None for call in calls))
    i_next = b.add(i, one)
    i.add_incoming(i_next, b.block)
    b.cbranch(b.icmp_unsigned("<", i_next, ir.Constant(I64, len(steps))), step_block, done)

    b.position_at_end(done)
    b.ret_void()


def _constant_array(module: ir.Module, name: str, element: ir.Type,
                    values: List[ir.Constant]) -> ir.GlobalVariable:
    array = ir.GlobalVariable(module, ir.ArrayType(element, len(values)), name)
    array.initializer = ir.Constant(array.value_type, values)
    array.global_constant = True
    array.linkage = "private"
    return array
