"""Compile time of a deep chain, `y = sin(y) * 0.5 + y` repeated n times, per backend.

Compile time should grow linearly with n: each stage (lowering, the passes, kernel emission
and LLVM) is timed on its own, and the LLVM backend's cost is also given per native kernel.
The steps of the chain compute the same function, so the LLVM backend compiles one kernel
(and one segment) for them all; `--distinct` makes every step's constant different, so
that every kernel is compiled, as in a program without repetition.
Each (n, backend) runs in a fresh process with the disk cache off, so nothing is reused;
"compile" is lower + passes + codegen (kernel emission and LLVM), in seconds.

    python benchmarks/deep_chain.py [--n 150 600 3000] [--backends llvm eager] [--gradients]
                                    [--distinct]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def measure(n: int, backend: str, gradients: bool, distinct: bool) -> dict:
    """Builds the chain and compiles it in this process; returns seconds per stage."""
    import flowjit as tf
    from flowjit.compiler import CompileOptions, optimize
    from flowjit.lower import lower

    start = time.perf_counter()
    x = tf.placeholder(tf.float32, [256], name="x")
    y = x
    for i in range(n):
        y = tf.sin(y) * (0.5 + i / n if distinct else 0.5) + y
    fetches = [y] + (tf.gradients(y, x) if gradients else [])
    figures = {"n": n, "backend": backend, "graph": time.perf_counter() - start}

    start = time.perf_counter()
    func = lower(fetches, feed_types={x: _tensor_type(x)})
    figures["lower"] = time.perf_counter() - start
    start = time.perf_counter()
    optimized = optimize(func, CompileOptions(backend=backend))
    figures["passes"] = time.perf_counter() - start
    figures["instructions"] = len(optimized.body)
    feed = np.linspace(-1, 1, 256, dtype=np.float32)
    if backend == "llvm":
        from flowjit.runtime import cpu
        start = time.perf_counter()
        run, stats = cpu.build(optimized)
        figures["codegen"] = time.perf_counter() - start
        figures.update(stats)
        run([feed])
    else:
        from flowjit.interp.evaluate import evaluate
        evaluate(optimized, [feed])
    return figures


def _tensor_type(tensor):
    from flowjit.ir.core import TensorType
    return TensorType.from_spec(tensor.spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[150, 600, 3000])
    parser.add_argument("--backends", nargs="+", default=["llvm", "eager"])
    parser.add_argument("--gradients", action="store_true", help="also compile dy/dx")
    parser.add_argument("--distinct", action="store_true",
                        help="a different constant in every step: no two kernels alike")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1], args.gradients,
                                 args.distinct)))
        return
    env = dict(os.environ, FLOWJIT_CACHE_DIR="off")
    print(f"{'n':>6} {'backend':>7} {'graph':>7} {'lower':>7} {'passes':>7} {'codegen':>8} "
          f"{'compile':>8} {'kernels':>7} {'emitted':>7} {'segments':>8} {'ms/kernel':>9}")
    for n in args.n:
        for backend in args.backends:
            command = [sys.executable, __file__, "--child", str(n), backend]
            command += ["--gradients"] if args.gradients else []
            command += ["--distinct"] if args.distinct else []
            out = subprocess.run(command, env=env, capture_output=True, text=True)
            if out.returncode:
                print(f"{n:>6} {backend:>7} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            f = json.loads(out.stdout.strip().splitlines()[-1])
            kernels, emitted = f.get("native", 0), f.get("kernels_emitted", "-")
            total = f["lower"] + f["passes"] + f.get("codegen", 0)
            per_kernel = f"{1e3 * f['codegen'] / kernels:9.2f}" if kernels else f"{'-':>9}"
            print(f"{n:>6} {backend:>7} {f['graph']:7.2f} {f['lower']:7.2f} "
                  f"{f['passes']:7.2f} {f.get('codegen', 0):8.2f} "
                  f"{total:8.2f} {kernels:>7} {emitted:>7} {f.get('segments', 0):>8} "
                  f"{per_kernel}",
                  flush=True)


if __name__ == "__main__":
    main()
