"""flowjit's matmul against numpy (OpenBLAS) shape by shape, through sess.run, interleaved in
one process. Each figure is the median over rounds of the fastest of 3 calls, timed by the
calling thread's CPU time (time.thread_time): on a loaded machine a descheduled thread's
time does not count, so single-core figures stay comparable. On several cores the other
threads' work is not in that time: the calling thread's busy time then estimates the
parallel run time (it waits, spinning, for the last share), and the wall-clock minimum is
given too.

    taskset -c 0 env OPENBLAS_NUM_THREADS=1 python benchmarks/gemm_shapes.py 1024x1024x1024
    python benchmarks/gemm_shapes.py 784x1024x256:ta 1024x128x256:tb   (shape MxKxN, A^T, B^T)

FLOWJIT_CPU=haswell FLOWJIT_CPU_FEATURES=+avx2,+fma (with OPENBLAS_CORETYPE=Haswell for
numpy) measures both systems' AVX2 code on an AVX-512 host.
"""
from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Dict, List

import numpy as np

import flowjit as tf


def best_of_3(fn: Callable[[], object]) -> Dict[str, float]:
    cpu, wall = [], []
    for _ in range(3):
        start_cpu, start_wall = time.thread_time(), time.perf_counter()
        fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return {"cpu": min(cpu), "wall": min(wall)}


def measure(spec: str, rounds: int = 7) -> str:
    dims, *flags = spec.split(":")
    m, k, n = map(int, dims.split("x"))
    ta, tb = "ta" in flags, "tb" in flags
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    with tf.Graph().as_default():
        pa, pb = tf.placeholder(tf.float32, a.shape), tf.placeholder(tf.float32, b.shape)
        c = tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb)
        sess = tf.Session()
    op_a, op_b = (a.T if ta else a), (b.T if tb else b)
    systems = {"flowjit": lambda: sess.run(c, {pa: a, pb: b}), "numpy": lambda: op_a @ op_b}
    for fn in systems.values():
        fn()  # (compiles)
    samples: Dict[str, List[Dict[str, float]]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, fn in systems.items():
            samples[name].append(best_of_3(fn))
    flops = 2.0 * m * n * k
    parts = []
    for name, runs in samples.items():
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = min(r["wall"] for r in runs)
        parts.append(f"{name} {cpu * 1e6:9.1f} us ({flops / cpu / 1e9:6.1f} GFLOP/s; wall min "
                     f"{wall * 1e6:.1f} us)")
    ratio = statistics.median(r["cpu"] for r in samples["numpy"]) / \
        statistics.median(r["cpu"] for r in samples["flowjit"])
    return f"{spec:20s} " + "  ".join(parts) + f"  {ratio:.2f}x numpy"


if __name__ == "__main__":
    for shape in sys.argv[1:] or ["1024x1024x1024", "128x784x256", "16x784x256", "1x784x10"]:
        print(measure(shape), flush=True)
