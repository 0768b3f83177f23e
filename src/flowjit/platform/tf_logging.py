"""`tf.logging`: TF1's logging functions over Python's `logging`, logger "tensorflow".

Messages print as TF1 printed them (`INFO:tensorflow:step 100`); the default verbosity is
WARN, as in TF1 (`tf.logging.set_verbosity(tf.logging.INFO)` to see info messages).
"""
from __future__ import annotations

import logging as _logging
import sys
from typing import Any, Dict

DEBUG = _logging.DEBUG
INFO = _logging.INFO
WARN = _logging.WARN
ERROR = _logging.ERROR
FATAL = _logging.FATAL

_logger = _logging.getLogger("tensorflow")
_counts: Dict[Any, int] = {}


class _StderrHandler(_logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a message is logged (as print does)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def get_logger() -> _logging.Logger:
    if not _logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        _logger.addHandler(handler)
        _logger.propagate = False
        if _logger.level == _logging.NOTSET:
            _logger.setLevel(WARN)
    return _logger


def set_verbosity(level: int) -> None:
    get_logger().setLevel(level)


def get_verbosity() -> int:
    return get_logger().getEffectiveLevel()


def log(level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
    get_logger().log(level, msg, *args, **kwargs)


def debug(msg: Any, *args: Any, **kwargs: Any) -> None:
    log(DEBUG, msg, *args, **kwargs)


def info(msg: Any, *args: Any, **kwargs: Any) -> None:
    log(INFO, msg, *args, **kwargs)


def warning(msg: Any, *args: Any, **kwargs: Any) -> None:
    log(WARN, msg, *args, **kwargs)


warn = warning


def error(msg: Any, *args: Any, **kwargs: Any) -> None:
    log(ERROR, msg, *args, **kwargs)


def fatal(msg: Any, *args: Any, **kwargs: Any) -> None:
    log(FATAL, msg, *args, **kwargs)


def vlog(level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
    log(level, msg, *args, **kwargs)


def log_if(level: int, msg: Any, condition: bool, *args: Any) -> None:
    if condition:
        log(level, msg, *args)


def _count_call() -> int:
    """How many times the caller's caller ran from this line before."""
    caller = sys._getframe(2)
    key = (caller.f_code.co_filename, caller.f_lineno)
    count = _counts.get(key, 0)
    _counts[key] = count + 1
    return count


def log_every_n(level: int, msg: Any, n: int, *args: Any) -> None:
    """Logs the 1st, (n+1)th, (2n+1)th... call from the same place."""
    log_if(level, msg, _count_call() % max(1, n) == 0, *args)


def log_first_n(level: int, msg: Any, n: int, *args: Any) -> None:
    log_if(level, msg, _count_call() < n, *args)
