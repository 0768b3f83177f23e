"""`flowjit-dump`: the IR of every compile stage, for a program or a saved graph.

    flowjit-dump train.py [--out DIR | --stdout] [--stages ir,fusion,opt] [--dot] [-- ARGS]
    flowjit-dump model.graph --fetch logits:0 --feed x=f32[64,784] [--passes cse,dce]
    python -m flowjit dump ...

A program runs as `python train.py ARGS` would (as `__main__`, from its own folder) with
`config.dump_dir` set, so each executable its Sessions compile leaves one folder of stage
files: `ir.ir`, `NN-<pass>.ir` for each pass that changed the IR, `opt.ir` (see
`flowjit.compiler`). A file written by `tf.train.write_graph` is loaded instead, its fetches
lowered (placeholders typed by `--feed`, else by their graph shape) and run through the same
pipeline. Either way the stages are collected in a scratch folder, then filtered (`--stages`),
drawn (`--dot`: Graphviz, one `.dot` per kept `.ir`) and copied to `--out` or printed.

Exit status: 0; 1 when the program (or the compilation) fails, after printing its traceback
and the summary of what was dumped before; 2 for a bad command line (a missing file, an
unknown pass, stage or fetch), with a one-line message.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import runpy
import shutil
import sys
import tempfile
import traceback
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from flowjit import errors
from flowjit.compiler import CompileOptions, compile_plan
from flowjit.config import config
from flowjit.graph.core import Graph, Operation, Tensor, reset_default_graph
from flowjit.graph.plan import build_plan
from flowjit.graph.serialize import GraphFileError, is_graph_file, load_graph
from flowjit.ir.core import TensorType
from flowjit.ir.dot import func_to_nx, graph_to_nx, parse_dump, to_dot
from flowjit.ir.parser import IRParseError, _Parser, _tokenize
from flowjit.passes.manager import available_passes, default_pipeline

PROG = "flowjit-dump"
DEFAULT_OUT = "flowjit_dump"
GRAPH_DOT = "graph.dot"


class UsageError(Exception):
    """A bad command line: reported in one line, exit status 2."""


@dataclasses.dataclass(frozen=True)
class DumpOptions:
    """The command line, checked."""

    target: str                                  # a program, or a write_graph file
    is_graph: bool = False                       # which of the two
    script_args: Tuple[str, ...] = ()
    out: Optional[str] = DEFAULT_OUT             # None: print to stdout
    stages: Optional[Tuple[str, ...]] = None     # None: every stage
    passes: Optional[Tuple[str, ...]] = None     # None: the configured pipeline
    disabled_passes: Tuple[str, ...] = ()
    dot: bool = False
    fetches: Tuple[str, ...] = ()
    feeds: Tuple[str, ...] = ()                  # 'NAME=TYPE'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The `flowjit-dump` command; returns the exit status. A program runs in this process,
    on a fresh default graph, as it would under `python`."""
    try:
        options = parse_args(sys.argv[1:] if argv is None else list(argv))
    except UsageError as e:
        return _usage_error(e)
    with tempfile.TemporaryDirectory(prefix="flowjit-dump-") as staging:
        try:
            with _configured(options, staging):
                status = _run_target(options, staging)
        except UsageError as e:
            return _usage_error(e)
        folders = _collect(staging, options.stages)
        if options.dot:
            folders = [_with_dot_files(staging, folder) for folder in folders]
        if options.out is None:
            _print_files(staging, folders)
        else:
            _copy_out(staging, folders, options.out)
        _print_summary(folders, options.out)
    return status


def _usage_error(error: UsageError) -> int:
    print(f"{PROG}: error: {error}", file=sys.stderr)
    return 2


# -- the command line -------------------------------------------------------------------------
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print the usage and exit
        raise UsageError(message)


