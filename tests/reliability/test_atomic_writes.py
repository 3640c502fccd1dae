"""Atomic writes: a reader never sees half a file, and every file write in src/physlora is atomic or reviewed."""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import pytest

from physlora.errors import PhysloraError
from physlora.io import atomic_path, write_json_atomic

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "physlora"

# Write calls outside the atomic helpers, each checked by hand: (file, enclosing function, call) -> why it is safe.
REVIEWED_WRITES = {
    ("train/metrics.py", "MetricsWriter.__init__", "open"):
        "metrics.jsonl is append-only: each record is one flushed line, and readers skip a last line cut off "
        "by a crash (train/metrics.read_metrics)",
    ("train/engines.py", "DataParallelEngine.save_state", "save_pretrained"):
        "called by checkpoint.save_checkpoint with its temporary folder, which is renamed into place when complete",
    ("train/checkpoint.py", "save_adapter", "save_pretrained"):
        "written into a temporary folder that is renamed into place when complete",
    ("models/pull.py", "_convert_gguf", "save_pretrained"):
        "written into a work folder that pull_model renames into the cache when complete",
    ("serve/merge.py", "merge_run", "save_pretrained"):
        "written into a staging folder that is renamed into place when complete",
    ("serve/process.py", "start_server_process", "open"):
        "the log of a server subprocess, not a run artifact",
    ("serve/tinyrun.py", "build_tiny_run", "save_pretrained"):
        "NOTE: not atomic; builds a small run folder for tests and demos in one go",
    ("report/plots.py", "_save", "savefig"):
        "NOTE: not atomic; a PNG plot cut off by a crash stays until the report is built again",
}
# Packages that write no run-folder artifact, so the scan skips them.
UNSCANNED_PACKAGES = {
    "bench": "benchmark logs and result files; each result is written by one process and read after it exits",
}
WRITE_METHODS = {"write_text", "write_bytes", "savefig", "save_pretrained", "to_json_file"}


def test_reader_never_sees_partial_json(tmp_path):
    path = tmp_path / "summary.json"
    payloads = [
        {"name": "small", "values": list(range(10))},
        {"name": "large", "values": [{"step": step, "loss": step / 7} for step in range(5_000)]},
    ]
    write_json_atomic(path, payloads[0])
    done = threading.Event()
    errors: list[BaseException] = []

    def write_many() -> None:
        try:
            for index in range(100):
                write_json_atomic(path, payloads[index % 2])
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)
        finally:
            done.set()

    writer = threading.Thread(target=write_many)
    writer.start()
    reads = 0
    seen_names = set()
    while not done.is_set() or reads < 50:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data in payloads
        seen_names.add(data["name"])
        reads += 1
    writer.join()

    assert not errors
    assert seen_names == {"small", "large"}
    assert [entry.name for entry in tmp_path.iterdir()] == ["summary.json"]


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "eval.json"
    write_json_atomic(path, {"accuracy": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temp_path:
            temp_path.write_text('{"accuracy": 0.', encoding="utf-8")
            raise RuntimeError("writer crashed")
    assert json.loads(path.read_text(encoding="utf-8")) == {"accuracy": 0.5}
    assert [entry.name for entry in tmp_path.iterdir()] == ["eval.json"]


def test_folder_below_a_file_is_user_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n", encoding="utf-8")
    with pytest.raises(PhysloraError, match=f"cannot create the folder {blocker / 'run'}: Not a directory"):
        write_json_atomic(blocker / "run" / "summary.json", {})


class _WriteFinder(ast.NodeVisitor):
    """Collect file-writing calls with their enclosing function, skipping those inside `with atomic_path(...)`."""

    def __init__(self) -> None:
        self.scope: list[str] = []
        self.atomic_depth = 0
        self.found: list[tuple[str, str, int]] = []

    def _visit_scope(self, node: ast.AST, name: str) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_scope(node, node.name)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_With(self, node: ast.With) -> None:
        atomic = any(
            isinstance(item.context_expr, ast.Call) and _call_name(item.context_expr) == "atomic_path"
            for item in node.items
        )
        self.atomic_depth += atomic
        self.generic_visit(node)
        self.atomic_depth -= atomic

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        writes = (name == "open" and _opens_for_writing(node)) or name in WRITE_METHODS or name == "dump"
        if writes and not self.atomic_depth:
            self.found.append((".".join(self.scope) or "<module>", name, node.lineno))
        self.generic_visit(node)


def _call_name(node: ast.Call) -> str:
    function = node.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return ""


def _opens_for_writing(node: ast.Call) -> bool:
    mode = node.args[1] if len(node.args) > 1 else next((kw.value for kw in node.keywords if kw.arg == "mode"), None)
    if mode is None:
        return False
    if not isinstance(mode, ast.Constant):
        return True  # a computed mode is treated as a write
    return any(flag in str(mode.value) for flag in "wax+")


def test_write_finder_flags_plain_writes():
    source = """
def save(path, temp):
    open(path, "w").write("x")
    path.write_text("x")
    with atomic_path(path) as temp:
        open(temp, "w").write("x")
    open(path, encoding="utf-8").read()
"""
    finder = _WriteFinder()
    finder.visit(ast.parse(source))
    assert finder.found == [("save", "open", 3), ("save", "write_text", 4)]


def test_file_writes_are_atomic_or_reviewed():
    unreviewed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "io.py" or relative.split("/")[0] in UNSCANNED_PACKAGES:
            continue
        finder = _WriteFinder()
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        for function, call, line in finder.found:
            if (relative, function, call) not in REVIEWED_WRITES:
                unreviewed.append(f"{relative}:{line} {function}: {call}(...)")
    assert not unreviewed, "writes outside physlora.io's atomic helpers:\n" + "\n".join(unreviewed)
