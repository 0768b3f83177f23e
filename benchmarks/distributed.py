"""flowjit.distribute on this machine, and a model of it on many: MPI allreduce bandwidth,
and the train step of an MLP and a small CNN as 1 and 2 processes; then the step time the
ring-allreduce model predicts for 8-64 workers from the measured compute time.

    python benchmarks/distributed.py [--steps 20] [--sizes-mb 0.001 0.1 1 8 64]

The script runs itself under flowjitrun for each measurement (rank 0 reports). Each
process keeps the same batch per process (weak scaling, as data-parallel training does).
Figures are medians after WARMUP steps. "1 process, 1 core" pins the process to one core
(FLOWJIT_THREADS=1): it is the compute of one rank of the 2-process run on this machine,
where each rank gets one of the two cores.

Model (per step, N workers, G gradient bytes, ring allreduce, bandwidth B per link):
    t_comm(N) = 2 (N-1)/N * G / B + 2 (N-1) * latency
    t_step(N) = t_compute + t_comm(N)               (no overlap: an upper bound)
              = max(t_compute, t_comm(N))           (perfect overlap: a lower bound)
    efficiency = t_compute / t_step(N); speedup = N * efficiency.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

WARMUP = 3
HERE = Path(__file__).resolve()
LATENCY_S = 20e-6          # per message hop on a datacentre network (assumption)
NETWORKS_GBPS = (10, 25, 100)
WORKERS = (8, 16, 32, 64)


# -- the worker (one rank) ----------------------------------------------------------------------
def build(model: str, batch: int, distributed: bool):
    import flowjit as tf
    import flowjit.distribute as hvd
    tf.set_random_seed(0)
    if model == "mlp":
        x = tf.placeholder(tf.float32, [batch, 784])
        h = tf.layers.dense(x, 512, activation=tf.nn.relu)
        h = tf.layers.dense(h, 512, activation=tf.nn.relu)
        feed_shape = (batch, 784)
    else:
        x = tf.placeholder(tf.float32, [batch, 28, 28, 1])
        h = tf.layers.conv2d(x, 16, 3, padding="same", activation=tf.nn.relu)
        h = tf.layers.max_pooling2d(h, 2, 2)
        h = tf.layers.conv2d(h, 32, 3, padding="same", activation=tf.nn.relu)
        h = tf.layers.max_pooling2d(h, 2, 2)
        h = tf.layers.dense(tf.layers.flatten(h), 128, activation=tf.nn.relu)
        feed_shape = (batch, 28, 28, 1)
    y = tf.placeholder(tf.int32, [batch])
    logits = tf.layers.dense(h, 10)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                         logits=logits))
    optimizer = tf.train.MomentumOptimizer(0.01, 0.9)
    if distributed:
        optimizer = hvd.DistributedOptimizer(optimizer)
    train = optimizer.minimize(loss)
    grad_bytes = sum(int(np.prod(v.shape.as_list())) * 4 for v in tf.trainable_variables())
    rng = np.random.RandomState(0)
    feed = {x: rng.rand(*feed_shape).astype(np.float32),
            y: rng.randint(0, 10, batch).astype(np.int32)}
    return tf, train, feed, grad_bytes


def step_time(model: str, batch: int, steps: int, distributed: bool) -> dict:
    import flowjit.distribute as hvd
    hvd.init()
    tf, train, feed, grad_bytes = build(model, batch, distributed)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        times = []
        for i in range(WARMUP + steps):
            start = time.perf_counter()
            sess.run(train, feed)
            times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times[WARMUP:]), "grad_bytes": grad_bytes}


def bandwidth(sizes_mb, repeats: int) -> dict:
    """Seconds per allreduce of each size, through flowjit's communication thread (as the
    ops run it) and with mpi4py directly."""
    from flowjit.runtime import collectives, mpi
    world = mpi.world()
    out = {}
    for mb in sizes_mb:
        data = np.ones(max(1, int(mb * 2 ** 20) // 4), np.float32)
        for how in ("flowjit", "mpi4py"):
            times = []
            for _ in range(WARMUP + repeats):
                world.comm.Barrier()
                start = time.perf_counter()
                if how == "flowjit":
                    collectives.allreduce(data, collectives.SUM)
                else:
                    world.comm.Allreduce(world.mpi.IN_PLACE, data.copy())
                times.append(time.perf_counter() - start)
            out[f"{float(mb)}:{how}"] = statistics.median(times[WARMUP:])
    return out


def worker(args) -> None:
    import flowjit.distribute as hvd
    if args.what == "bandwidth":
        result = bandwidth(args.sizes_mb, args.steps)
    else:
        result = step_time(args.what, args.batch, args.steps, args.distributed)
    if hvd.rank() == 0:
        print("RESULT " + json.dumps(result), flush=True)


# -- the driver ---------------------------------------------------------------------------------
def launch(processes: int, *args, **env) -> dict:
    command = [sys.executable, "-m", "flowjit.distribute.run", "-np", str(processes),
               sys.executable, str(HERE), "--worker", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1", **env))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    (line,) = [out for out in done.stdout.splitlines() if out.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def ring_step(t_compute: float, grad_bytes: int, workers: int, gbps: float,
              overlap: bool) -> float:
    t_comm = 2 * (workers - 1) / workers * grad_bytes / (gbps * 1e9 / 8) + \
        2 * (workers - 1) * LATENCY_S
    return max(t_compute, t_comm) if overlap else t_compute + t_comm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[0.001, 0.1, 1, 8, 64])
    parser.add_argument("--batch", type=int, default=64, help="examples per process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--what", default="bandwidth", help=argparse.SUPPRESS)
    parser.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    sizes = [str(s) for s in args.sizes_mb]
    common = ["--steps", str(args.steps), "--batch", str(args.batch)]
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores; MPI: {_mpi_version()}")
    print("\nallreduce of float32, 2 processes (algorithm bandwidth = bytes / time)")
    print(f"{'MB':>8} {'flowjit us':>11} {'MB/s':>8} {'mpi4py us':>10} {'MB/s':>8}")
    times = launch(2, "--what", "bandwidth", "--sizes-mb", *sizes, "--steps", str(args.steps))
    for mb in args.sizes_mb:
        ours, raw = times[f"{float(mb)}:flowjit"], times[f"{float(mb)}:mpi4py"]
        print(f"{mb:>8g} {ours * 1e6:>11.0f} {mb / ours:>8.0f} {raw * 1e6:>10.0f} "
              f"{mb / raw:>8.0f}")
    print(f"\ntrain step (batch {args.batch} per process), median ms")
    print(f"{'model':>6} {'grad MB':>8} {'1 proc':>8} {'1 proc 1 core':>14} {'2 procs':>8} "
          f"{'comm+sync':>10}")
    measured = {}
    for model in ("mlp", "cnn"):
        one = launch(1, "--what", model, *common)
        one_core = launch(1, "--what", model, *common, FLOWJIT_THREADS="1")
        two = launch(2, "--what", model, "--distributed", *common)
        measured[model] = (one_core["step_s"], one["grad_bytes"])
        print(f"{model:>6} {one['grad_bytes'] / 2 ** 20:>8.2f} {one['step_s'] * 1e3:>8.2f} "
              f"{one_core['step_s'] * 1e3:>14.2f} {two['step_s'] * 1e3:>8.2f} "
              f"{(two['step_s'] - one_core['step_s']) * 1e3:>10.2f}")
    print(f"\nmodelled step time, ms (no overlap / perfect overlap), from the 1-core compute "
          f"time; ring allreduce, {LATENCY_S * 1e6:g} us per hop")
    for model, (t_compute, grad_bytes) in measured.items():
        for gbps in NETWORKS_GBPS:
            cells = []
            for n in WORKERS:
                slow = ring_step(t_compute, grad_bytes, n, gbps, overlap=False)
                fast = ring_step(t_compute, grad_bytes, n, gbps, overlap=True)
                cells.append(f"{slow * 1e3:6.2f}/{fast * 1e3:<6.2f} ({t_compute / slow:4.0%})")
            print(f"{model:>4} {gbps:>4} Gb/s  " + "  ".join(
                f"N={n}: {c}" for n, c in zip(WORKERS, cells)))


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def _mpi_version() -> str:
    from mpi4py import MPI
    return MPI.Get_library_version().splitlines()[0].strip()


if __name__ == "__main__":
    main()
