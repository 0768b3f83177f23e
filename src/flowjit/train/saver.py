"""`tf.train.Saver`: saves and restores variables in TensorFlow's V2 checkpoint format.

    saver = tf.train.Saver(max_to_keep=3)
    path = saver.save(sess, "ckpt/model", global_step=step)   # "ckpt/model-100"
    saver.restore(sess, tf.train.latest_checkpoint("ckpt"))

A save writes `path.index` and `path.data-00000-of-00001` (`flowjit.io.tensor_bundle`), the
meta graph `path.meta`, and the `checkpoint` state file beside them, each atomically. Older
checkpoints past `max_to_keep` are deleted, except one every `keep_checkpoint_every_n_hours`.
A restore checks every variable against the checkpoint (present, same shape, same dtype) and
reports all mismatches at once, by name, before it changes any variable: all are set or none.
Unlike TF1's, this Saver adds no ops to the graph; it reads and writes the Session's state.
"""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Tuple

from flowjit import errors
from flowjit.graph.core import Graph, Tensor, get_default_graph
from flowjit.io.protos import tensorflow_proto
from flowjit.io.tensor_bundle import BundleReader, write_bundle
from flowjit.train import checkpoint_management as cm
from flowjit.train.meta_graph import export_meta_graph
from flowjit.runtime import mpi


