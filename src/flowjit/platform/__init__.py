"""The program around the model, as TF1 spelled it: `tf.app`, `tf.flags`, `tf.logging`,
`tf.gfile`."""
