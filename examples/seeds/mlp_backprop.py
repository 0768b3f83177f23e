# Seed: Sebastian Raschka, slides 48-52: the same MLP trained three ways, "(very) low-level
# backprop", "low-level backprop" with tf.gradients, and "convenient" minimize(). The
# slides use MNIST; these MNIST-shaped data are synthetic so the program runs offline.
import sys

import numpy as np

import flowjit as tf

n_input, n_hidden_1, n_classes = 784, 64, 10
learning_rate, batch_size, training_epochs = 0.1, 32, 3


def build(version):
    g = tf.Graph()
    with g.as_default():
        tf.set_random_seed(123)
        tf_x = tf.placeholder(tf.float32, [None, n_input], name='features')
        tf_y = tf.placeholder(tf.float32, [None, n_classes], name='targets')
        weights = {
            'h1': tf.Variable(tf.truncated_normal([n_input, n_hidden_1], stddev=0.1)),
            'out': tf.Variable(tf.truncated_normal([n_hidden_1, n_classes], stddev=0.1))}
        biases = {
            'b1': tf.Variable(tf.zeros([n_hidden_1])),
            'out': tf.Variable(tf.zeros([n_classes]))}
        h1_z = tf.add(tf.matmul(tf_x, weights['h1']), biases['b1'])
        h1_act = tf.nn.sigmoid(h1_z)
        out_z = tf.matmul(h1_act, weights['out']) + biases['out']
        out_act = tf.nn.softmax(out_z, name='predicted_probabilities')

        # Loss
        loss = tf.nn.softmax_cross_entropy_with_logits(logits=out_z, labels=tf_y)
        cost = tf.reduce_mean(loss, name='cost')

        if version == "very-low-level":
            # input/output dim: [n_samples, n_classlabels]
            sigma_out = (out_act - tf_y) / batch_size
            # input/output dim: [n_samples, n_hidden_1]
            softmax_derivative_h1 = h1_act * (1. - h1_act)
            # input dim: [n_samples, n_classlabels] dot [n_classlabels, n_hidden]
            sigma_h = (tf.matmul(sigma_out, tf.transpose(weights['out'])) *
                       softmax_derivative_h1)
            grad_w_h1 = tf.matmul(tf.transpose(tf_x), sigma_h)
            grad_b_h1 = tf.reduce_sum(sigma_h, axis=0)
            grad_w_out = tf.matmul(tf.transpose(h1_act), sigma_out)
            grad_b_out = tf.reduce_sum(sigma_out, axis=0)
            upd_w_1 = tf.assign(weights['h1'], weights['h1'] - learning_rate * grad_w_h1)
            upd_b_1 = tf.assign(biases['b1'], biases['b1'] - learning_rate * grad_b_h1)
            upd_w_out = tf.assign(weights['out'], weights['out'] - learning_rate * grad_w_out)
            upd_b_out = tf.assign(biases['out'], biases['out'] - learning_rate * grad_b_out)
            train = tf.group(upd_w_1, upd_b_1, upd_w_out, upd_b_out, name='train')
        elif version == "low-level":
            dc_dw_out, dc_db_out = tf.gradients(cost, [weights['out'], biases['out']])
            dc_dw_1, dc_db_1 = tf.gradients(cost, [weights['h1'], biases['b1']])
            upd_w_1 = tf.assign(weights['h1'], weights['h1'] - learning_rate * dc_dw_1)
            upd_b_1 = tf.assign(biases['b1'], biases['b1'] - learning_rate * dc_db_1)
            upd_w_out = tf.assign(weights['out'], weights['out'] - learning_rate * dc_dw_out)
            upd_b_out = tf.assign(biases['out'], biases['out'] - learning_rate * dc_db_out)
            train = tf.group(upd_w_1, upd_b_1, upd_w_out, upd_b_out, name='train')
        else:
            optimizer = tf.train.GradientDescentOptimizer(learning_rate=learning_rate)
            train = optimizer.minimize(cost, name='train')
    return g, [weights['h1'], biases['b1'], weights['out'], biases['out']]


def train_version(version, images, labels):
    g, params = build(version)
    with tf.Session(graph=g) as sess:
        sess.run(tf.global_variables_initializer())
        for epoch in range(training_epochs):
            avg_cost = 0.
            total_batch = len(images) // batch_size
            for i in range(total_batch):
                batch_x = images[i * batch_size:(i + 1) * batch_size]
                batch_y = labels[i * batch_size:(i + 1) * batch_size]
                _, c = sess.run(['train', 'cost:0'], feed_dict={'features:0': batch_x,
                                                                'targets:0': batch_y})
                avg_cost += c
            print("%s: epoch %d cost %.6f" % (version, epoch + 1, avg_cost / total_batch))
        return sess.run(params)


def synthetic_mnist(n=256, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 1, (n_classes, n_input)).astype(np.float32)
    y = rng.integers(0, n_classes, n)
    x = np.clip(centers[y] + 0.3 * rng.standard_normal((n, n_input)), 0, 1).astype(np.float32)
    return x, np.eye(n_classes, dtype=np.float32)[y]


if __name__ == "__main__":
    images, labels = synthetic_mnist()
    results = {v: train_version(v, images, labels)
               for v in ("very-low-level", "low-level", "convenient")}
    status = 0
    for v in ("low-level", "convenient"):
        worst = max(float(np.max(np.abs(a - b))) for a, b in
                    zip(results["very-low-level"], results[v]))
        same = worst < 1e-5  # float32 rounding differences only
        print("%s vs very-low-level: max weight difference %.2e (%s)"
              % (v, worst, "same weights" if same else "DIFFERENT"))
        status |= not same
    sys.exit(status)
