"""The devnet is one more chain: nothing outside it imports from ``lpbot.devnet`` (DESIGN.md,
"Layers"), but for its data type and the few uses listed here with their reason.

Every import of every module is read from its syntax tree, function-local and ``TYPE_CHECKING``
ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

LPBOT = Path(__file__).resolve().parents[1] / "lpbot"

# the devnet itself, and the commands and demos that exist to run it
DEVNET_SIDE = ("devnet/", "demo.py", "core_demo.py", "cli/devnet.py", "cli/demo.py", "testing/")
# the devnet manifest is the data type every chain's addresses are written in
ANYONE = {"lpbot.devnet.manifest"}
# (module, imported devnet module): why it may
ALLOWED = {
    ("chain/forksim.py", "lpbot.devnet.anvil"): (
        "the dry-run fork is an Anvil process; starting one is lpbot.devnet.anvil's job"
    ),
    ("app.py", "lpbot.devnet.context"): (
        "a devnet chain (configured by its manifest): its bot account sends where no key is "
        "configured, only inside `chain.manifest is not None`"
    ),
    ("cli/rebalance.py", "lpbot.devnet.keys"): (
        "--dev-owner N: the devnet's development owners, signing only when the flag is given"
    ),
}


def _devnet_imports(path: Path) -> set[str]:
    """The ``lpbot.devnet`` modules ``path`` imports (``from lpbot.devnet import x`` as
    ``lpbot.devnet.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lpbot.devnet"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "lpbot.devnet":
                found.update(f"lpbot.devnet.{a.name}" for a in node.names)
            elif node.module.startswith("lpbot.devnet."):
                found.add(node.module)
    return found


def test_nothing_outside_the_devnet_imports_from_it() -> None:
    wrong = []
    used = set()
    for path in sorted(LPBOT.rglob("*.py")):
        rel = path.relative_to(LPBOT).as_posix()
        if rel.startswith(DEVNET_SIDE):
            continue
        for module in sorted(_devnet_imports(path) - ANYONE):
            if (rel, module) in ALLOWED:
                used.add((rel, module))
            else:
                wrong.append(f"lpbot/{rel} imports {module}")
    assert wrong == [], "\n".join(wrong)
    # an allowance no module needs any more is taken out of the list
    assert used == set(ALLOWED)


def test_the_scan_sees_function_local_and_package_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from lpbot.devnet import anvil\n    import lpbot.devnet.keys\n"
        "from lpbot.devnet.manifest import Manifest\n"
    )
    assert _devnet_imports(source) == {
        "lpbot.devnet.anvil",
        "lpbot.devnet.keys",
        "lpbot.devnet.manifest",
    }
