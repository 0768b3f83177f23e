"""Going deeper on handwritten digits, as in the seed talk "Introduction to TensorFlow and
PyTorch" (Chuang & Clark, 2017): softmax regression, then a hidden layer without and with a
ReLU, then two ReLU layers, each trained the same way; the program prints the talk's table
of train and test accuracy (on MNIST the talk got 92.5, 88.8, 95.2 and more). The digits are
scikit-learn's, drawn 28x28 like MNIST (`flowjit.datasets.load_digits`); the initial
weights have stddev 0.05, where the slides use `random_normal_initializer()`'s 1.0.

    python examples/mlp_digits.py [--epochs 40] [--hidden_nodes 128]
"""
import numpy as np

import flowjit as tf
from flowjit.datasets import load_digits

flags = tf.app.flags
flags.DEFINE_integer("epochs", 40, "passes over the training data, per model")
flags.DEFINE_integer("batch_size", 50, "examples per gradient step")
flags.DEFINE_integer("hidden_nodes", 128, "units per hidden layer")
flags.DEFINE_float("learning_rate", 0.05, "gradient descent step size")
FLAGS = flags.FLAGS

# (name, hidden layers, activation): the talk's progression
MODELS = [("softmax regression", 0, None), ("1 hidden layer, linear", 1, None),
          ("1 hidden layer, ReLU", 1, tf.nn.relu), ("2 hidden layers, ReLU", 2, tf.nn.relu)]


def build(hidden_layers, activation):
    X = tf.placeholder(tf.float32, [None, 28 * 28])
    Y = tf.placeholder(tf.float32, [None, 10])
    layer, width = X, 784
    for i in range(hidden_layers):
        W = tf.get_variable("weights%d" % (i + 1), [width, FLAGS.hidden_nodes],
                            initializer=tf.random_normal_initializer(stddev=0.05, seed=i))
        b = tf.get_variable("bias%d" % (i + 1), [FLAGS.hidden_nodes],
                            initializer=tf.constant_initializer(0))
        layer = tf.matmul(layer, W) + b
        if activation is not None:
            layer = activation(layer)
        width = FLAGS.hidden_nodes
    W = tf.get_variable("weights_out", [width, 10],
                        initializer=tf.random_normal_initializer(stddev=0.05, seed=9))
    b = tf.get_variable("bias_out", [10], initializer=tf.constant_initializer(0))
    y_logits = tf.matmul(layer, W) + b
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=y_logits, labels=Y))
    optimizer = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(cost)
    return X, Y, cost, optimizer, tf.argmax(y_logits, 1)


def train_and_test(hidden_layers, activation, digits):
    with tf.Graph().as_default():
        X, Y, cost, optimizer, predict = build(hidden_layers, activation)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            first = sess.run(cost, {X: digits.train.images, Y: digits.train.labels})
            for _ in range(FLAGS.epochs):
                for start in range(0, digits.train.num_examples, FLAGS.batch_size):
                    batch = slice(start, start + FLAGS.batch_size)
                    sess.run(optimizer, {X: digits.train.images[batch],
                                         Y: digits.train.labels[batch]})
            last = sess.run(cost, {X: digits.train.images, Y: digits.train.labels})
            accuracy = [np.mean(sess.run(predict, {X: part.images}) ==
                                np.argmax(part.labels, 1))
                        for part in (digits.train, digits.test)]
    return first, last, accuracy


def main(_):
    digits = load_digits(one_hot=True)
    print("%-24s %10s %10s %14s %14s" % ("model", "cost", "-> cost", "train accuracy",
                                         "test accuracy"))
    for name, hidden_layers, activation in MODELS:
        first, last, (train, test) = train_and_test(hidden_layers, activation, digits)
        print("%-24s %10.4f %10.4f %14.1f %14.1f" % (name, first, last, 100 * train,
                                                     100 * test))
    print("final test accuracy: %.4f (%s)" % (test, MODELS[-1][0]))


if __name__ == "__main__":
    tf.app.run()