def parse_args(argv: List[str]) -> DumpOptions:
    """Options from `argv`; everything after `--` goes to the program."""
    script_args: List[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, script_args = argv[:split], argv[split + 1:]
    parser = _argument_parser()
    args = parser.parse_args(argv)
    if not os.path.isfile(args.target):
        raise UsageError(f"no such file: '{args.target}'")
    is_graph = is_graph_file(args.target)
    if not is_graph and (args.fetch or args.feed):
        raise UsageError(f"--fetch and --feed apply to graph files; '{args.target}' is a "
                         f"program")
    if is_graph and not args.fetch:
        raise UsageError(f"'{args.target}' is a graph file: name what to compile with --fetch")
    passes = _names(args.passes) if args.passes is not None else None
    disabled = tuple(n for group in args.disable_pass for n in _names(group))
    stages = _names(args.stages) if args.stages is not None else None
    pass_names = [p.name for p in available_passes()]
    _check_names(passes or (), pass_names, "pass", "--passes")
    _check_names(disabled, pass_names, "pass", "--disable-pass")
    _check_names(stages or (), stage_names(), "stage", "--stages")
    return DumpOptions(args.target, is_graph, tuple(script_args),
                       None if args.stdout else args.out, stages, passes, disabled, args.dot,
                       tuple(args.fetch), tuple(args.feed))


def _argument_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog=PROG, description="Dump the IR of every compile stage.",
                             epilog="Arguments after -- are passed to the program.")
    parser.add_argument("target", help="a Python program, or a file tf.train.write_graph wrote")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"where the dump folders go (default ./{DEFAULT_OUT})")
    where.add_argument("--stdout", action="store_true", help="print the stage files instead")
    parser.add_argument("--stages", metavar="S1,S2", help="keep only these stages: ir, opt or "
                        "pass names (default: all)")
    parser.add_argument("--passes", metavar="P1,P2", help="run these passes instead of the "
                        "default pipeline")
    parser.add_argument("--disable-pass", action="append", default=[], metavar="NAME",
                        help="skip a pass (repeatable)")
    parser.add_argument("--dot", action="store_true", help="also write Graphviz .dot files")
    parser.add_argument("--fetch", action="append", default=[], metavar="NAME",
                        help="graph files: a tensor ('y:0') or op ('train') to compile")
    parser.add_argument("--feed", action="append", default=[], metavar="NAME=TYPE",
                        help="graph files: the type of a fed tensor, e.g. x=f32[64,784]")
    return parser


# the kernels' schedules, their LLVM IR as generated and optimized, and their PTX
NATIVE_STAGES = ["kernels", "llvm", "llvm-opt", "ptx"]
STAGE_FILE = re.compile(r"\.(ir|sched|ll|ptx)$")


def stage_names() -> List[str]:
    """What --stages can name: 'ir', every pass a pipeline may run, 'opt', then the
    kernels' schedules ('kernels'), their LLVM IR as generated ('llvm') and optimized
    ('llvm-opt'), and 'ptx'."""
    passes = [p.name for p in default_pipeline() + available_passes()]
    return ["ir"] + list(dict.fromkeys(passes)) + ["opt"] + NATIVE_STAGES


def _names(text: str) -> Tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _check_names(names: Sequence[str], known: Sequence[str], what: str, option: str) -> None:
    for name in names:
        if name not in known:
            raise UsageError(f"unknown {what} '{name}' in {option}; known: {', '.join(known)}")


@contextlib.contextmanager
def _configured(options: DumpOptions, dump_dir: str) -> Iterator[None]:
    """flowjit's config with this command's dump folder and passes, restored afterwards."""
    saved = dataclasses.replace(config)
    config.dump_dir = dump_dir
    if options.passes is not None:
        config.passes = options.passes
    config.disabled_passes = tuple(config.disabled_passes) + options.disabled_passes
    try:
        yield
    finally:
        for field in dataclasses.fields(config):
            setattr(config, field.name, getattr(saved, field.name))


