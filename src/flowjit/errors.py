"""TF1-style error classes.

`OpError` and its subclasses mirror `tf.errors`. Errors raised while *building* a graph also
derive from the Python exception TF1 raises there (`ValueError`/`TypeError`), so code written
against either convention catches them.
"""
from __future__ import annotations

from typing import Any


class OpError(Exception):
    """An error tied to an operation of the user's graph (TF1's `tf.errors.OpError`)."""

    def __init__(self, message: str, op: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.op = op

    @property
    def node_def(self) -> Any:
        return self.op


class CancelledError(OpError): ...
class UnknownError(OpError): ...
class InvalidArgumentError(OpError): ...
class DeadlineExceededError(OpError): ...
class NotFoundError(OpError): ...
class AlreadyExistsError(OpError): ...
class PermissionDeniedError(OpError): ...
class ResourceExhaustedError(OpError): ...
class FailedPreconditionError(OpError): ...
class AbortedError(OpError): ...
class OutOfRangeError(OpError): ...
class UnimplementedError(OpError): ...
class InternalError(OpError): ...
class UnavailableError(OpError): ...
class DataLossError(OpError): ...


class ShapeError(InvalidArgumentError, ValueError):
    """Incompatible shapes found while building the graph (TF1 raises ValueError here)."""


class DTypeError(InvalidArgumentError, TypeError):
    """Incompatible dtypes found while building the graph (TF1 raises TypeError here)."""


class StructureError(InvalidArgumentError, ValueError):
    """The functions of a control-flow op do not fit together: tf.cond branches returning
    different structures or dtypes, a while_loop body not returning its loop variables'
    structure (TF1 raises ValueError here)."""


class FeedError(InvalidArgumentError, ValueError):
    """A value in `feed_dict` does not fit the tensor it feeds (shape, dtype or key)."""


class FetchNotFoundError(NotFoundError, KeyError, ValueError):
    """A fetch or feed named a tensor or operation the graph does not have. Also a KeyError
    (TF1's get_tensor_by_name) and a ValueError (TF1's Session.run)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UninitializedVariableError(FailedPreconditionError):
    """A run read a Variable that has not been initialized in this Session."""


class IndexOutOfRangeError(InvalidArgumentError):
    """An index (gather, one-hot, slicing) fell outside the tensor it indexes."""


class FetchError(InvalidArgumentError, ValueError):
    """A fetch is not an element of the Session's graph."""


class CheckpointNotFoundError(NotFoundError, ValueError):
    """A path that names no checkpoint (TF1's Saver.restore raises ValueError here)."""
