"""A Session's fast path for repeated runs: a run with the same fetches and the same feed
signature as a run before (the same keys in the same order, each value of the same type,
shape and dtype) goes straight to that run's executable.

The general path converts every fed value (`convert_feed_value`), builds the feed
signature and looks the executable up by it. A `FastPath`, made after one such run, has
decided all of that once: which parameter each feed fills, which arrays pass through as
they are, and how Python numbers become arguments (written into a buffer of the tensor's
dtype, kept for these runs, instead of a new 0-d array each run). Each run still checks
every key, type, shape and dtype, and gives up (`arguments` returns None) on any
difference, so the general path, with its errors, handles everything else.
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from flowjit import dtypes
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.feeds import number_range
from flowjit.runtime.executable import Executable


class FastFeed:
    """One key of the feed dict: the tensor it feeds, as its value is checked and passed."""

    __slots__ = ("key", "tensor", "declared", "type", "shape", "dtype", "position", "low",
                 "high", "buffer")

    def __init__(self, key, tensor: Tensor, value, position: Optional[int]) -> None:
        self.key = key
        self.tensor = tensor
        self.declared = tensor._shape  # (set_shape makes a new one: then the general path)
        self.type = type(value)
        self.position = -1 if position is None else position
        self.dtype = tensor.dtype.np_dtype
        self.shape = np.shape(value)
        self.low = self.high = None
        self.buffer: Optional[np.ndarray] = None  # a number's: written before each run


class FastPath:
    """How runs of one request with one feed signature go (see the module's docstring)."""

    __slots__ = ("feeds", "template", "executable", "lru_key", "version", "results")

    def __init__(self, feeds: Sequence[FastFeed], template: List[Optional[np.ndarray]],
                 executable: Executable, lru_key, version: int,
                 results: List[Optional[int]]) -> None:
        self.feeds = tuple(feeds)
        self.template = template  # the arguments with the numbers' buffers in place
        self.executable = weakref.ref(executable)  # (an executable the LRU evicted is freed)
        self.lru_key = lru_key
        self.version = version  # of the variables' shapes the executable was compiled for
        self.results = results  # each fetch's position among the outputs (None: an op)

    @staticmethod
    def build(feed_dict, feeds: Dict[Tensor, np.ndarray], executable: Executable,
              elements: Sequence[Any], lru_key, version: int) -> Optional["FastPath"]:
        """The fast path for runs like this one, which fed `feed_dict` (converted to
        `feeds`) and ran `executable`; None when a value of this feed dict would need the
        general conversion (lists, strings, numbers it converts with checks)."""
        if feed_dict and (type(feed_dict) is not dict or len(feed_dict) != len(feeds)):
            return None  # (a tensor fed twice, by itself and by its name: general path)
        template: List[Optional[np.ndarray]] = [None] * len(executable.func.params)
        fast_feeds = []
        for (key, value), (tensor, array) in zip((feed_dict or {}).items(), feeds.items()):
            feed = FastFeed(key, tensor, value, executable.parameter_of(tensor))
            if type(value) is np.ndarray:
                if array is not value or tensor.dtype is dtypes.string:
                    return None  # (converted: the general path's work)
            else:
                bounds = number_range(value, tensor.dtype)
                if bounds is None:
                    return None
                feed.low, feed.high = bounds
                feed.buffer = np.array(array)  # (a fresh 0-d array of the tensor's dtype)
                view = feed.buffer.view()
                view.setflags(write=False)  # a run's readers copy what they keep
                if feed.position >= 0:
                    template[feed.position] = view
            fast_feeds.append(feed)
        results = [None if element.__class__ is Operation else executable.result_of(element)
                   for element in elements]
        return FastPath(fast_feeds, template, executable, lru_key, version, results)

    def arguments(self, feed_dict) -> Optional[List[Optional[np.ndarray]]]:
        """The executable's arguments for `feed_dict` (feeds in place, None for the state's
        values), or None when it is not of this path's signature. Writes the numbers'
        buffers: the caller holds the Session's run lock."""
        feeds = self.feeds
        if not feed_dict:
            return self.template.copy() if not feeds else None
        if feed_dict.__class__ is not dict or len(feed_dict) != len(feeds):
            return None
        arguments = self.template.copy()
        i = 0  # (indexing: twice as fast as zipping with the items, in Python 3.11)
        for key, value in feed_dict.items():
            feed = feeds[i]
            i += 1
            if key is not feed.key and (key.__class__ is not str or key != feed.key):
                return None
            if value.__class__ is not feed.type or feed.tensor._shape is not feed.declared:
                return None
            buffer = feed.buffer
            if buffer is None:  # an array, passed as it is
                dtype = value.dtype
                if value.shape != feed.shape or (dtype is not feed.dtype and
                                                 dtype != feed.dtype):
                    return None
                if feed.position >= 0:
                    arguments[feed.position] = value
            else:  # a number, into its buffer
                if feed.low is not None and not feed.low <= value <= feed.high:
                    return None
                buffer[()] = value
        return arguments
