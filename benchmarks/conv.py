"""Convolution and LSTM workloads (the nn issue): flowjit's LLVM backend vs its eager numpy
interpreter (the reference kernels) and PyTorch (eager, CPU) when importable. Each figure
is the median of REPEATS runs after WARMUP; each workload runs in a fresh process, all its
systems in that one; ratios are flowjit's time over the other's (below 1: flowjit faster).

    python benchmarks/conv.py [--only lenet conv_fwd conv_train lstm] [--repeats N]
                              [--threads N]

--threads N pins every system to N cores and their thread pools to N threads (OpenBLAS,
OpenMP, PyTorch; flowjit's pool follows the affinity): on a shared, loaded machine, thread
pools that spin-wait (OpenBLAS's, PyTorch's) otherwise lose whole time slices and make
single samples seconds long, so compare at --threads 1 there.

Workloads: a LeNet-style train step (conv 5x5x1x32 SAME, max-pool 2, conv 5x5x32x64,
max-pool 2, dense 1024, dense 10, Adam, batch 64 of 28x28); a 3x3x64x64 SAME conv with bias
and ReLU on 32x32x64 inputs at batch 32, forward, and a train step (SGD on the mean of its
output squared); an LSTM (128 units, 28 steps of 28 inputs, batch 128, dense 10, Adam).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict

import numpy as np

import flowjit as tf

WARMUP, REPEATS = 2, 5
WORKLOADS = ("lenet", "conv_fwd", "conv_train", "lstm")


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(WARMUP):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1e3 * statistics.median(samples)


# -- flowjit graphs ---------------------------------------------------------------------------
def lenet_graph():
    x = tf.placeholder(tf.float32, [64, 28, 28, 1])
    y = tf.placeholder(tf.int64, [64])
    h = tf.layers.conv2d(x, 32, 5, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    h = tf.layers.conv2d(h, 64, 5, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    h = tf.layers.dense(tf.layers.flatten(h), 1024, activation=tf.nn.relu)
    logits = tf.layers.dense(h, 10)
    loss = tf.losses.sparse_softmax_cross_entropy(y, logits)
    train = tf.train.AdamOptimizer(1e-3).minimize(loss)
    rng = np.random.default_rng(0)
    feed = {x: rng.random((64, 28, 28, 1), np.float32), y: rng.integers(0, 10, 64)}
    return [train, loss], feed


def conv_graph(training: bool):
    x = tf.placeholder(tf.float32, [32, 32, 32, 64])
    h = tf.layers.conv2d(x, 64, 3, padding="same", activation=tf.nn.relu)
    feed = {x: np.random.default_rng(0).random((32, 32, 32, 64), np.float32)}
    if not training:
        return [h], feed
    loss = tf.reduce_mean(tf.square(h))
    return [tf.train.GradientDescentOptimizer(0.01).minimize(loss), loss], feed


def lstm_graph():
    x = tf.placeholder(tf.float32, [128, 28, 28])
    y = tf.placeholder(tf.int64, [128])
    _, state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(128), x, dtype=tf.float32)
    logits = tf.layers.dense(state.h, 10)
    loss = tf.losses.sparse_softmax_cross_entropy(y, logits)
    train = tf.train.AdamOptimizer(1e-3).minimize(loss)
    rng = np.random.default_rng(0)
    feed = {x: rng.random((128, 28, 28), np.float32), y: rng.integers(0, 10, 128)}
    return [train, loss], feed


GRAPHS = {"lenet": lenet_graph, "conv_fwd": lambda: conv_graph(False),
          "conv_train": lambda: conv_graph(True), "lstm": lstm_graph}


def flowjit_time(name: str, backend: str, repeats: int) -> float:
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        fetches, feed = GRAPHS[name]()
        sess = tf.Session(backend=backend)
        sess.run(tf.global_variables_initializer())
        return median_ms(lambda: sess.run(fetches, feed), repeats)


# -- PyTorch ------------------------------------------------------------------------------------
def torch_time(name: str, repeats: int) -> float:
    import torch
    from torch import nn
    torch.manual_seed(0)
    if name == "lenet":
        model = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(7 * 7 * 64, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
        x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)

        def step():
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        return median_ms(step, repeats)
    if name in ("conv_fwd", "conv_train"):
        conv = nn.Conv2d(64, 64, 3, padding=1)
        x = torch.rand(32, 64, 32, 32)
        if name == "conv_fwd":
            def forward():
                with torch.no_grad():
                    return torch.relu(conv(x))
            return median_ms(forward, repeats)
        optimizer = torch.optim.SGD(conv.parameters(), 0.01)

        def train():
            optimizer.zero_grad()
            loss = torch.relu(conv(x)).square().mean()
            loss.backward()
            optimizer.step()
        return median_ms(train, repeats)
    lstm, dense = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)
    x, y = torch.rand(128, 28, 28), torch.randint(0, 10, (128,))
    optimizer = torch.optim.Adam(list(lstm.parameters()) + list(dense.parameters()), 1e-3)

    def lstm_step():
        optimizer.zero_grad()
        _, (h, _c) = lstm(x)
        loss = nn.functional.cross_entropy(dense(h[-1]), y)
        loss.backward()
        optimizer.step()
    return median_ms(lstm_step, repeats)


def measure(name: str, repeats: int) -> Dict[str, float]:
    result = {"flowjit": flowjit_time(name, "llvm", repeats),
              "eager (numpy)": flowjit_time(name, "eager", max(1, repeats // 2))}
    try:
        import torch  # noqa: F401
    except ImportError:
        return result
    result["PyTorch"] = torch_time(name, repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    env = dict(os.environ)
    if args.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    if args.worker:
        print(json.dumps(measure(args.worker, args.repeats)))
        return
    print(f"cores: {len(os.sched_getaffinity(0))}, medians of {args.repeats} after {WARMUP} "
          f"warm-ups (ms)")
    print("| workload | flowjit (llvm) | eager (numpy) | PyTorch | flowjit/eager | "
          "flowjit/PyTorch |")
    print("|---|---|---|---|---|---|")
    for name in args.only:
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--repeats",
                              str(args.repeats)], capture_output=True, text=True, check=True,
                             env=env)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        fj, eager, torch_ms = row["flowjit"], row["eager (numpy)"], row.get("PyTorch")
        torch_text = f"{torch_ms:.1f}" if torch_ms else "-"
        ratio = f"{fj / torch_ms:.2f}x" if torch_ms else "-"
        print(f"| {name} | {fj:.1f} | {eager:.1f} | {torch_text} | {fj / eager:.2f}x | "
              f"{ratio} |", flush=True)


if __name__ == "__main__":
    main()
