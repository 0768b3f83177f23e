"""Saving and loading a Graph as text (TF1's `tf.train.write_graph`, in flowjit's own format).

One line per op, in creation order; attribute values are spelled exactly as in the IR
(`printer.format_attr`) and read back with the IR parser's attribute grammar, so a graph file
and an IR dump agree on how `f32`, `shape<?,784>` or `dense<f32[2], [1.0, 2.0]>` look:

    # flowjit graph: one op per line, in creation order
    graph {seed=42, version=1}
    op "x" = Placeholder() {dtype=f32, shape=shape<?,784>}  site("mlp.py:4")
    op "dense/MatMul" = MatMul("x:0", "dense/W:0") {transpose_a=false, ...}  site("mlp.py:9")
    op "init" = NoOp() ^("dense/W/Assign", "dense/b/Assign")  site("mlp.py:12")

Constants are written in full (never elided) so that loading gives back the same values.
Loading recreates every op under its exact name with `Graph.create_op`, so shapes and build-time
constant values are re-derived by the same rules that built the original. Variables come back as
plain `VariableV2` ops: a Session runs them, but `tf.Variable` objects and collections are not
part of the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Tuple, Union

from flowjit.graph.core import Graph, Operation
from flowjit.ir.parser import IRParseError, _Parser, _tokenize
from flowjit.ir.printer import format_attr

FORMAT_VERSION = 1
_MAGIC = "# flowjit graph"
_HEADER = f"{_MAGIC}: one op per line, in creation order (flowjit.graph.serialize)"


class GraphFileError(ValueError):
    """A graph file that cannot be read back: bad syntax, or an op that cannot be recreated."""


@dataclass(frozen=True)
class OpRecord:
    """Everything the file keeps of one op."""

    name: str
    type: str
    inputs: Tuple[str, ...]           # tensor names, 'x:0'
    control_inputs: Tuple[str, ...]   # op names
    attrs: Dict[str, Any]
    site: str

    @staticmethod
    def of(op: Operation) -> "OpRecord":
        return OpRecord(op.name, op.type, tuple(t.name for t in op.inputs),
                        tuple(c.name for c in op.control_inputs), dict(op.attrs), op.site)

    def to_text(self) -> str:
        text = f"op {_quoted(self.name)} = {self.type}({', '.join(map(_quoted, self.inputs))})"
        if self.control_inputs:
            text += f" ^({', '.join(map(_quoted, self.control_inputs))})"
        if self.attrs:
            text += " {" + ", ".join(f"{key}={format_attr(value)}"
                                     for key, value in sorted(self.attrs.items())) + "}"
        return f"{text}  site({_quoted(self.site)})"


# -- writing ----------------------------------------------------------------------------------
def graph_to_text(graph: Graph) -> str:
    """The text of `graph`: deterministic, so saved graphs diff cleanly."""
    header = f"graph {{seed={format_attr(graph.seed)}, version={FORMAT_VERSION}}}"
    lines = [_HEADER, header] + [OpRecord.of(op).to_text() for op in graph.get_operations()]
    return "\n".join(lines) + "\n"


def write_graph(graph_or_graph_def: Union[Graph, str], logdir: str, name: str,
                as_text: bool = True) -> str:
    """TF1's `tf.train.write_graph`: writes the graph to `logdir/name` (creating `logdir`)
    and returns that path. `graph_or_graph_def` is a Graph or the text of one. flowjit has no
    binary form, so `as_text=False` writes the same text."""
    if isinstance(graph_or_graph_def, Graph):
        text = graph_to_text(graph_or_graph_def)
    elif isinstance(graph_or_graph_def, str):
        text = graph_or_graph_def
    else:
        raise TypeError(f"write_graph needs a Graph (or its text), got "
                        f"{type(graph_or_graph_def).__name__}")
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# -- reading ----------------------------------------------------------------------------------
def is_graph_file(path: str) -> bool:
    """Whether `path` starts like a file `write_graph` wrote."""
    try:
        with open(path, "r", errors="replace") as f:
            return f.read(len(_MAGIC)) == _MAGIC
    except OSError:
        return False


def load_graph(path: str) -> Graph:
    """Reads a graph that `write_graph` wrote; errors name the file and the line."""
    with open(path) as f:
        text = f.read()
    try:
        return graph_from_text(text)
    except GraphFileError as e:
        raise GraphFileError(f"{path}: {e}") from None


def graph_from_text(text: str) -> Graph:
    """A new Graph with the ops of `text` (as written by `graph_to_text`), in order."""
    try:
        parser = _Parser(_tokenize(text))
        header = _read_header(parser)
        records = []
        while parser.peek()[0] != "eof":
            records.append(_read_op(parser))
    except IRParseError as e:
        raise GraphFileError(f"not a flowjit graph file: {e}") from None
    graph = Graph()
    graph.seed = header.get("seed")
    for line, record in records:
        _recreate(graph, record, line)
    _reserve_names(graph)
    return graph


def _read_header(parser: _Parser) -> Dict[str, Any]:
    parser.expect("word", "graph")
    header = parser.attr_dict()
    version = header.get("version")
    if version != FORMAT_VERSION:
        raise parser.error(f"graph format version {version!r}; this flowjit reads "
                           f"version {FORMAT_VERSION}")
    return header


def _read_op(parser: _Parser) -> Tuple[int, OpRecord]:
    line = parser.peek()[2]
    parser.expect("word", "op")
    name = parser.string()
    parser.expect("punct", "=")
    op_type = parser.expect("word")
    inputs = _string_list(parser)
    control_inputs = _string_list(parser) if parser.accept("^") else ()
    attrs = parser.attr_dict() if parser.peek()[1] == "{" else {}
    parser.expect("word", "site")
    parser.expect("punct", "(")
    site = parser.string()
    parser.expect("punct", ")")
    return line, OpRecord(name, op_type, inputs, control_inputs, attrs, site)


def _string_list(parser: _Parser) -> Tuple[str, ...]:
    """`("a", "b")`"""
    parser.expect("punct", "(")
    items = []
    while not parser.accept(")"):
        items.append(parser.string())
        parser.accept(",")
    return tuple(items)


def _recreate(graph: Graph, record: OpRecord, line: int) -> Operation:
    try:
        inputs = [graph.get_tensor_by_name(name) for name in record.inputs]
        control_inputs = [graph.get_operation_by_name(name) for name in record.control_inputs]
        op = graph.create_op(record.type, inputs, record.attrs, name=record.name + "/",
                             control_inputs=control_inputs)
    except (KeyError, ValueError, TypeError) as e:  # op errors derive from these too
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise GraphFileError(f"line {line}: cannot recreate op '{record.name}' "
                             f"({record.type}): {message}") from None
    op.site = record.site
    return op


def _reserve_names(graph: Graph) -> None:
    """Marks every op name and name scope as used, so ops added to the loaded graph get fresh
    names ('add_1'), as they would have in the original."""
    names: Dict[str, None] = {}
    for op in graph.get_operations():
        parts = op.name.split("/")
        for i in range(1, len(parts) + 1):
            names["/".join(parts[:i])] = None
    for name in names:
        if name.lower() not in graph._names_in_use:  # op names are reserved on creation
            graph.unique_name(name)


def _quoted(text: str) -> str:
    return format_attr(text)
