"""The layering rule of docs/architecture.md, checked on every import statement of the tree.

Each package may import only the packages below it (and itself):

    cso                 CLI, simulation, benchmarks, emulation: may import everything
    sc_app   ac_app     the two strata, side by side: never each other
    cso_base            REST/WSGI plumbing, config, HTTP client, wire vocabulary
    topologies          topology files, their model and the address plan

Inside ac_app, the DC agent (``ac_app.dc_agent``) is a program of its own: of the AC it may
import only the resource model (``ac_app.resources``). The AC process never loads Ryu, and
neither does the bottom layer. Imports inside functions count too.
"""
from __future__ import annotations

import ast
import pathlib
import textwrap
from typing import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
OURS = ("topologies", "cso_base", "sc_app", "ac_app", "cso")
#: package -> the packages of ours it may import (itself included).
ALLOWED = {
    "topologies": {"topologies"},
    "cso_base": {"topologies", "cso_base"},
    "sc_app": {"topologies", "cso_base", "sc_app"},
    "ac_app": {"topologies", "cso_base", "ac_app"},
    "cso": set(OURS),
    "mininet": {"topologies", "cso_base", "cso"},
}
#: module prefix -> module prefixes of ours it may import, narrower than its package's rule.
NARROWER = {
    "ac_app.dc_agent": ("topologies", "cso_base", "ac_app.dc_agent", "ac_app.resources"),
}
#: package -> third-party top-level modules it must not import.
FORBIDDEN_THIRD_PARTY = {
    "topologies": {"ryu", "eventlet", "mininet"},
    "cso_base": {"ryu", "mininet"},
    "ac_app": {"ryu", "mininet", "networkx"},
}


def imported(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of everything imported in ``tree``, a module of ``package``.

    ``from m import x`` gives ``m.x``, whether x is a module or a name in m.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{name}.{alias.name}"


def _module_name(root: pathlib.Path, path: pathlib.Path) -> tuple[str, str]:
    """The module's dotted name and the package its relative imports start from."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def violations(root: pathlib.Path) -> list[str]:
    """Every import under ``root`` that breaks the rule, as ``file:line: what``."""
    found = []
    for package in ALLOWED:
        for path in sorted((root / package).rglob("*.py")):
            module, base = _module_name(root, path)
            narrower = next((v for k, v in NARROWER.items()
                             if module == k or module.startswith(k + ".")), None)
            tree = ast.parse(path.read_text(), str(path))
            for line, name in imported(tree, base):
                top = name.split(".")[0]
                where = f"{path.relative_to(root)}:{line}"
                if top in OURS:
                    if top not in ALLOWED[package]:
                        found.append(f"{where}: {package} imports {name}")
                    elif narrower and not any(name == p or name.startswith(p + ".")
                                              for p in narrower):
                        found.append(f"{where}: {module} imports {name}")
                elif top in FORBIDDEN_THIRD_PARTY.get(package, ()):
                    found.append(f"{where}: {package} imports {name}")
    return found


def test_the_tree_keeps_the_layering_rule():
    assert violations(ROOT) == []


def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def test_a_forbidden_import_is_reported_with_file_and_line(tmp_path):
    root = _tree(tmp_path, {
        "ac_app/__init__.py": "",
        "ac_app/good.py": "from cso_base import wire\nfrom topologies.model import Topology\n",
        "ac_app/bad.py": "import json\n\ndef f():\n    from sc_app.pce import PCE\n",
        "sc_app/__init__.py": "",
        "sc_app/worse.py": "from ac_app import strategies\n",
        "cso_base/__init__.py": "",
        "cso_base/up.py": "from cso import main\n",
        "cso/__init__.py": "",
        "cso/top.py": "from sc_app import pce\nfrom ac_app import strategies\n",
    })
    assert violations(root) == [
        "cso_base/up.py:1: cso_base imports cso.main",
        "sc_app/worse.py:1: sc_app imports ac_app.strategies",
        "ac_app/bad.py:4: ac_app imports sc_app.pce.PCE",
    ]


def test_relative_imports_and_the_dc_agent_rule(tmp_path):
    root = _tree(tmp_path, {
        "ac_app/__init__.py": "",
        "ac_app/procedure.py": "",
        "ac_app/dc_agent/__init__.py": "",
        "ac_app/dc_agent/agent.py": ("from ac_app.resources import Demand\n"
                                     "from . import api\n"
                                     "from ..procedure import Procedure\n"),
        "ac_app/dc_agent/api.py": "import ryu.app.wsgi\n",
    })
    assert violations(root) == [
        "ac_app/dc_agent/agent.py:3: ac_app.dc_agent.agent imports ac_app.procedure.Procedure",
        "ac_app/dc_agent/api.py:1: ac_app imports ryu.app.wsgi",
    ]
