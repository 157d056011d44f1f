"""The shape DESIGN.md draws, checked on the code itself: no import circle, the command
loads only what a run needs, and no long function that does not say why it is long."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

from scelle.core import errors

SOURCE = Path(__file__).resolve().parents[1] / "src" / "scelle"
HEAVY = ("cryptography", "httpx", "pydantic", "rich", "django", "ninja", "scelle.platform")
"""What `scelle --help` must not load: each costs tens of milliseconds at every start."""
OURS = {name for name, value in vars(errors).items() if isinstance(value, type)}
"""Scellé's error classes (`ScelleError` and its families)."""
LONGEST = 60
"""Lines a function may have before its docstring must say why it is longer."""


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import circles between modules of scelle (Tarjan's strongly connected parts)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in edges[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == module:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(modules)))
    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_back() -> None:
    assert _cycles(grimp.build_graph("scelle")) == []


def _loaded_by(code: str) -> list[str]:
    ran = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, env={"SCELLE_LANG": "en", "PATH": ""},
    )  # fmt: skip
    return [m for m in ran.stdout.splitlines()[-1].split() if m.startswith(HEAVY)]


def test_scelle_help_loads_no_command_and_no_library_of_theirs() -> None:
    assert _loaded_by("from scelle.cli.main import run\nrun(['--help'])") == []
    assert _loaded_by("from scelle.cli.main import run\nrun(['--version'])") == []


def test_the_platform_loads_only_when_serve_or_admin_runs() -> None:
    loaded = _loaded_by("import scelle.cli.platform")
    assert not [m for m in loaded if m.startswith(("django", "scelle.platform"))]
    loaded = _loaded_by("from scelle.cli.main import run\nrun(['keys', '--help'])")
    assert not [m for m in loaded if m.startswith(("django", "scelle.platform"))]


def long_functions() -> list[tuple[str, int, str]]:
    """(file:line, lines, name) of each function over LONGEST lines whose docstring has no
    line starting "Long because"."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            why = ast.get_docstring(node) or ""
            if length > LONGEST and not any(
                line.strip().startswith("Long because") for line in why.splitlines()
            ):
                where = f"{path.relative_to(SOURCE.parent)}:{node.lineno}"
                found.append((where, length, node.name))
    return found


def test_no_long_function_without_its_reason() -> None:
    assert long_functions() == []


def untranslatable_raises() -> list[str]:
    """Where the platform raises one of its errors with text already translated (`_()`),
    already filled (`%`, an f-string) or written as a bare English string: each must be an
    `N_("…{name}…")` template with its values apart, said in the reader's language where
    it is shown (the API, the pages, the command)."""
    found = []
    for path in sorted((SOURCE / "platform").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in OURS  # not Django's (forms take translated text)
                and node.args
            ):
                continue
            message = node.args[0]
            bare = isinstance(message, ast.JoinedStr | ast.BinOp | ast.Constant)
            translated = isinstance(message, ast.Call) and getattr(message.func, "id", "") in (
                "_",
                "gettext",
            )
            if bare or translated:
                found.append(f"{path.relative_to(SOURCE.parent)}:{node.lineno}")
    return found


def test_the_platform_raises_templates_said_where_they_are_shown() -> None:
    assert untranslatable_raises() == []
