"""The layout holds: every hub module imports on its own, in any order, with its imports at its top."""

from __future__ import annotations

import ast
import asyncio
import json
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

HUB = ROOT / "hub"


def modules() -> list[str]:
    names = []
    for path in sorted(HUB.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# Runs in a fresh interpreter: each module (and then three shuffled orders of all) is imported with every
# hub module forgotten first, so each import starts from nothing of hub's own; the third-party packages
# stay loaded, which keeps the whole check to seconds.
CHECK = """
import importlib, json, random, sys, traceback
names = json.loads(sys.argv[1])
def fresh(order):
    for name in [m for m in sys.modules if m == "hub" or m.startswith("hub.")]:
        del sys.modules[name]
    for name in order:
        importlib.import_module(name)
failed = []
for order in [[n] for n in names] + [random.Random(seed).sample(names, len(names)) for seed in range(3)]:
    try:
        fresh(order)
    except Exception as exc:
        failed.append(f"{order[0] if len(order) == 1 else 'a shuffled order'}: {type(exc).__name__}: {exc}")
print(json.dumps(failed))
"""


async def test_every_hub_module_imports_on_its_own_and_in_any_order() -> None:
    names = modules()
    assert len(names) > 40 and "hub.core.hub" in names and "hub.cli.main" in names
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHECK, json.dumps(names), cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    failed = json.loads(out)
    assert not failed, "\n".join(failed)


def top_level_imports_after_code(path: Path) -> list[int]:
    """Lines of module-level imports that come after other module-level code."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    seen_code, late = False, []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if seen_code:
                late.append(node.lineno)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # the docstring
            continue
        else:
            seen_code = True
    return late


@pytest.mark.parametrize("path", sorted(HUB.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_stand_at_the_top(path: Path) -> None:
    assert not top_level_imports_after_code(path), f"{path}: imports below the module's code"