def _run_target(options: DumpOptions, staging: str) -> int:
    if not options.is_graph:
        return run_program(options.target, options.script_args)
    try:
        graph = load_graph(options.target)
    except GraphFileError as e:
        raise UsageError(str(e)) from None
    if options.dot:
        _write(os.path.join(staging, GRAPH_DOT), to_dot(graph_to_nx(graph)))
    return compile_graph(graph, options.fetches, options.feeds)


# -- running a program ------------------------------------------------------------------------
def run_program(path: str, args: Sequence[str]) -> int:
    """Runs `path` as `python path args` would: as `__main__`, with its folder first on
    sys.path and as the working directory. Returns its exit status; an exception's traceback
    is printed (from the program's own frames on) and gives 1."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    saved_argv, saved_path, saved_cwd = sys.argv, list(sys.path), os.getcwd()
    sys.argv = [path, *args]
    sys.path.insert(0, folder)
    os.chdir(folder)
    reset_default_graph()
    try:
        runpy.run_path(path, run_name="__main__")
        return 0
    except SystemExit as e:
        return _exit_status(e.code)
    except Exception as e:  # the program's own failure: show it as Python would
        _print_traceback(e, path)
        return 1
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        os.chdir(saved_cwd)


def _exit_status(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _print_traceback(error: BaseException, path: str) -> None:
    """The traceback without this tool's frames: it starts where the program does."""
    tb = error.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != path:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__)


# -- compiling a saved graph ------------------------------------------------------------------
def compile_graph(graph: Graph, fetch_names: Sequence[str], feed_specs: Sequence[str]) -> int:
    """Lowers and optimizes `fetch_names` of `graph` (dumping each stage); 1 if that fails."""
    elements = [_fetch(graph, name) for name in fetch_names]
    fetches = [e for e in elements if isinstance(e, Tensor)]
    targets = [e for e in elements if isinstance(e, Operation)]
    feed_types = dict(_feed_type(graph, spec) for spec in feed_specs)
    for op in build_plan(fetches, targets, list(feed_types)).ops:
        if op.type == "Placeholder":
            feed_types[op.outputs[0]] = TensorType.from_spec(op.outputs[0].spec)
    plan = build_plan(fetches, targets, list(feed_types))
    try:
        compile_plan(plan, feed_types, {}, CompileOptions.from_config("eager"))
    except errors.OpError as e:
        print(f"{PROG}: compiling {', '.join(fetch_names)} failed: {e}", file=sys.stderr)
        return 1
    return 0


def _fetch(graph: Graph, name: str) -> Union[Tensor, Operation]:
    try:
        return graph.as_graph_element(name)
    except (KeyError, ValueError) as e:
        raise UsageError(f"--fetch {name}: {e}") from None


def _feed_type(graph: Graph, spec: str) -> Tuple[Tensor, TensorType]:
    """`x=f32[?,784]` (or `x:0=...`): the tensor and the type it is compiled for."""
    name, sep, type_text = spec.partition("=")
    if not sep:
        raise UsageError(f"--feed {spec}: expected NAME=TYPE, like x=f32[64,784]")
    try:
        tensor = graph.get_tensor_by_name(name if ":" in name else f"{name}:0")
        parser = _Parser(_tokenize(type_text))
        fed = parser.type()
        parser.expect("eof")
    except (KeyError, IRParseError) as e:
        raise UsageError(f"--feed {spec}: {e}") from None
    if fed.dtype != tensor.dtype or not tensor.shape.is_compatible_with(fed.shape):
        raise UsageError(f"--feed {spec}: tensor {tensor.describe()} has type "
                         f"{TensorType.from_spec(tensor.spec)}")
    return tensor, fed


