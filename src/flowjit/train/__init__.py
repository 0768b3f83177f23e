"""`tf.train`: optimizers, the global step, learning-rate schedules, graph files, checkpoints."""
from flowjit.graph.serialize import load_graph, write_graph  # noqa: F401
from flowjit.train.learning_rate import (create_global_step, exponential_decay,  # noqa: F401
                                         get_global_step, get_or_create_global_step)
from flowjit.train.optimizer import (AdadeltaOptimizer, AdagradOptimizer,  # noqa: F401
                                     AdamOptimizer, GradientDescentOptimizer,
                                     MomentumOptimizer, Optimizer, RMSPropOptimizer)
from flowjit.train.checkpoint_management import (CheckpointReader,  # noqa: F401
                                                 NewCheckpointReader, checkpoint_exists,
                                                 get_checkpoint_mtimes, get_checkpoint_state,
                                                 latest_checkpoint, list_variables,
                                                 load_checkpoint, load_variable,
                                                 remove_checkpoint, update_checkpoint_state)
from flowjit.train.meta_graph import export_meta_graph, import_meta_graph  # noqa: F401
from flowjit.train.saver import Saver  # noqa: F401
from flowjit.summary.writer import FileWriter as SummaryWriter  # noqa: F401 - TF1's old name
