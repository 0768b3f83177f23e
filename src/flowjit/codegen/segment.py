"""One native entry for a run of kernels, so that Python crosses into native code once per
run of kernels instead of once per kernel.

`void segment(ptr table, ptr pool)` calls each kernel of the run in order, handing it its
buffers (outputs, inputs, scratch) from `table`, a list of buffer addresses that the runtime
fills: fixed arena addresses once, at build time, the buffers Python sees before each call.
Kernels big enough to share run through the worker pool's `flowjit_parallel_for`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from llvmlite import ir

from flowjit.codegen.kernels import I64, KERNEL_TYPE, PTR

PARALLEL_FOR = "flowjit_parallel_for"  # runtime/threads.py; its symbol is registered there


@dataclass
class KernelCall:
    kernel: str            # the kernel's function, in the same module
    buffers: List[int]     # table index of each of its buffers, in the kernel's order
    extent: int            # rows [0, extent)
    grain: Optional[int]   # rows per share on the worker pool; None: one call, this thread
    prepare: Optional[str] = None  # run before the rows (packs scratch) ...
    prepare_extent: int = 1        # ... over [0, prepare_extent)
    prepare_grain: Optional[int] = None  # in shares of this many on the pool; None: here


def emit_segment(module: ir.Module, name: str, calls: List[KernelCall]) -> None:
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR]), name)
    table, pool = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    parallel_for = None
    if any(call.grain is not None or call.prepare_grain is not None for call in calls):
        parallel_for = module.globals.get(PARALLEL_FOR) or ir.Function(
            module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR, I64, I64, I64]),
            PARALLEL_FOR)
    slots = [b.alloca(PTR, size=len(call.buffers)) for call in calls]  # in the entry block
    zero = ir.Constant(I64, 0)
    for call, args in zip(calls, slots):
        if call.extent == 0:  # an empty output: nothing to compute
            continue
        for position, index in enumerate(call.buffers):
            address = b.load(b.gep(table, [ir.Constant(I64, index)], source_etype=PTR),
                             typ=PTR)
            b.store(address, b.gep(args, [ir.Constant(I64, position)], source_etype=PTR))
        kernel = module.globals.get(call.kernel) or ir.Function(module, KERNEL_TYPE,
                                                                 call.kernel)
        if call.prepare is not None:
            prepare, extent = module.globals[call.prepare], ir.Constant(I64, call.prepare_extent)
            if call.prepare_grain is None:
                b.call(prepare, [args, zero, extent])
            else:
                b.call(parallel_for, [pool, prepare, args, zero, extent,
                                      ir.Constant(I64, call.prepare_grain)])
        extent = ir.Constant(I64, call.extent)
        if call.grain is None:
            b.call(kernel, [args, zero, extent])
        else:
            b.call(parallel_for, [pool, kernel, args, zero, extent,
                                  ir.Constant(I64, call.grain)])
    b.ret_void()
