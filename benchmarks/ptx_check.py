"""Every executable a program compiles, as the CUDA backend would build it: its device plan and
its one PTX module, assembled by `ptxas -arch=sm_90`. Needs the CUDA toolkit, not a GPU.

    python benchmarks/ptx_check.py examples/mlp.py examples/cnn_digits.py ...
    python benchmarks/ptx_check.py --benchmarks      # the benchmarks' graphs (deep_chain)

Each program runs as usual (on the default backend); each Func its Sessions compile is kept,
and afterwards planned for the GPU and assembled. Prints a line per executable (launches,
host steps, copies, whether the run is one CUDA graph) and exits 1 if ptxas refused any.
"""
from __future__ import annotations

import os
import runpy
import sys
import time

from flowjit.codegen.ptx import PTXTarget
from flowjit.runtime import backends
from flowjit.runtime.device_plan import build_device_plan


def collect(program: str) -> list:
    """The optimized Funcs `program` compiles (run in its own folder, as `__main__`)."""
    funcs = []
    original = backends.LLVMBackend.compile

    def compile_and_keep(self, func, dump=None):
        funcs.append(func)
        return original(self, func, dump)

    backends.LLVMBackend.compile = compile_and_keep
    here, argv = os.getcwd(), sys.argv
    try:
        os.chdir(os.path.dirname(os.path.abspath(program)))
        sys.argv = [program]
        runpy.run_path(os.path.abspath(os.path.join(here, program)) if not
                       os.path.isabs(program) else program, run_name="__main__")
    except SystemExit as e:  # (tf.app.run exits)
        if e.code not in (None, 0):
            raise
    finally:
        os.chdir(here)
        sys.argv = argv
        backends.LLVMBackend.compile = original
    return funcs


def benchmark_funcs() -> list:
    """The deep-chain benchmark's graph (forward and gradients) at 64 ops."""
    import flowjit as tf
    from flowjit.compiler import CompileOptions, optimize
    from flowjit.ir.core import TensorType
    from flowjit.lower import lower
    funcs = []
    for gradients in (False, True):
        tf.reset_default_graph()
        x = tf.placeholder(tf.float32, [256], name="x")
        y = x
        for i in range(64):
            y = tf.sin(y) * (0.5 + i / 64) + y
        fetches = [y] + (tf.gradients(y, x) if gradients else [])
        funcs.append(optimize(lower(fetches, [], {x: TensorType(tf.float32, (256,))}),
                              CompileOptions()))
    return funcs


def check(name: str, funcs: list, target: PTXTarget) -> bool:
    ok = True
    for func in funcs:
        start = time.time()
        plan = build_device_plan(func, target)
        if not plan.launches:  # (nothing for the GPU: copies and host steps only)
            print(f"{name}: {func.name}: no kernels, {plan.stats['numpy']} host steps")
            continue
        good, messages = target.assemble(plan.ptx(target))
        ok = ok and good
        print(f"{name}: {func.name}: {len(plan.launches)} launches, {plan.stats['numpy']} host "
              f"steps, copies {plan.stats['copies']}, "
              f"{'one CUDA graph' if plan.graphable else 'launched one by one'}, arena "
              f"{plan.arena_bytes} B: ptxas {'ok' if good else 'FAILED'} "
              f"({time.time() - start:.1f} s)", flush=True)
        if not good:
            print(messages[-3000:])
    return ok


def main(argv) -> int:
    if len(argv) > 1:  # a process per program (their flags, graphs and seeds are their own)
        import subprocess
        codes = [subprocess.call([sys.executable, __file__, program]) for program in argv]
        print("all accepted by ptxas" if not any(codes) else "ptxas refused some PTX (or a "
              "program failed)")
        return 1 if any(codes) else 0
    target = PTXTarget()
    ok = True
    for program in argv:
        if program == "--benchmarks":
            ok = check("benchmarks/deep_chain", benchmark_funcs(), target) and ok
        else:
            ok = check(program, collect(program), target) and ok
    print("all accepted by ptxas" if ok else "ptxas refused some PTX")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
