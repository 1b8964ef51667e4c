"""The training pipeline: MAESTRO preparation, label rolls, tf.data input, losses, training,
evaluation and metrics, and the import of Magenta's checkpoint."""
