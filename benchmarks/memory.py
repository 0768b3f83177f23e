"""Memory under a recompile storm and under a long training run: the process's resident set
(RSS) must stay bounded, whatever the number of distinct shapes fed, and flat over steps.

    python benchmarks/memory.py [--shapes 1000] [--steps 20000]

Part 1 feeds one graph (a small MLP's forward pass) `--shapes` distinct batch sizes in one
Session (each is a new executable, with its own kernels; the Session keeps
FLOWJIT_CACHE_SIZE of them), then closes the Session. Part 2 runs `--steps` training
steps of a small MLP at one batch size. Each part runs in a fresh process; each prints its
RSS at checkpoints and the number of compiled LLVM modules alive.
"""
from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def live_modules() -> int:
    from flowjit.codegen.target import CompiledModule
    return sum(isinstance(o, CompiledModule) for o in gc.get_objects())


def mlp(batch=None):
    import flowjit as tf
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, [batch, 64], name="x")
    y = tf.placeholder(tf.int32, [batch], name="y")
    h = x
    for i, (m, n) in enumerate([(64, 32), (32, 10)]):
        w = tf.Variable(tf.truncated_normal([m, n], stddev=0.1), name=f"W{i}")
        b = tf.Variable(tf.zeros([n]), name=f"b{i}")
        h = tf.matmul(h, w) + b
        if i == 0:
            h = tf.nn.relu(h)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
    train = tf.train.GradientDescentOptimizer(0.01).minimize(loss)
    return x, y, h, loss, train


def shapes_storm(shapes: int) -> None:
    import numpy as np
    import flowjit as tf
    x, _, logits, _, _ = mlp()
    rng = np.random.default_rng(0)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    print(f"start: {rss_mib():.0f} MiB")
    import warnings
    warnings.simplefilter("ignore", RuntimeWarning)  # the "recompiled N times" warning
    for batch in range(1, shapes + 1):
        sess.run(logits, {x: rng.standard_normal((batch, 64)).astype(np.float32)})
        if batch in (10, 100) or batch % 250 == 0:
            print(f"after {batch} batch sizes: {rss_mib():.0f} MiB, "
                  f"{live_modules()} compiled modules alive")
    sess.close()
    gc.collect()
    print(f"after sess.close(): {rss_mib():.0f} MiB, {live_modules()} compiled modules alive")


def training(steps: int) -> None:
    import numpy as np
    import flowjit as tf
    x, y, _, loss, train = mlp(128)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((128, 64)).astype(np.float32)
    labels = rng.integers(0, 10, 128).astype(np.int32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        print(f"start: {rss_mib():.0f} MiB")
        checkpoints = sorted({100, 1000, steps // 2, steps})
        for step in range(1, steps + 1):
            sess.run([loss, train], {x: images, y: labels})
            if step in checkpoints:
                print(f"after {step} steps: {rss_mib():.0f} MiB, "
                      f"{live_modules()} compiled modules alive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--part", choices=["shapes", "training"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "shapes":
        shapes_storm(args.shapes)
        return
    if args.part == "training":
        training(args.steps)
        return
    for part, title in [("shapes", f"{args.shapes} distinct batch sizes, one Session"),
                        ("training", f"{args.steps} training steps of a small MLP")]:
        print(f"== {title}", flush=True)
        subprocess.run([sys.executable, __file__, "--part", part, "--shapes", str(args.shapes),
                        "--steps", str(args.steps)], check=True, env=os.environ.copy())


if __name__ == "__main__":
    main()
