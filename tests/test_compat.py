"""Why each alias in scaled_ql_acme_compat exists, so it can be deleted when Acme stops needing
it, and that the aliases apply whatever is imported first.

For every patched name: plain jax 0.4.30 lacks it, the installed dm-acme reads it, and after
`import scaled_ql` it is the modern equivalent.  If one of the first two facts stops holding
(a newer jax or Acme), the test fails and says which patch to remove.  "Plain" means a fresh
interpreter that sees site-packages but runs none of its .pth files, so not the hook that the
package installs (`python -S`, then the site-packages folders appended to sys.path by hand).
"""

import importlib
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import acme
import scaled_ql  # noqa: F401  (applies the aliases)
import scaled_ql_acme_compat as compat

ACME_ROOT = Path(acme.__file__).parent
REPO_ROOT = Path(__file__).resolve().parents[1]

# (patched attribute, how Acme spells the read, an Acme module that contains it, modern name)
PATCHES = [
    ("jax.xla.Device", "jax.xla.Device", "jax/variable_utils.py", "jax.Device"),
    ("jax.xla.DeviceArray", "jax.xla.DeviceArray", "jax/utils.py", "jax.Array"),
    ("jax.numpy.DeviceArray", "jnp.DeviceArray", "agents/jax/dqn/losses.py", "jax.Array"),
    ("jax.pxla.ShardedDeviceArray", "jax.pxla.ShardedDeviceArray", "jax/utils.py", "jax.Array"),
]


def _resolve(dotted: str):
    module_name, *attributes = dotted.split(".")
    value = importlib.import_module(module_name)
    for attribute in attributes:
        value = getattr(value, attribute)
    return value


def _run_plain(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter with jax and Acme as installed, without the .pth hook."""
    prelude = f"import sys\nsys.path.extend({site.getsitepackages()!r})\n"
    return subprocess.run([sys.executable, "-S", "-c", prelude + code], capture_output=True,
                          text=True)


@pytest.mark.parametrize("patched, spelling, acme_file, modern", PATCHES)
def test_patch_is_needed_and_maps_to_modern_name(patched, spelling, acme_file, modern):
    assert spelling in (ACME_ROOT / acme_file).read_text(), (
        f"dm-acme no longer reads {spelling} in {acme_file}: the {patched} alias may be removable"
    )
    probe = "import jax, jax.numpy\n" f"v = jax\n"
    for attribute in patched.split(".")[1:]:
        probe += f"v = getattr(v, {attribute!r}, None)\nif v is None: raise SystemExit(3)\n"
    missing = _run_plain(probe)
    assert missing.returncode == 3, f"plain jax has {patched} again: the alias may be removable"
    assert _resolve(patched) is _resolve(modern)
    assert patched in compat.PATCHED


def test_acme_dqn_fails_to_import_without_the_patches():
    result = _run_plain("import acme.agents.jax.dqn")
    assert result.returncode != 0
    assert "has no attribute 'xla'" in result.stderr or "DeviceArray" in result.stderr


def test_apply_is_idempotent():
    import jax

    before = jax.xla.Device
    assert compat.apply() == compat.PATCHED
    assert jax.xla.Device is before
    assert len(compat.PATCHED) == len(set(compat.PATCHED))


def test_the_installed_hook_patches_jax_when_imported_and_not_before():
    pth = [Path(folder, "scaled_ql_acme_compat.pth") for folder in site.getsitepackages()]
    assert any(path.is_file() for path in pth), (
        "scaled_ql_acme_compat.pth is not in site-packages: reinstall the package (make venv)")
    code = ("import sys\nprint('jax' in sys.modules)\nimport jax\n"
            "print(hasattr(jax, 'xla'), 'scaled_ql' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "True", "False"]  # startup imports no jax


ACME_FIRST = textwrap.dedent("""
    from acme.jax import utils, variable_utils  # jax.xla.Device, at import
    import acme.agents.jax.dqn  # jax.numpy.DeviceArray, at import
    import sys

    assert "scaled_ql" not in sys.modules
    import jax
    import numpy as np

    from scaled_ql.agents.scaled_ql import ScaledQLConfig
    from scaled_ql.agents.scaled_ql.builder import ScaledQLBuilder
    from scaled_ql.networks import MINATAR_NETWORKS

    builder = ScaledQLBuilder(ScaledQLConfig(network=MINATAR_NETWORKS["S"], batch_size=4),
                              games=("minatar/Breakout",))
    networks = builder.make_networks()
    learner = builder.make_learner(jax.random.PRNGKey(0), networks, iter(()))
    policy = builder.make_policy(networks, "minatar/Breakout")
    # The actor pulls the learner's parameters.
    actor = builder.make_actor(jax.random.PRNGKey(1), policy, variable_source=learner)
    actor.update(wait=True)
    timestep = builder.make_environment("minatar/Breakout", seed=0).reset()
    actor.observe_first(timestep)
    action = int(actor.select_action(timestep.observation))
    assert 0 <= action < builder.num_actions[0], action
    fetched = utils.fetch_devicearray(jax.numpy.zeros(3))  # jax.xla.DeviceArray
    assert isinstance(fetched, np.ndarray)
    print("ok", action)
""")


def test_acme_imported_before_scaled_ql_works():
    """Users' Acme programs import Acme first; the installed hook has already patched jax."""
    result = subprocess.run([sys.executable, "-c", ACME_FIRST], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok ")
