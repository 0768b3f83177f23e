# Seed: Sebastian Raschka, "Introduction to Deep Learning with TensorFlow", slides 14-19.
import flowjit as tf

g = tf.Graph()
with g.as_default() as g:
    x = tf.placeholder(dtype=tf.float32, shape=None, name='x')
    w = tf.Variable(initial_value=2, dtype=tf.float32, name='w')
    b = tf.Variable(initial_value=1, dtype=tf.float32, name='b')
    u = x * w
    v = u + b
    a = tf.nn.relu(v)
    init_op = tf.global_variables_initializer()

print(x, u, v, a)

with tf.Session(graph=g) as sess:
    sess.run(init_op)
    b_res = sess.run('b:0')
    print(b_res)

with tf.Session(graph=g) as sess:
    sess.run(tf.global_variables_initializer())
    u_res, v_res, a_res = sess.run([u, v, a], feed_dict={'x:0': 3.})
    print(u_res, v_res, a_res)
