"""Finding checkpoints: the `checkpoint` state file, `latest_checkpoint`, `checkpoint_exists`,
and reading a checkpoint's tensors (`tf.train.load_checkpoint`, `list_variables`).

The state file is TensorFlow's `CheckpointState` in protobuf text format, e.g.

    model_checkpoint_path: "model.ckpt-20"
    all_model_checkpoint_paths: "model.ckpt-10"
    all_model_checkpoint_paths: "model.ckpt-20"
    all_model_checkpoint_timestamps: 1700000000.5
    ...

Paths are written relative to the state file's folder when they were given relative (or with
`save_relative_paths`), else absolute; reading joins relative paths to that folder.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from flowjit import dtypes, errors
from flowjit.io.protos import checkpoint_protos
from flowjit.io.tensor_bundle import BundleReader, atomic_write, data_path, index_path

STATE_FILENAME = "checkpoint"


def _state_path(checkpoint_dir: str, latest_filename: Optional[str]) -> str:
    return os.path.join(checkpoint_dir, latest_filename or STATE_FILENAME)


def update_checkpoint_state(save_dir: str, model_checkpoint_path: str,
                            all_model_checkpoint_paths: Optional[Sequence[str]] = None,
                            latest_filename: Optional[str] = None,
                            all_model_checkpoint_timestamps: Optional[Sequence[float]] = None,
                            last_preserved_timestamp: Optional[float] = None,
                            save_relative_paths: bool = False) -> None:
    """Writes the state file of `save_dir` (atomically)."""
    def stored(path: str) -> str:
        if save_relative_paths or not os.path.isabs(path):
            return os.path.relpath(path, save_dir)
        return path

    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    state = checkpoint_protos().CheckpointState(
        model_checkpoint_path=stored(model_checkpoint_path),
        all_model_checkpoint_paths=[stored(p) for p in paths],
        all_model_checkpoint_timestamps=list(all_model_checkpoint_timestamps or []))
    if last_preserved_timestamp is not None:
        state.last_preserved_timestamp = last_preserved_timestamp
    from google.protobuf import text_format
    atomic_write(_state_path(save_dir, latest_filename),
                 text_format.MessageToString(state).encode("utf-8"))


def get_checkpoint_state(checkpoint_dir: str, latest_filename: Optional[str] = None):
    """The `CheckpointState` of `checkpoint_dir` (paths made usable from here), or None when
    it has no state file. A state file that cannot be parsed is a DataLossError."""
    path = _state_path(checkpoint_dir, latest_filename)
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    from google.protobuf import text_format
    state = checkpoint_protos().CheckpointState()
    try:
        text_format.Parse(text, state)
    except text_format.ParseError as e:
        raise errors.DataLossError(f"Checkpoint state file '{path}' is not a CheckpointState "
                                   f"text proto: {e}") from None
    if not state.model_checkpoint_path:
        raise errors.DataLossError(f"Checkpoint state file '{path}' names no "
                                   f"model_checkpoint_path")

    def usable(p: str) -> str:
        return p if os.path.isabs(p) else os.path.join(checkpoint_dir, p)

    state.model_checkpoint_path = usable(state.model_checkpoint_path)
    paths = [usable(p) for p in state.all_model_checkpoint_paths]
    del state.all_model_checkpoint_paths[:]
    state.all_model_checkpoint_paths.extend(paths)
    return state


def checkpoint_exists(checkpoint_prefix: str) -> bool:
    """Whether a checkpoint (its `.index`, or a V1 file) exists under this prefix (which may
    hold glob wildcards)."""
    return bool(glob.glob(index_path(checkpoint_prefix)) or glob.glob(checkpoint_prefix))


def latest_checkpoint(checkpoint_dir: str, latest_filename: Optional[str] = None
                      ) -> Optional[str]:
    """The prefix of the newest checkpoint the state file names, if it exists; else None."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is not None and checkpoint_exists(state.model_checkpoint_path):
        return state.model_checkpoint_path
    return None


def get_checkpoint_mtimes(checkpoint_prefixes: Sequence[str]) -> List[float]:
    return [os.path.getmtime(index_path(p)) for p in checkpoint_prefixes
            if os.path.exists(index_path(p))]


def remove_checkpoint(checkpoint_prefix: str, meta_graph_suffix: str = "meta") -> None:
    """Deletes a checkpoint's files (index, data, meta graph) that exist."""
    for path in (index_path(checkpoint_prefix), data_path(checkpoint_prefix),
                 f"{checkpoint_prefix}.{meta_graph_suffix}"):
        if os.path.exists(path):
            os.remove(path)


# -- reading tensors ----------------------------------------------------------------------------
def _resolve(ckpt_dir_or_file: str) -> str:
    if os.path.isdir(ckpt_dir_or_file):
        prefix = latest_checkpoint(ckpt_dir_or_file)
        if prefix is None:
            raise errors.CheckpointNotFoundError(
                f"Couldn't find a checkpoint in folder '{ckpt_dir_or_file}': it has no "
                f"'{STATE_FILENAME}' state file naming an existing checkpoint")
        return prefix
    return ckpt_dir_or_file


class CheckpointReader:
    """TF1's `tf.train.NewCheckpointReader`: the tensors of one checkpoint by name."""

    def __init__(self, ckpt_dir_or_file: str) -> None:
        self._reader = BundleReader(_resolve(ckpt_dir_or_file))

    def has_tensor(self, name: str) -> bool:
        return self._reader.has_tensor(name)

    def get_tensor(self, name: str) -> np.ndarray:
        return self._reader.tensor(name)

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        return {n: list(self._reader.entry(n)[1]) for n in self._reader.names()}

    def get_variable_to_dtype_map(self) -> Dict[str, dtypes.DType]:
        return {n: self._reader.entry(n)[0] for n in self._reader.names()}


def load_checkpoint(ckpt_dir_or_file: str) -> CheckpointReader:
    return CheckpointReader(ckpt_dir_or_file)


NewCheckpointReader = load_checkpoint


def list_variables(ckpt_dir_or_file: str) -> List[tuple]:
    """(name, shape) of every tensor of a checkpoint, sorted by name."""
    shapes = load_checkpoint(ckpt_dir_or_file).get_variable_to_shape_map()
    return sorted(shapes.items())


def load_variable(ckpt_dir_or_file: str, name: str) -> np.ndarray:
    return load_checkpoint(ckpt_dir_or_file).get_tensor(name[:-2] if name.endswith(":0")
                                                        else name)
