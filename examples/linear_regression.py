"""Linear regression, as in the seed talk "Introduction to TensorFlow and PyTorch" (Chuang &
Clark, 2017): three features, `Y_hat = X W + b`, mean squared error, minibatch gradient
descent. The talk's housing data are not public; these are synthetic (known weights plus
noise), so the learned weights can be compared with the true ones.

    python examples/linear_regression.py [--epochs 20] [--batch_size 32]
"""
import numpy as np

import flowjit as tf

flags = tf.app.flags
flags.DEFINE_integer("epochs", 20, "passes over the training data")
flags.DEFINE_integer("batch_size", 32, "examples per gradient step")
flags.DEFINE_float("learning_rate", 0.05, "gradient descent step size")
FLAGS = flags.FLAGS

TRUE_W = np.array([[2.0], [-3.0], [0.5]], np.float32)
TRUE_B = 4.0
NOISE = 0.5


def make_data(n, rng):
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ TRUE_W + TRUE_B + NOISE * rng.normal(size=(n, 1)).astype(np.float32)
    return x, y


def get_minibatches(x, y, batch_size):
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]


def main(_):
    rng = np.random.default_rng(0)
    X_train, Y_train = make_data(1000, rng)
    X_test, Y_test = make_data(200, rng)

    X = tf.placeholder(tf.float32, [None, 3])
    Y = tf.placeholder(tf.float32, [None, 1])
    W = tf.get_variable("weights", [3, 1], initializer=tf.random_normal_initializer(seed=1))
    b = tf.get_variable("intercept", [1], initializer=tf.constant_initializer(0))
    Y_hat = tf.matmul(X, W) + b
    cost = tf.reduce_mean(tf.square(Y_hat - Y))
    optimizer = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(cost)

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        print("epoch 0 train MSE %.4f" % sess.run(cost, {X: X_train, Y: Y_train}))
        for epoch in range(FLAGS.epochs):
            for X_batch, Y_batch in get_minibatches(X_train, Y_train, FLAGS.batch_size):
                sess.run(optimizer, feed_dict={X: X_batch, Y: Y_batch})
            print("epoch %d train MSE %.4f" % (epoch + 1,
                                                sess.run(cost, {X: X_train, Y: Y_train})))
        Y_predicted = sess.run(Y_hat, feed_dict={X: X_test})
        weights, intercept = sess.run([W, b])
    print("learned W %s b %.3f (true W %s b %.1f)" % (np.round(weights.ravel(), 3), intercept[0],
                                                     TRUE_W.ravel(), TRUE_B))
    rmse = float(np.sqrt(np.mean(np.square(Y_test - Y_predicted))))
    baseline = float(np.std(Y_test))  # predicting the mean
    print("baseline test RMSE (predict the mean): %.4f" % baseline)
    print("final test RMSE: %.4f (noise level %.2f)" % (rmse, NOISE))


if __name__ == "__main__":
    tf.app.run()
