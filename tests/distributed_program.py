"""The program tests/test_distributed.py runs as 1 or 2 processes (not a test itself).

    distributed_program.py train OUT STEPS GLOBAL_BATCH   each rank trains a small MLP on its
        share of every global batch (size() ranks x GLOBAL_BATCH / size() rows) and writes
        OUT-rank<r>.npz: the loss averaged over the ranks at each step, the final variables
    distributed_program.py collectives   checks each collective's value on every rank
    distributed_program.py fail   rank 1 raises before the first collective
    distributed_program.py hang   rank 1 sleeps past the collective timeout
"""
import sys
import time

import numpy as np

import flowjit as tf
import flowjit.distribute as hvd


def train(out: str, steps: int, global_batch: int) -> None:
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    share = global_batch // size
    rng = np.random.RandomState(0)  # the same data on every rank; each takes its rows
    images = rng.randn(steps * global_batch, 12).astype(np.float32)
    labels = (images[:, :3].sum(1) > 0).astype(np.int32)
    tf.set_random_seed(1 + rank)  # different initial values: the broadcast makes them rank 0's
    x = tf.placeholder(tf.float32, [share, 12])
    y = tf.placeholder(tf.int32, [share])
    hidden = tf.layers.dense(x, 16, activation=tf.nn.relu)
    logits = tf.layers.dense(hidden, 2)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                         logits=logits))
    mean_loss = hvd.allreduce(loss)  # (equal shares: the mean over the global batch)
    optimizer = hvd.DistributedOptimizer(tf.train.MomentumOptimizer(0.1, 0.9))
    train_op = optimizer.minimize(loss)
    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(hvd.broadcast_global_variables(0))
        for step in range(steps):
            rows = slice(step * global_batch + rank * share,
                         step * global_batch + (rank + 1) * share)
            value, _ = sess.run([mean_loss, train_op], {x: images[rows], y: labels[rows]})
            losses.append(value)
        variables = {v.op.name: sess.run(v) for v in tf.global_variables()}
    np.savez(f"{out}-rank{rank}.npz", losses=np.array(losses), **variables)


def collectives() -> None:
    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    x = tf.constant(np.full((2, 2), rank + 1.0, np.float32))
    gathered = hvd.allgather(x)
    mine = tf.constant([rank + 1.0, 10.0])
    total = hvd.allreduce(mine, op=hvd.Sum)
    half = hvd.allreduce(mine, compression=hvd.Compression.fp16)
    root = hvd.broadcast(mine, 1)
    (grad,) = tf.gradients(tf.reduce_sum(hvd.allgather(mine[None, :]) * 2.0), [mine])
    with tf.Session() as sess:
        values = sess.run([gathered, total, half, root, grad])
    expected = [np.concatenate([np.full((2, 2), r + 1.0) for r in range(size)]),
                [sum(range(1, size + 1)), 10.0 * size], [(size + 1) / 2, 10.0],
                [2.0, 10.0], [2.0 * size, 2.0 * size]]
    for value, want in zip(values, expected):
        np.testing.assert_allclose(value, want)
    if rank == 0:  # (a rank whose check fails aborts the job: the exit status tells)
        print("collectives ok", flush=True)


def collective_after(delay: str) -> None:
    hvd.init()
    if hvd.rank() == 1:
        if delay == "fail":
            raise RuntimeError("rank 1 fails on purpose")
        time.sleep(60)
    with tf.Session() as sess:
        sess.run(hvd.allreduce(tf.constant([1.0, 2.0])))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "collectives":
        collectives()
    else:
        collective_after(sys.argv[1])
