"""When to split a kernel across cores: times kernels of growing size with the split forced
on and off, in one process. `python benchmarks/thresholds.py` (the PARALLEL_MIN_* constants
of flowjit/runtime/cpu.py come from this)."""
from __future__ import annotations

import time

import numpy as np

import flowjit as tf
from flowjit.runtime import cpu


def median_us(fn, number: int = 50, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return sorted(times)[repeats // 2] * 1e6


def run_case(build, split: bool) -> float:
    cpu.PARALLEL_MIN_WORK["contraction"] = 1 if split else 1 << 62
    cpu.PARALLEL_MIN_ELEMENTS = 1 if split else 1 << 62
    with tf.Graph().as_default():
        feed, fetch, value = build()
        sess = tf.Session()
        sess.run(fetch, {feed: value})
        return median_us(lambda: sess.run(fetch, {feed: value}))


def chain(log_n: int):
    def build():
        x = tf.placeholder(tf.float32, [1 << log_n])
        y = tf.nn.relu(1.5 * x + 0.25) * tf.sigmoid(x) - 0.5 * tf.tanh(x)
        return x, y, np.random.default_rng(0).standard_normal(1 << log_n).astype(np.float32)
    return build


def matmul(m: int, n: int = 256, k: int = 256):
    def build():
        a = tf.placeholder(tf.float32, [m, k])
        w = tf.constant(np.random.default_rng(0).standard_normal((k, n)).astype(np.float32))
        return a, tf.matmul(a, w), np.ones((m, k), np.float32)
    return build


def main() -> None:
    saved = dict(cpu.PARALLEL_MIN_WORK), cpu.PARALLEL_MIN_ELEMENTS
    print("| kernel | work | 1 core | all cores | speed-up |")
    print("|---|---|---|---|---|")
    cases = [(f"fused chain 2^{e}", f"{1 << e} elements", chain(e)) for e in (12, 14, 16, 18, 20)]
    cases += [(f"matmul {m}x256x256", f"{2 * m * 256 * 256} flops", matmul(m))
              for m in (2, 8, 32, 128)]
    for name, work, build in cases:
        one, split = run_case(build, False), run_case(build, True)
        print(f"| {name} | {work} | {one:.1f} us | {split:.1f} us | {one / split:.2f}x |",
              flush=True)
    cpu.PARALLEL_MIN_WORK.update(saved[0])
    cpu.PARALLEL_MIN_ELEMENTS = saved[1]


if __name__ == "__main__":
    main()
