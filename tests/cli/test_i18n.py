"""Every message of the command has its French translation."""

from __future__ import annotations

import ast
from pathlib import Path

import scelle.cli
from scelle.cli.i18n import _FRENCH


def test_every_message_is_translated() -> None:
    missing = []
    for module in Path(scelle.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value not in _FRENCH
            ):
                missing.append(f"{module.name}:{node.lineno} {node.args[0].value!r}")
    assert missing == []
