"""The pure core imports without TensorFlow, Reverb, Launchpad or Acme (DESIGN.md, layers).

The check runs in a fresh interpreter where a meta-path finder makes those packages raise
ImportError, then builds an Atari and a MinAtar network and runs one jitted update step on
each: importing is not enough, nothing on the call path may reach for them lazily either.
"""

import os
import subprocess
import sys
import textwrap

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


def test_core_imports_and_runs_without_tf_reverb_launchpad_acme():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=root, capture_output=True, check=False,
                            text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BOUNDARY OK" in result.stdout
