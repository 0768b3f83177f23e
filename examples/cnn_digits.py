"""A LeNet-style CNN built with tf.layers, trained with Adam on the digits data
(`flowjit.datasets.load_digits`: 28x28 images, offline) and evaluated on its test set.

    python examples/cnn_digits.py [--steps N]
"""
import argparse

import flowjit as tf
from flowjit.datasets import load_digits


def main(steps: int = 300, batch: int = 64, seed: int = 0) -> float:
    data = load_digits(seed=seed)
    tf.reset_default_graph()
    tf.set_random_seed(seed)
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    training = tf.placeholder_with_default(False, [], name="training")
    images = tf.reshape(x, [-1, 28, 28, 1])
    h = tf.layers.conv2d(images, 32, 5, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    h = tf.layers.conv2d(h, 64, 5, padding="same", activation=tf.nn.relu)
    h = tf.layers.max_pooling2d(h, 2, 2)
    h = tf.layers.dense(tf.layers.flatten(h), 256, activation=tf.nn.relu)
    h = tf.layers.dropout(h, 0.4, training=training)
    logits = tf.layers.dense(h, 10)
    loss = tf.losses.sparse_softmax_cross_entropy(y, logits)
    train = tf.train.AdamOptimizer(1e-3).minimize(loss)
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(1, steps + 1):
            xs, ys = data.train.next_batch(batch)
            _, value = sess.run([train, loss], {x: xs, y: ys, training: True})
            if step % 100 == 0:
                print(f"step {step}: loss {value:.4f}")
        test = sess.run(accuracy, {x: data.test.images, y: data.test.labels})
    print(f"test accuracy {test:.4f}")
    return float(test)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    main(parser.parse_args().steps)