class Saver:
    """TF1's `tf.train.Saver(var_list=None, max_to_keep=5, keep_checkpoint_every_n_hours=10000,
    save_relative_paths=False, ...)`; `var_list` is a list of variables (saved under their op
    names) or a dict of checkpoint name -> variable."""

    def __init__(self, var_list=None, reshape: bool = False, sharded: bool = False,
                 max_to_keep: Optional[int] = 5, keep_checkpoint_every_n_hours: float = 10000.0,
                 name: Optional[str] = None, restore_sequentially: bool = False,
                 saver_def=None, builder=None, defer_build: bool = False,
                 allow_empty: bool = False, write_version: int = 2,
                 pad_step_number: bool = False, save_relative_paths: bool = False,
                 filename: Optional[str] = None) -> None:
        if saver_def is not None:
            max_to_keep = saver_def.max_to_keep
            keep_checkpoint_every_n_hours = saver_def.keep_checkpoint_every_n_hours
        self._var_list = var_list
        self._max_to_keep = max_to_keep
        self._keep_every_n_hours = keep_checkpoint_every_n_hours
        self._next_keep_time = time.time() + keep_checkpoint_every_n_hours * 3600
        self._allow_empty = allow_empty
        self._pad_step_number = pad_step_number
        self._save_relative_paths = save_relative_paths
        self._last_checkpoints: List[Tuple[str, float]] = []
        self._last_preserved_timestamp = time.time()
        self._variables: Optional[Dict[str, Any]] = None
        self._graph: Optional[Graph] = None
        if not defer_build:
            self.build()

    # -- the variables --------------------------------------------------------------------------
    def build(self) -> None:
        """Resolves the variables to save (done at construction unless `defer_build`)."""
        if self._variables is not None:
            return
        from flowjit.variables import global_variables
        var_list = self._var_list if self._var_list is not None else global_variables()
        self._variables = _names_to_variables(var_list)
        if not self._variables and not self._allow_empty:
            raise ValueError("No variables to save")
        graphs = {v.graph for v in self._variables.values()}
        self._graph = graphs.pop() if graphs else get_default_graph()
        if graphs:
            raise ValueError("The variables of a Saver must all be in one graph")

    @property
    def saver_def(self):
        saver_def = tensorflow_proto("saver").SaverDef(
            max_to_keep=self._max_to_keep or 0,
            keep_checkpoint_every_n_hours=self._keep_every_n_hours)
        saver_def.version = tensorflow_proto("saver").SaverDef.V2
        return saver_def

    def as_saver_def(self):
        return self.saver_def

    # -- saving -----------------------------------------------------------------------------------
    def save(self, sess, save_path: str, global_step=None, latest_filename: Optional[str] = None,
             meta_graph_suffix: str = "meta", write_meta_graph: bool = True,
             write_state: bool = True, strip_default_attrs: bool = False,
             save_debug_info: bool = False) -> str:
        """Saves the variables' values in `sess`; returns the checkpoint's path prefix
        (`save_path-<global_step>` when a step is given)."""
        self.build()
        if sess.graph is not self._graph:
            raise ValueError("The Session passed to Saver.save does not run the graph of the "
                             "Saver's variables")
        if global_step is not None:
            if isinstance(global_step, Tensor) or hasattr(global_step, "_as_graph_element"):
                global_step = sess.run(global_step)
            step = int(global_step)
            save_path = f"{save_path}-{step:08d}" if self._pad_step_number \
                else f"{save_path}-{step}"
        directory = os.path.dirname(save_path)
        if directory and not os.path.isdir(directory):
            raise errors.CheckpointNotFoundError(
                f"Parent directory of {save_path} doesn't exist, can't save.")
        if not mpi.writes_files():  # (a flowjit.distribute job: rank 0 writes)
            return save_path
        names = list(self._variables)
        values = sess.run([self._variables[n] for n in names]) if names else []
        write_bundle(save_path, dict(zip(names, values)))
        if write_meta_graph:
            self.export_meta_graph(f"{save_path}.{meta_graph_suffix}")
        self._record(save_path, meta_graph_suffix)
        if write_state:
            cm.update_checkpoint_state(
                directory or ".", save_path, [p for p, _ in self._last_checkpoints],
                latest_filename, [t for _, t in self._last_checkpoints],
                self._last_preserved_timestamp, self._save_relative_paths)
        return save_path

    def _record(self, save_path: str, meta_graph_suffix: str) -> None:
        """Appends a new checkpoint and deletes the oldest past `max_to_keep` (keeping one
        every `keep_checkpoint_every_n_hours`), as TF1 does."""
        self._last_checkpoints = [(p, t) for p, t in self._last_checkpoints if p != save_path]
        self._last_checkpoints.append((save_path, time.time()))
        if not self._max_to_keep:
            return
        while len(self._last_checkpoints) > self._max_to_keep:
            path, stamp = self._last_checkpoints.pop(0)
            if stamp - self._next_keep_time > 0:
                self._next_keep_time += self._keep_every_n_hours * 3600
                self._last_preserved_timestamp = stamp
                continue
            cm.remove_checkpoint(path, meta_graph_suffix)

    @property
    def last_checkpoints(self) -> List[str]:
        """The checkpoints this Saver keeps, oldest first."""
        return [p for p, _ in self._last_checkpoints]

    def set_last_checkpoints(self, last_checkpoints: List[str]) -> None:
        self._last_checkpoints = [(p, time.time()) for p in last_checkpoints]

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time) -> None:
        self._last_checkpoints = [(p, t) for p, t in last_checkpoints_with_time]

    def recover_last_checkpoints(self, checkpoint_paths: List[str]) -> None:
        """Takes over existing checkpoints (those that exist), timed by their files."""
        existing = [p for p in checkpoint_paths if cm.checkpoint_exists(p)]
        self._last_checkpoints = list(zip(existing, cm.get_checkpoint_mtimes(existing)))

    def export_meta_graph(self, filename: Optional[str] = None, collection_list=None,
                          as_text: bool = False, export_scope=None, clear_devices: bool = False,
                          clear_extraneous_savers: bool = False,
                          strip_default_attrs: bool = False, save_debug_info: bool = False):
        self.build()
        return export_meta_graph(filename, saver_def=self.saver_def,
                                 collection_list=collection_list, as_text=as_text,
                                 graph=self._graph)

    # -- restoring ----------------------------------------------------------------------------------
    def restore(self, sess, save_path: Optional[str]) -> None:
        """Sets the variables in `sess` to the checkpoint's values. Every variable is checked
        first (name, shape, dtype); on any mismatch none is changed and the error lists all."""
        self.build()
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        if not cm.checkpoint_exists(save_path):
            raise errors.CheckpointNotFoundError(
                f"The passed save_path is not a valid checkpoint: {save_path} (there is no "
                f"file {save_path}.index)")
        reader = BundleReader(save_path)
        missing, wrong = [], []
        for name, variable in self._variables.items():
            if not reader.has_tensor(name):
                missing.append(f"'{name}' (for variable {_describe(variable)})")
                continue
            dtype, shape = reader.entry(name)
            if dtype is not variable.dtype.base_dtype:
                wrong.append(f"variable {_describe(variable)} has dtype {variable.dtype.name}, "
                             f"the checkpoint's '{name}' has dtype {dtype.name}")
            elif not variable.shape.is_compatible_with(shape):
                wrong.append(f"variable {_describe(variable)} has shape {variable.shape}, "
                             f"the checkpoint's '{name}' has shape {list(shape)}")
        problems = [f"key {m} not found in checkpoint" for m in missing] + wrong
        if problems:
            available = ", ".join(f"{n} {list(reader.entry(n)[1])}"
                                  for n in sorted(reader.names()))
            error = errors.NotFoundError if not wrong else errors.InvalidArgumentError
            raise error(f"Restoring from checkpoint '{save_path}' failed: "
                        + "; ".join(problems) + f". The checkpoint has: {available or 'nothing'}")
        values = [(variable, reader.tensor(name)) for name, variable in self._variables.items()]
        sess.load_variables(values)


def _describe(variable) -> str:
    return f"'{variable.name}'"


def _names_to_variables(var_list) -> Dict[str, Any]:
    """{checkpoint name: variable}; a list is keyed by op names, as TF1 does."""
    from flowjit.variables import Variable
    if isinstance(var_list, dict):
        items = list(var_list.items())
    else:
        if not isinstance(var_list, (list, tuple, set)):
            raise TypeError(f"Saver's var_list must be a list or a dict, got "
                            f"{type(var_list).__name__}")
        items = []
        for var in var_list:
            if not isinstance(var, (Variable, Tensor)):
                raise TypeError(f"Saver's var_list holds {var!r}, which is not a Variable")
            items.append((var.op.name, var))
    result: Dict[str, Any] = {}
    for name, var in items:
        tensor = var._as_graph_element() if isinstance(var, Variable) else var
        if not isinstance(tensor, Tensor) or tensor.op.type != "VariableV2":
            raise TypeError(f"Saver can only save variables; '{name}' is {var!r}")
        if name in result:
            raise ValueError(f"At least two variables have the same name: {name}")
        result[name] = var
    return result
