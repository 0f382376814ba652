"""Patches that let dm-acme 0.4.0 import and run on jax 0.4.30, whatever is imported first.

dm-acme 0.4.0 (the newest on the package registry) was written for jax 0.3.  The jaxlib
versions it knew are gone from the registry, and jax has since removed three attributes
that Acme reads:

| attribute Acme reads        | where (dm-acme 0.4.0)                                  | modern name |
|-----------------------------|--------------------------------------------------------|-------------|
| `jax.xla.Device`            | acme/jax/utils.py, acme/jax/variable_utils.py (import) | jax.Device  |
| `jax.xla.DeviceArray`       | acme/jax/utils.py (`fetch_devicearray`)                | jax.Array   |
| `jax.numpy.DeviceArray`     | acme/agents/jax/dqn/*.py (annotations, import time),   | jax.Array   |
|                             | acme/adders/reverb/utils.py, acme/jax/savers.py        |             |
| `jax.pxla.ShardedDeviceArray` | acme/jax/utils.py (`get_from_first_device`)          | jax.Array   |

`apply()` supplies each missing name as an alias of its modern equivalent, only if jax does
not already have it, so it is a no-op on a jax that still does.  tests/test_compat.py shows for
each patch that the attribute is really missing from jax and really read by Acme; when a
future Acme no longer reads one, that test says so and the patch can go.

When: the package installs `scaled_ql_acme_compat.pth` into site-packages (setup.py), whose
line calls `install()` at every interpreter start.  That imports nothing: it puts a finder on
`sys.meta_path` that applies the aliases right after `jax` is first imported, so Acme code
works without `import scaled_ql`, or with it after `from acme.jax import utils`.  `import
scaled_ql` also calls `install()`, for interpreters started without site-packages' .pth files
(`python -S`, a source checkout on PYTHONPATH); it imports no jax either, so `scaled-ql` can
take over Ctrl-C before anything heavy is imported.  This is a top-level module, not part of the
`scaled_ql` package, so that the .pth line imports neither jax nor the package.

The pure-JAX core (networks, losses, update step) does not need any of this.
"""

import sys
import types

PATCHED: list[str] = []


def _ensure(module: object, name: str, value: object, qualified: str) -> None:
    if not hasattr(module, name):
        setattr(module, name, value)
        PATCHED.append(qualified)


def apply() -> list[str]:
    """Adds the attributes dm-acme 0.4.0 needs to `jax`; returns the names it added."""
    import jax
    import jax.numpy as jnp

    if not hasattr(jax, "xla"):
        jax.xla = types.ModuleType("jax.xla", "scaled_ql_acme_compat: aliases for dm-acme 0.4.0")
        PATCHED.append("jax.xla")
    _ensure(jax.xla, "Device", jax.Device, "jax.xla.Device")
    _ensure(jax.xla, "DeviceArray", jax.Array, "jax.xla.DeviceArray")
    _ensure(jnp, "DeviceArray", jax.Array, "jax.numpy.DeviceArray")
    if not hasattr(jax, "pxla"):
        jax.pxla = types.ModuleType("jax.pxla", "scaled_ql_acme_compat: aliases for dm-acme 0.4.0")
        PATCHED.append("jax.pxla")
    _ensure(jax.pxla, "ShardedDeviceArray", jax.Array, "jax.pxla.ShardedDeviceArray")
    return list(PATCHED)


class _ApplyAfterLoading:
    """The loader that found `jax`, followed by `apply()`; everything else is the loader's."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        apply()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _JaxFinder:
    """Finds `jax` as the rest of `sys.meta_path` would, with `_ApplyAfterLoading` as loader."""

    def find_spec(self, name: str, path=None, target=None):
        if name != "jax":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ApplyAfterLoading(spec.loader)
                return spec
        return None


def install() -> None:
    """Applies the aliases now if jax is imported, else right after it is (idempotent)."""
    if "jax" in sys.modules:
        apply()
    elif not any(isinstance(finder, _JaxFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _JaxFinder())
