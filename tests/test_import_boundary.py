"""Import structure (DESIGN.md, layers).

The pure core imports without TensorFlow, Reverb, Launchpad or Acme: the check runs in a fresh
interpreter where a meta-path finder makes those packages raise ImportError, then builds an
Atari and a MinAtar network and runs one jitted update step on each: importing is not enough,
nothing on the call path may reach for them lazily either.

No import circle between the package's modules: every import counts, also one inside a
function or under `TYPE_CHECKING` (a lazy import hides a circle from Python, not from a reader).
"""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

FORBIDDEN = ("tensorflow", "reverb", "launchpad", "acme")

_SCRIPT = textwrap.dedent("""
    import sys

    FORBIDDEN = %r

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"{name} is blocked by the import-boundary test")
            return None

    sys.meta_path.insert(0, Blocker())
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("the blocker does not work")

    import jax
    import numpy as np
    import scaled_ql.networks
    import scaled_ql.agents.scaled_ql as sql
    from scaled_ql.agents.scaled_ql import config, learning, losses  # noqa: F401
    from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION, Transition

    atari = sql.NetworkConfig(torso="nature", width_multiplier=0.125, feed_forward_size=8,
                              num_atoms=5)
    minatar = scaled_ql.networks.MINATAR_NETWORKS["S"]
    for network, spec in ((atari, ATARI_OBSERVATION), (minatar, MINATAR_OBSERVATION)):
        cfg = sql.ScaledQLConfig(network=network, batch_size=2)
        net = scaled_ql.networks.make_networks(cfg.network, [2, 3], spec)
        state = sql.init_training_state(net, cfg, jax.random.PRNGKey(0))
        z = np.zeros((2, *spec.shape), np.uint8)
        batch = Transition(z, np.zeros(2, np.int32), np.ones(2, np.float32),
                           np.full(2, 0.9, np.float32), z, np.array([0, 1], np.int32))
        state, metrics = sql.make_update_fn(net, cfg)(state, batch)
        assert int(state.step) == 1 and np.isfinite(float(metrics["loss"]))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    assert not loaded, loaded
    print("BOUNDARY OK")
""") % (FORBIDDEN,)


@pytest.mark.slow
def test_core_imports_and_runs_without_tf_reverb_launchpad_acme():
    result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True,
                            check=False, text=True, timeout=300,
                            env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BOUNDARY OK" in result.stdout


# ------------------------------------------------------------------------------------------
# Import circles.


def _module_files(package_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every module of the package below `package_dir`."""
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_modules(name: str, path: pathlib.Path, modules: dict) -> set[str]:
    """The package's modules that `name` imports anywhere in its file (`from pkg import sub`
    counts as `pkg.sub` when that is a module, else as `pkg`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in modules:
                    found.add(target)
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_circles(package_dir: pathlib.Path) -> list[list[str]]:
    """The import circles among the package's modules: each a sorted list of the modules of
    one strongly connected component of the import graph (of two modules or more)."""
    modules = _module_files(package_dir)
    graph = {name: sorted(_imported_modules(name, path, modules)) for name, path in modules.items()}
    # Tarjan's algorithm, iterative (the graph is small, but recursion depth is not ours).
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circle_in_the_package():
    assert import_circles(ROOT / "scaled_ql") == []


def test_a_circle_through_a_lazy_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    import pkg.a\n")
    (package / "d.py").write_text("import pkg.a\n")  # imports into the circle, not part of it
    assert import_circles(package) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
