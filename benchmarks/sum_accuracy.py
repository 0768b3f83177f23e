"""The error of float32 sums and means, compiled and eager, against the exact sum (math.fsum
of the same float32 values), in units of float32's last place at the result (ulp).

    python benchmarks/sum_accuracy.py [--max-log2 24]

For each size 2^10 .. 2^max and three kinds of data (all 0.1: errors cannot cancel; uniform
[0, 1); standard normal) it reports the worst error of a full sum, of row sums and of column
sums (the array as [2^(k/2), 2^(k-k/2)]), with numpy's own float32 np.sum as the reference.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import flowjit as tf


def ulps(got: np.ndarray, exact: np.ndarray) -> float:
    """The largest |got - exact| in ulps of float32 at the exact value."""
    exact = np.asarray(exact, np.float64)
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - exact) / spacing))


def exact_sums(value: np.ndarray, axis) -> np.ndarray:
    moved = np.moveaxis(value, axis, -1) if axis is not None else value.reshape(1, -1)
    return np.array([math.fsum(row) for row in moved.reshape(-1, moved.shape[-1])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-log2", type=int, default=24)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'n':>9} {'data':<8} {'what':<5} " + " ".join(f"{s:>8}" for s in
                                                        ("llvm", "eager", "np.sum")))
    for k in range(10, args.max_log2 + 1, 2):
        n = 1 << k
        shape = (1 << (k // 2), 1 << (k - k // 2))
        for data, value in [("0.1", np.full(n, 0.1, np.float32)),
                            ("uniform", rng.random(n, np.float32)),
                            ("normal", rng.standard_normal(n, np.float32))]:
            square = value.reshape(shape)
            for what, axis, array in [("all", None, value), ("rows", 1, square),
                                      ("cols", 0, square)]:
                exact = exact_sums(array, axis)
                errors = []
                for backend in ("llvm", "eager"):
                    with tf.Graph().as_default():
                        x = tf.placeholder(tf.float32, array.shape)
                        with tf.Session(backend=backend) as sess:
                            errors.append(ulps(sess.run(tf.reduce_sum(x, axis), {x: array}),
                                               exact))
                errors.append(ulps(np.sum(array, axis), exact))
                print(f"{n:>9} {data:<8} {what:<5} " + " ".join(f"{e:>8.2f}" for e in errors))


if __name__ == "__main__":
    main()
