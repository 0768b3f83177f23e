"""The host CPU's floating-point peak, measured: what a GEMM's GFLOP/s is a percentage of.

    peak = cores x FMA units x lanes x 2 x clock

- clock: a chain of dependent register-register integer adds (one cycle each on every x86
  core) timed with the thread's CPU time, so the frequency is the one this core runs at now
  (turbo included), and time while the thread is descheduled does not count; the fastest
  of 15 runs, since a VM's guest cannot see the time its host takes the core away;
- FMA units: vector FMAs per cycle, from a loop of independent FMA chains (enough of them to
  cover the latency) at the target's vector width, rounded to a whole number;
- lanes: float32 (or float64) elements per vector of the target's ISA (forced or the host's).

    python benchmarks/peak.py [--isa host|avx2]
"""
from __future__ import annotations

import ctypes
import platform
import time
from typing import Dict, Optional

import llvmlite.binding as llvm
from llvmlite import ir

I64 = ir.IntType(64)
ADDS_PER_ITERATION = 100
FMA_STEPS = 4


def cpu_model() -> str:
    """The marketing name of the host CPU (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_name(target) -> str:
    return "AVX-512" if "+avx512f" in target.features else \
        "AVX2+FMA" if "+avx2" in target.features else "SSE"


def _module(target) -> ir.Module:
    """`i64 adds(i64 n, i64 x)`: n x 100 dependent adds; `void fmas(i64 n, ptr out)`:
    n x 4 rounds of FMAs on (vector registers - 4) independent accumulators."""
    module = target.new_module("peak")
    fn = ir.Function(module, ir.FunctionType(I64, [I64, I64]), "adds")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n, x0 = fn.args
    add = ir.InlineAsm(ir.FunctionType(I64, [I64, I64]), "add $1, $0", "=r,r,0",
                       side_effect=True)
    entry, body, done = b.block, fn.append_basic_block("body"), fn.append_basic_block("done")
    b.branch(body)
    b.position_at_end(body)
    i, x = b.phi(I64), b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    x.add_incoming(x0, entry)
    y = x
    for _ in range(ADDS_PER_ITERATION):  # (a register operand: no renamer shortcut)
        y = b.call(add, [n, y])
    i_next = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(i_next, body)
    x.add_incoming(y, body)
    b.cbranch(b.icmp_signed("<", i_next, n), body, done)
    b.position_at_end(done)
    b.ret(y)

    vec = ir.VectorType(ir.FloatType(), target.lanes)
    fma = ir.Function(module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{target.lanes}f32")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64, ir.PointerType()]), "fmas")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n, out = fn.args
    entry, body, done = b.block, fn.append_basic_block("body"), fn.append_basic_block("done")
    factor = ir.Constant(vec, [1.0001] * target.lanes)
    b.branch(body)
    b.position_at_end(body)
    i = b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    accumulators = [b.phi(vec) for _ in range(target.vector_registers - 4)]
    for phi in accumulators:
        phi.add_incoming(ir.Constant(vec, [0.5] * target.lanes), entry)
    values = list(accumulators)
    for _ in range(FMA_STEPS):
        values = [b.call(fma, [v, factor, factor]) for v in values]
    for phi, value in zip(accumulators, values):
        phi.add_incoming(value, body)
    i_next = b.add(i, ir.Constant(I64, 1))
    i.add_incoming(i_next, body)
    b.cbranch(b.icmp_signed("<", i_next, n), body, done)
    b.position_at_end(done)
    total = values[0]
    for value in values[1:]:
        total = b.fadd(total, value)
    b.store(total, out, align=4)
    b.ret_void()
    return module


def measure(target, cores: int = 1, repeats: int = 15) -> Dict[str, float]:
    """Clock (Hz), FMA units, float32 lanes and the float32 peak (FLOP/s) of `cores` cores."""
    llvm.initialize_native_asmparser()  # (inline assembly)
    compiled = target.compile_ir_text(str(_module(target)), "peak")
    adds = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)(
        compiled.address("adds"))
    fmas = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_void_p)(compiled.address("fmas"))
    out = (ctypes.c_float * target.lanes)()
    iterations = 200_000
    fmas_per_call = iterations * FMA_STEPS * (target.vector_registers - 4)
    clocks, fma_seconds = [], []
    for _ in range(repeats):
        start = time.thread_time()
        adds(iterations, 0)
        clocks.append(iterations * ADDS_PER_ITERATION / (time.thread_time() - start))
        start = time.thread_time()
        fmas(iterations, out)
        fma_seconds.append(time.thread_time() - start)
    # The fastest runs: on a VM, time the host takes the core away still counts as the
    # guest thread's, so slower samples only say the machine was shared.
    clock = max(clocks)
    units = max(1, round(fmas_per_call / (min(fma_seconds) * clock)))
    return {"clock": clock, "fma_units": units, "lanes": target.lanes,
            "peak": cores * units * target.lanes * 2 * clock}


def describe(target, cores: int, m: Optional[Dict[str, float]] = None) -> str:
    """One line: the CPU, its ISA as used, and the peak measured (`m`, or now)."""
    m = m or measure(target, cores)
    return (f"{cpu_model()} (LLVM cpu {target.cpu}), {isa_name(target)}; clock "
            f"{m['clock'] / 1e9:.2f} GHz measured (dependent adds), {m['fma_units']} FMA "
            f"units x {m['lanes']} float32 lanes x 2 x {cores} core(s) = float32 peak "
            f"{m['peak'] / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    import argparse
    import os
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", choices=["host", "avx2"], default="host")
    args = parser.parse_args()
    from flowjit.codegen.target import CPUTarget
    target = CPUTarget(*(("haswell", "+avx2,+fma") if args.isa == "avx2" else (None, None)))
    print(describe(target, len(os.sched_getaffinity(0))))
