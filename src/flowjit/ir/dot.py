"""Graphviz (DOT) views of a Func and of a user's Graph, built with networkx."""
from __future__ import annotations

import re
from typing import Dict

import networkx as nx

from flowjit.graph.core import Graph
from flowjit.ir.core import Func, Instr
from flowjit.ir.parser import parse_func

_ELIDED_CONSTANT = re.compile(r", \.\.\.>")


def parse_dump(text: str) -> Func:
    """A dumped stage file as a Func. Dumps elide large constants; a drawing needs only their
    types, so they are read as zeros."""
    return parse_func(_ELIDED_CONSTANT.sub(", splat 0>", text))


def func_to_nx(func: Func) -> nx.MultiDiGraph:
    """Params, instructions and results as nodes; one edge per SSA use."""
    g = nx.MultiDiGraph(name=func.name)
    producer: Dict[object, str] = {}
    for i, param in enumerate(func.params):
        node = f"param{i}"
        g.add_node(node, label=f"{param.role} {param.key}\n{param.value.type}", shape="invhouse")
        producer[param.value] = node
    for i, instr in enumerate(func.body):
        node = f"instr{i}"
        g.add_node(node, label=_instr_label(instr), shape="box")
        for operand in instr.operands:
            g.add_edge(producer[operand], node)
        for value in instr.results:
            producer[value] = node
    for i, result in enumerate(func.results):
        node = f"result{i}"
        g.add_node(node, label=f"{result.role} {result.key}", shape="house")
        g.add_edge(producer[result.value], node)
    return g


def _instr_label(instr: Instr) -> str:
    types = ", ".join(str(v.type) for v in instr.results)
    if instr.region is None:
        return f"{instr.op}\n{types}"
    members = ", ".join(sub.op for sub in instr.region.body)
    return f"{instr.op} {instr.attrs.get('kind', '')}\n[{members}]\n{types}"


def graph_to_nx(graph: Graph) -> nx.MultiDiGraph:
    """Ops as nodes; data edges solid, control edges dashed."""
    g = nx.MultiDiGraph(name="flowjit_graph")
    node_of = {op: f"op{i}" for i, op in enumerate(graph.get_operations())}
    for op, node in node_of.items():
        g.add_node(node, label=f"{op.name}\n{op.type}", shape="box")
        for tensor in op.inputs:
            g.add_edge(node_of[tensor.op], node)
        for control in op.control_inputs:
            g.add_edge(node_of[control], node, style="dashed")
    return g


def to_dot(g: nx.MultiDiGraph) -> str:
    """DOT text of `g`: networkx's pydot writer when pydot is installed, else our own."""
    try:
        import pydot  # noqa: F401
    except ImportError:
        return _dot_text(g)
    quoted = g.copy()  # pydot writes attribute values as given: quote the labels ourselves
    for _, attrs in quoted.nodes(data=True):
        attrs["label"] = _dot_quote(attrs["label"])
    return nx.drawing.nx_pydot.to_pydot(quoted).to_string()


def _dot_text(g: nx.MultiDiGraph) -> str:
    lines = [f"digraph {_dot_quote(g.graph.get('name', 'G'))} {{",
             '  node [fontname="monospace"];']
    lines += [f"  {_dot_quote(n)}{_dot_attrs(a)};" for n, a in g.nodes(data=True)]
    lines += [f"  {_dot_quote(u)} -> {_dot_quote(v)}{_dot_attrs(a)};"
              for u, v, a in g.edges(data=True)]
    return "\n".join(lines + ["}"]) + "\n"


def _dot_attrs(attrs: Dict[str, str]) -> str:
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k}={_dot_quote(v)}" for k, v in sorted(attrs.items())) + "]"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