# -- collecting, filtering and writing the dumps ----------------------------------------------
@dataclasses.dataclass(frozen=True)
class DumpFolder:
    """A folder of the staging area ('' for its top) and its files to keep, in pipeline order."""

    name: str
    files: Tuple[str, ...]

    @property
    def stages(self) -> List[str]:
        return [STAGE_FILE.sub("", f) for f in self.files if STAGE_FILE.search(f)]


def stage_of(filename: str) -> str:
    """'09-fusion.ir' -> 'fusion'; 'ir.ir' -> 'ir'; 'llvm-opt.ll' -> 'llvm-opt'."""
    return re.sub(r"^\d+-", "", STAGE_FILE.sub("", filename))


def _pipeline_order(filename: str) -> Tuple[int, int]:
    """'ir' first, then the pass stages by number, then 'opt', then the native stages."""
    stem = STAGE_FILE.sub("", filename)
    number = re.match(r"\d+", stem)
    if number:
        return (1, int(number.group()))
    if stem in NATIVE_STAGES:
        return (3, NATIVE_STAGES.index(stem))
    return (0 if stem == "ir" else 2, 0)


def _collect(staging: str, stages: Optional[Sequence[str]]) -> List[DumpFolder]:
    """One DumpFolder per executable with its stages filtered, plus the top-level graph.dot."""
    folders = []
    for name in sorted(os.listdir(staging)):
        if name == GRAPH_DOT:
            folders.append(DumpFolder("", (GRAPH_DOT,)))
            continue
        files = [f for f in os.listdir(os.path.join(staging, name))
                 if STAGE_FILE.search(f) and (stages is None or stage_of(f) in stages)]
        folders.append(DumpFolder(name, tuple(sorted(files, key=_pipeline_order))))
    return folders


def _with_dot_files(staging: str, folder: DumpFolder) -> DumpFolder:
    """Writes a `.dot` beside each `.ir` of `folder`; the folder with them added."""
    files: List[str] = []
    for name in folder.files:
        files.append(name)
        if name.endswith(".ir"):
            with open(os.path.join(staging, folder.name, name)) as f:
                try:
                    func = parse_dump(f.read())
                except IRParseError as e:  # a printer/parser mismatch: keep the other files
                    print(f"{PROG}: cannot draw {folder.name}/{name}: {e}", file=sys.stderr)
                    continue
            files.append(name[:-len(".ir")] + ".dot")
            _write(os.path.join(staging, folder.name, files[-1]), to_dot(func_to_nx(func)))
    return DumpFolder(folder.name, tuple(files))


def _copy_out(staging: str, folders: Sequence[DumpFolder], out: str) -> None:
    """Copies the kept files to `out`; a same-named folder from an earlier run is replaced,
    so no stage file of that run is left to mix with this one's."""
    os.makedirs(out, exist_ok=True)
    for folder in folders:
        if folder.name:
            shutil.rmtree(os.path.join(out, folder.name), ignore_errors=True)
            os.makedirs(os.path.join(out, folder.name))
        for name in folder.files:
            shutil.copyfile(os.path.join(staging, folder.name, name),
                            os.path.join(out, folder.name, name))


def _print_files(staging: str, folders: Sequence[DumpFolder]) -> None:
    for folder in folders:
        for name in folder.files:
            with open(os.path.join(staging, folder.name, name)) as f:
                text = f.read()
            print(f"==> {os.path.join(folder.name, name)} <==")
            print(text, end="" if text.endswith("\n") else "\n")


def _print_summary(folders: Sequence[DumpFolder], out: Optional[str]) -> None:
    """One line per executable: its folder and kept stages. With --stdout it goes to stderr
    so that stdout is only the dump."""
    stream = sys.stdout if out is not None else sys.stderr
    executables = [f for f in folders if f.name]
    if not executables:
        print(f"{PROG}: nothing was compiled", file=stream)
    for folder in executables:
        where = os.path.join(out, folder.name) if out is not None else folder.name
        print(f"{where}: {', '.join(folder.stages) or '(no selected stage)'}", file=stream)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
