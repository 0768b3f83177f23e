# Seed: Sebastian Raschka, slides 42-43: tf.gradients of relu(w*x + b) at x=3.
import flowjit as tf

g = tf.Graph()
with g.as_default() as g:
    x = tf.placeholder(dtype=tf.float32, shape=None, name='x')
    w = tf.Variable(initial_value=2, dtype=tf.float32, name='w')
    b = tf.Variable(initial_value=1, dtype=tf.float32, name='b')
    u = x * w
    v = u + b
    a = tf.nn.relu(v)
    d_a_w = tf.gradients(a, w)
    d_b_w = tf.gradients(a, b)

with tf.Session(graph=g) as sess:
    sess.run(tf.global_variables_initializer())
    dw, db = sess.run([d_a_w, d_b_w], feed_dict={'x:0': 3})
    print(dw, db)
