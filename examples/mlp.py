"""A 784-256-128-10 ReLU MLP trained with SGD on softmax cross-entropy: the graph whose
compilation `ir_dumps/mlp/` shows stage by stage (`make ir-dumps`).

The data are synthetic (MNIST-shaped: 784 features, 10 classes) so that the program runs
anywhere without downloads.
"""
import numpy as np

import flowjit as tf

BATCH, STEPS = 32, 20

tf.set_random_seed(0)
x = tf.placeholder(tf.float32, [None, 784], name="x")
y = tf.placeholder(tf.int64, [None], name="y")
with tf.variable_scope("layer1"):
    w1 = tf.get_variable("W", [784, 256], initializer=tf.truncated_normal_initializer(stddev=0.05))
    b1 = tf.get_variable("b", [256], initializer=tf.zeros_initializer())
    h1 = tf.nn.relu(tf.matmul(x, w1) + b1)
with tf.variable_scope("layer2"):
    w2 = tf.get_variable("W", [256, 128], initializer=tf.truncated_normal_initializer(stddev=0.05))
    b2 = tf.get_variable("b", [128], initializer=tf.zeros_initializer())
    h2 = tf.nn.relu(tf.matmul(h1, w2) + b2)
with tf.variable_scope("logits"):
    w3 = tf.get_variable("W", [128, 10], initializer=tf.truncated_normal_initializer(stddev=0.05))
    b3 = tf.get_variable("b", [10], initializer=tf.zeros_initializer())
    logits = tf.matmul(h2, w3) + b3
loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits),
                      name="loss")
train = tf.train.GradientDescentOptimizer(0.1).minimize(loss, name="train")
accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32),
                          name="accuracy")

rng = np.random.default_rng(0)
centers = rng.standard_normal((10, 784)).astype(np.float32)
labels = rng.integers(0, 10, size=BATCH * STEPS)
images = centers[labels] + 0.5 * rng.standard_normal((labels.size, 784)).astype(np.float32)

with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for step in range(STEPS):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        value, _ = sess.run([loss, train], {x: images[batch], y: labels[batch]})
        if step % 5 == 0 or step == STEPS - 1:
            print(f"step {step:2d}  loss {value:.4f}")
    print("accuracy on the training data:", sess.run(accuracy, {x: images, y: labels}))
