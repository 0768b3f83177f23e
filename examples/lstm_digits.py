"""An LSTM classifier of the digits data: each 28x28 image is a sequence of 28 rows of 28
pixels (time steps), the last output goes through a dense layer; Adam, then the test
accuracy. The rnn is unrolled when the graph is built (its 28 steps are static).

    python examples/lstm_digits.py [--steps N]
"""
import argparse

import flowjit as tf
from flowjit.datasets import load_digits


def main(steps: int = 300, batch: int = 64, units: int = 128, seed: int = 0) -> float:
    data = load_digits(seed=seed)
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    rows = tf.reshape(x, [-1, 28, 28])
    cell = tf.nn.rnn_cell.BasicLSTMCell(units)
    outputs, state = tf.nn.dynamic_rnn(cell, rows, dtype=tf.float32)
    logits = tf.layers.dense(state.h, 10)
    loss = tf.losses.sparse_softmax_cross_entropy(y, logits)
    train = tf.train.AdamOptimizer(3e-3).minimize(loss)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(1, steps + 1):
            xs, ys = data.train.next_batch(batch)
            _, value = sess.run([train, loss], {x: xs, y: ys})
            if step % 100 == 0:
                print(f"step {step}: loss {value:.4f}")
        test = sess.run(accuracy, {x: data.test.images, y: data.test.labels})
    print(f"test accuracy {test:.4f}")
    return float(test)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
