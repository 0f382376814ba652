"""Why each alias in scaled_ql._compat exists, so it can be deleted when Acme stops needing it.

For every patched name: plain jax 0.4.30 lacks it, the installed dm-acme reads it, and after
`import scaled_ql` it is the modern equivalent.  If one of the first two facts stops holding
(a newer jax or Acme), the test fails and says which patch to remove.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import acme
import scaled_ql  # noqa: F401  (applies the aliases)
from scaled_ql import _compat

ACME_ROOT = Path(acme.__file__).parent

# (patched attribute, how Acme spells the read, an Acme module that contains it, modern name)
PATCHES = [
    ("jax.xla.Device", "jax.xla.Device", "jax/variable_utils.py", "jax.Device"),
    ("jax.xla.DeviceArray", "jax.xla.DeviceArray", "jax/utils.py", "jax.Array"),
    ("jax.numpy.DeviceArray", "jnp.DeviceArray", "agents/jax/dqn/losses.py", "jax.Array"),
    ("jax.pxla.ShardedDeviceArray", "jax.pxla.ShardedDeviceArray", "jax/utils.py", "jax.Array"),
]


def _resolve(dotted: str):
    import importlib

    module_name, *attributes = dotted.split(".")
    value = importlib.import_module(module_name)
    for attribute in attributes:
        value = getattr(value, attribute)
    return value


@pytest.mark.parametrize("patched, spelling, acme_file, modern", PATCHES)
def test_patch_is_needed_and_maps_to_modern_name(patched, spelling, acme_file, modern):
    assert spelling in (ACME_ROOT / acme_file).read_text(), (
        f"dm-acme no longer reads {spelling} in {acme_file}: the {patched} alias may be removable"
    )
    probe = "import jax, jax.numpy\n" f"v = jax\n"
    for attribute in patched.split(".")[1:]:
        probe += f"v = getattr(v, {attribute!r}, None)\nif v is None: raise SystemExit(3)\n"
    missing = subprocess.run([sys.executable, "-c", probe], capture_output=True)
    assert missing.returncode == 3, f"plain jax has {patched} again: the alias may be removable"
    assert _resolve(patched) is _resolve(modern)
    assert patched in _compat.PATCHED


def test_acme_dqn_fails_to_import_without_the_patches():
    code = "import acme.agents.jax.dqn"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "has no attribute 'xla'" in result.stderr or "DeviceArray" in result.stderr


def test_apply_is_idempotent():
    import jax

    before = jax.xla.Device
    assert _compat.apply() == _compat.PATCHED
    assert jax.xla.Device is before
    assert len(_compat.PATCHED) == len(set(_compat.PATCHED))
