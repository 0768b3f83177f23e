"""`flowjit-dump`: dump folders, stage filtering, pass options, DOT output, graph files and
the command's errors. The tool runs in-process (`cli.main(argv)`), and once as
`python -m flowjit dump`."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flowjit as tf
from flowjit import cli
from flowjit.config import config
from flowjit.graph.serialize import write_graph
from flowjit.ir.parser import parse_func

MLP = textwrap.dedent("""\
    import sys
    import numpy as np
    import flowjit as tf

    x = tf.placeholder(tf.float32, [None, 784], name="x")
    with tf.name_scope("layer1"):
        w1 = tf.Variable(tf.random_normal([784, 16], stddev=0.05), name="w")
        b1 = tf.Variable(tf.zeros([16]), name="b")
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
    with tf.name_scope("layer2"):
        w2 = tf.Variable(tf.random_normal([16, 10], stddev=0.05), name="w")
        b2 = tf.Variable(tf.zeros([10]), name="b")
        logits = tf.add(tf.matmul(hidden, w2), b2, name="logits")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        batch = np.ones((8, 784), np.float32)
        print("logits", sess.run(logits, {x: batch}).shape)
    with open("ran.txt", "w") as f:  # relative: the program runs from its own folder
        f.write(" ".join(sys.argv[1:]))
    """)


@pytest.fixture
def mlp(tmp_path) -> Path:
    path = tmp_path / "prog" / "mlp.py"
    path.parent.mkdir()
    path.write_text(MLP)
    return path


def folder(out: Path, name: str) -> Path:
    """The dump folder of the executable `name` ('NNN-name': numbering is per process)."""
    (match,) = [p for p in out.iterdir() if re.fullmatch(rf"\d+-{name}", p.name)]
    return match


def dump(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_dumps_one_folder_per_executable_with_its_stages(mlp, tmp_path, capsys):
    out = tmp_path / "out"
    assert dump(mlp, "--out", out, "--", "--epochs", "2") == 0
    stdout = capsys.readouterr().out
    assert "logits (8, 10)" in stdout
    assert (mlp.parent / "ran.txt").read_text() == "--epochs 2"
    logits = folder(out, "layer2_logits")
    files = sorted(p.name for p in logits.iterdir())
    assert "ir.ir" in files and "opt.ir" in files
    assert any(re.fullmatch(r"\d\d-fusion\.ir", f) for f in files)
    assert 'kind="contraction"' in (logits / "opt.ir").read_text()
    assert re.search(rf"{re.escape(str(logits))}: ir, .*\d\d-fusion, opt", stdout)
    assert f"{folder(out, 'init')}: ir, " in stdout


def test_default_out_is_flowjit_dump_in_the_current_folder(mlp, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dump(mlp, "--stages", "opt") == 0
    assert [p.name for p in folder(tmp_path / "flowjit_dump", "init").iterdir()] == ["opt.ir"]


def test_dumped_ir_parses_back(mlp, tmp_path):
    out = tmp_path / "out"
    dump(mlp, "--out", out, "--stages", "ir")
    func = parse_func((folder(out, "layer2_logits") / "ir.ir").read_text())
    assert [p.key for p in func.params][0] == "x:0"
    assert [r.key for r in func.results] == ["layer2/logits:0"]


def test_stdout_prints_the_stage_files(mlp, capsys):
    assert dump(mlp, "--stdout", "--stages", "ir,opt") == 0
    captured = capsys.readouterr()
    headers = re.findall(r"^==> (\d+-\w+/\w+\.ir) <==$", captured.out, re.M)
    assert [h.split("/")[1] for h in headers] == ["ir.ir", "opt.ir"] * 2
    assert "func @layer2_logits(%x: f32[8,784]" in captured.out
    assert "layer2_logits: ir, opt" in captured.err  # the summary keeps stdout clean


def test_disabling_fusion_leaves_no_fusion(mlp, tmp_path):
    out = tmp_path / "out"
    assert dump(mlp, "--out", out, "--disable-pass", "fusion") == 0
    logits = folder(out, "layer2_logits")
    assert "fusion" not in (logits / "opt.ir").read_text()
    assert not list(logits.glob("*-fusion.ir"))


def test_passes_replace_the_pipeline(mlp, tmp_path):
    out = tmp_path / "out"
    assert dump(mlp, "--out", out, "--passes", "fusion") == 0
    logits = folder(out, "layer2_logits")
    files = sorted(p.name for p in logits.iterdir() if p.suffix == ".ir")  # IR stages
    assert len(files) == 3 and re.fullmatch(r"\d\d-fusion\.ir", files[0]), files
    assert config.passes is None and config.dump_dir is None  # restored afterwards


def test_dot_draws_each_kept_stage(mlp, tmp_path):
    out = tmp_path / "out"
    assert dump(mlp, "--out", out, "--stages", "opt", "--dot") == 0
    logits = folder(out, "layer2_logits")
    func = cli.parse_dump((logits / "opt.ir").read_text())
    dot = (logits / "opt.dot").read_text()
    assert re.match(r"(strict )?digraph ", dot)
    nodes = re.findall(r"^\s*\"?(\w+)\"? \[", dot, re.M)
    nodes = [n for n in nodes if n not in ("node", "edge", "graph")]
    assert len(nodes) == len(func.params) + len(func.body) + len(func.results)
    assert "fusion contraction" in dot


def test_program_errors_exit_1_after_the_summary(tmp_path, capsys):
    program = tmp_path / "fails.py"
    program.write_text(MLP.replace('with open("ran.txt"',
                                   'raise RuntimeError("boom")\nwith open("ran.txt"'))
    assert dump(program, "--out", tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "layer2_logits: ir" in captured.out
    assert 'fails.py", line' in captured.err and "RuntimeError: boom" in captured.err
    assert "cli.py" not in captured.err  # the traceback starts in the program


@pytest.mark.parametrize("argv, message", [
    (["missing.py"], "no such file: 'missing.py'"),
    (["{mlp}", "--passes", "cse,fuse"], "unknown pass 'fuse' in --passes; known: "),
    (["{mlp}", "--disable-pass", "nope"], "unknown pass 'nope' in --disable-pass"),
    (["{mlp}", "--stages", "lowered"], "unknown stage 'lowered' in --stages"),
    (["{mlp}", "--fetch", "y:0"], "--fetch and --feed apply to graph files"),
    (["{graph}"], "is a graph file: name what to compile with --fetch"),
    (["{graph}", "--fetch", "logitz:0"], "--fetch logitz:0: The name 'logitz:0' refers to a "
                                         "Tensor which does not exist"),
    (["{graph}", "--fetch", "logits:0", "--feed", "x=i32[4,3]"],
     "--feed x=i32[4,3]: tensor 'x:0' (created at "),
])
def test_usage_errors_exit_2_with_one_line(argv, message, mlp, tmp_path, capsys):
    graph = save_small_graph(tmp_path)
    argv = [a.format(mlp=mlp, graph=graph) for a in argv]
    assert dump(*argv, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("flowjit-dump: error: ") and message in err
    assert err.count("\n") == 1


def save_small_graph(tmp_path: Path) -> str:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 3], name="x")
        w = tf.Variable(tf.ones([3, 2]), name="w")
        logits = tf.nn.relu(tf.matmul(x, w) + 1.0, name="logits")
        with tf.control_dependencies([tf.global_variables_initializer()]):
            tf.identity(logits, name="after_init")
    return write_graph(graph, str(tmp_path / "saved"), "small.graph")


def test_graph_file_is_compiled_for_its_fetches(tmp_path, capsys):
    graph = save_small_graph(tmp_path)
    out = tmp_path / "out"
    assert dump(graph, "--fetch", "logits:0", "--fetch", "init", "--out", out, "--dot") == 0
    opt = (folder(out, "logits") / "opt.ir").read_text()
    assert "%x: f32[?,3] {feed=\"x:0\"}" in opt  # typed from the graph: '?' stays
    assert 'return %' in opt and '{var="w"}' in opt  # 'init' ran as a target
    graph_dot = (out / "graph.dot").read_text()
    assert graph_dot.startswith("digraph")
    assert re.search(r'-> "?op\d+"? \[.*style="?dashed', graph_dot)  # a control edge


def test_graph_file_feeds_set_the_types(tmp_path):
    graph = save_small_graph(tmp_path)
    out = tmp_path / "out"
    assert dump(graph, "--fetch", "logits", "--feed", "x=f32[5,3]", "--out", out) == 0
    assert "%x: f32[5,3]" in (folder(out, "logits") / "ir.ir").read_text()


def test_python_dash_m_flowjit_dump(mlp, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(cli.__file__).parents[1]))
    done = subprocess.run([sys.executable, "-m", "flowjit", "dump", str(mlp), "--out", str(out),
                           "--stages", "opt"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert (folder(out, "layer2_logits") / "opt.ir").exists()
    assert "layer2_logits: opt" in done.stdout


def test_native_stages_show_llvm_ir_and_ptx(tmp_path, monkeypatch):
    import os
    script = tmp_path / "chain.py"
    script.write_text("import numpy as np, flowjit as tf\n"
                      "x = tf.placeholder(tf.float32, [64, 8])\n"
                      "y = tf.nn.relu(1.5 * x + 0.25) * tf.sigmoid(x) - 0.5 * tf.tanh(x)\n"
                      "with tf.Session(backend='llvm') as s:\n"
                      "    s.run(y, {x: np.zeros((64, 8), np.float32)})\n")
    out = tmp_path / "dumps"
    assert cli.main([str(script), "--out", str(out), "--stages", "opt,llvm,llvm-opt,ptx"]) == 0
    (folder,) = os.listdir(out)
    files = sorted(os.listdir(out / folder))
    assert files == ["llvm-opt.ll", "llvm.ll", "opt.ir", "ptx.ptx"]
    assert "define void @\"k0\"" in (out / folder / "llvm.ll").read_text()
    assert "<16 x float>" in (out / folder / "llvm-opt.ll").read_text() or \
        "<8 x float>" in (out / folder / "llvm-opt.ll").read_text()  # vectorized
    assert re.search(r"\.entry k\d+\(", (out / folder / "ptx.ptx").read_text())
