"""`tf.train`: optimizers, the global step, learning-rate schedules, graph files, checkpoints."""
from flowjit.lazy import lazy_attributes
from flowjit.train.learning_rate import (create_global_step, exponential_decay,  # noqa: F401
                                         get_global_step, get_or_create_global_step)
from flowjit.train.optimizer import (AdadeltaOptimizer, AdagradOptimizer,  # noqa: F401
                                     AdamOptimizer, GradientDescentOptimizer,
                                     MomentumOptimizer, Optimizer, RMSPropOptimizer)

_CHECKPOINTS = "flowjit.train.checkpoint_management"
# Graph files, checkpoints and the summary writer are imported on first use: a program that
# saves nothing does not pay for them (bundles, protos, file utilities) at import.
__getattr__, __dir__ = lazy_attributes(__name__, {
    "load_graph": "flowjit.graph.serialize:load_graph",
    "write_graph": "flowjit.graph.serialize:write_graph",
    **{name: f"{_CHECKPOINTS}:{name}" for name in (
        "CheckpointReader", "NewCheckpointReader", "checkpoint_exists",
        "get_checkpoint_mtimes", "get_checkpoint_state", "latest_checkpoint", "list_variables",
        "load_checkpoint", "load_variable", "remove_checkpoint", "update_checkpoint_state")},
    "export_meta_graph": "flowjit.train.meta_graph:export_meta_graph",
    "import_meta_graph": "flowjit.train.meta_graph:import_meta_graph",
    "Saver": "flowjit.train.saver:Saver",
    "SummaryWriter": "flowjit.summary.writer:FileWriter",  # TF1's old name
})
