"""Patches that let dm-acme 0.4.0 import and run on jax 0.4.30.

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
not already have it, so it is a no-op on a jax that still does.  It runs once, when
`scaled_ql` is imported, and before anything imports `acme`.  tests/test_compat.py shows for
each patch that the attribute is really missing from jax and really read by Acme; when a
future Acme no longer reads one, that test says so and the patch can go.

The pure-JAX core (networks, losses, update step) does not need any of this.
"""

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
        jax.xla = types.ModuleType("jax.xla", "scaled_ql._compat: aliases for dm-acme 0.4.0")
        PATCHED.append("jax.xla")
    _ensure(jax.xla, "Device", jax.Device, "jax.xla.Device")
    _ensure(jax.xla, "DeviceArray", jax.Array, "jax.xla.DeviceArray")
    _ensure(jnp, "DeviceArray", jax.Array, "jax.numpy.DeviceArray")
    if not hasattr(jax, "pxla"):
        jax.pxla = types.ModuleType("jax.pxla", "scaled_ql._compat: aliases for dm-acme 0.4.0")
        PATCHED.append("jax.pxla")
    _ensure(jax.pxla, "ShardedDeviceArray", jax.Array, "jax.pxla.ShardedDeviceArray")
    return list(PATCHED)
