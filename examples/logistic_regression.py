"""Softmax ("multinomial logistic") regression on handwritten digits, as in the seed talk
"Introduction to TensorFlow and PyTorch" (Chuang & Clark, 2017), which reached 92.5% on
MNIST. The digits are scikit-learn's, drawn 28x28 like MNIST (`flowjit.datasets.load_digits`),
so the program runs offline.

    python examples/logistic_regression.py [--epochs 100] [--batch_size 50]
"""
import numpy as np

import flowjit as tf
from flowjit.datasets import load_digits

flags = tf.app.flags
flags.DEFINE_integer("epochs", 100, "passes over the training data")
flags.DEFINE_integer("batch_size", 50, "examples per gradient step")
flags.DEFINE_float("learning_rate", 0.05, "gradient descent step size")
FLAGS = flags.FLAGS


def get_minibatches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]


def main(_):
    digits = load_digits(one_hot=True)
    X_train, Y_train = digits.train.images, digits.train.labels
    X_test, Y_test = digits.test.images, digits.test.labels

    # X = vector length 784 (= 28 x 28 pixels), Y = one-hot vectors
    X = tf.placeholder(tf.float32, [None, 28 * 28])
    Y = tf.placeholder(tf.float32, [None, 10])
    W = tf.get_variable("weights", [784, 10], initializer=tf.random_normal_initializer(seed=1))
    b = tf.get_variable("bias", [10], initializer=tf.constant_initializer(0))
    Y_logits = tf.matmul(X, W) + b
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=Y_logits, labels=Y))
    optimizer = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(cost)
    predict = tf.argmax(Y_logits, 1)

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(FLAGS.epochs):
            for X_batch, Y_batch in get_minibatches(X_train, Y_train, FLAGS.batch_size):
                sess.run(optimizer, feed_dict={X: X_batch, Y: Y_batch})
            print("epoch %d train cost %.4f" % (epoch + 1,
                                                 sess.run(cost, {X: X_train, Y: Y_train})))
        train_predictions = sess.run(predict, feed_dict={X: X_train})
        predictions = sess.run(predict, feed_dict={X: X_test})
    train_accuracy = np.mean(np.argmax(Y_train, axis=1) == train_predictions)
    accuracy = np.mean(np.argmax(Y_test, axis=1) == predictions)
    print("train accuracy: %.4f" % train_accuracy)
    print("final test accuracy: %.4f (%d test digits)" % (accuracy, len(Y_test)))


if __name__ == "__main__":
    tf.app.run()
