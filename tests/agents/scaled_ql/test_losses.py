"""Golden tests of the Scaled QL losses against independent numpy references.

Each reference below is written from the papers' definitions (Bellemare et al. 2017 for the C51
projection, Kumar et al. 2020 for CQL(H), Farebrother et al. 2024 for HL-Gauss), not from the
code under test.  Random inputs include padded actions whose values are made *large*, so a
bug that lets them win an argmax or enter a logsumexp changes the result.
"""

import math
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from scaled_ql.agents.scaled_ql import losses
from scaled_ql.types import ATARI_OBSERVATION, MINATAR_OBSERVATION, Transition

B, A, N = 7, 6, 11
ATOMS = np.linspace(-2.0, 3.0, N).astype(np.float32)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _project_np(z, probs, atoms):
    """C51 projection as in the paper's Algorithm 1: split each atom's mass to its neighbours."""
    v_min, v_max = atoms[0], atoms[-1]
    dz = atoms[1] - atoms[0]
    out = np.zeros_like(atoms, dtype=np.float64)
    for zj, pj in zip(z, probs):
        b = (np.clip(zj, v_min, v_max) - v_min) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            out[lo] += pj
        else:
            out[lo] += pj * (hi - b)
            out[hi] += pj * (b - lo)
    return out


def _random_case(seed):
    """Random batch where padded actions look best: they must never be selected."""
    rng = np.random.default_rng(seed)
    num_valid = rng.integers(1, A + 1, size=B)
    mask = np.arange(A)[None, :] < num_valid[:, None]  # [B, A]
    logits_tm1 = rng.normal(size=(B, A, N)).astype(np.float32)
    logits_t = rng.normal(size=(B, A, N)).astype(np.float32)
    # Padded actions of the bootstrap state put all their mass on the top atom.
    logits_t = np.where(mask[..., None], logits_t, np.where(np.arange(N) == N - 1, 20.0, -20.0))
    q_t = (_softmax(logits_t) * ATOMS).sum(-1)  # [B, A]
    selector = np.where(mask, rng.normal(size=(B, A)), 1e6).astype(np.float32)
    a_tm1 = np.array([rng.integers(n) for n in num_valid], np.int32)
    r_t = rng.uniform(-1, 1, size=B).astype(np.float32)
    discount_t = rng.choice([0.0, 0.9, 0.99], size=B).astype(np.float32)
    return dict(mask=mask, logits_tm1=logits_tm1, logits_t=logits_t.astype(np.float32),
                q_t=q_t.astype(np.float32), selector=selector, a_tm1=a_tm1, r_t=r_t,
                discount_t=discount_t)


def _valid_argmax(values, mask):
    return int(np.flatnonzero(mask)[np.argmax(values[mask])])


class CategoricalTdTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0, 1, 2)
    def test_matches_numpy_reference(self, seed):
        c = _random_case(seed)
        fn = self.variant(jax.vmap(losses.categorical_td_loss, in_axes=(0,) * 7 + (None,)))
        got = fn(c["logits_tm1"], c["a_tm1"], c["r_t"], c["discount_t"], c["logits_t"],
                 c["selector"], c["mask"], ATOMS)
        for b in range(B):
            a_t = _valid_argmax(c["selector"][b], c["mask"][b])
            target = _project_np(c["r_t"][b] + c["discount_t"][b] * ATOMS,
                                 _softmax(c["logits_t"][b, a_t]), ATOMS)
            log_p = np.log(_softmax(c["logits_tm1"][b, c["a_tm1"][b]].astype(np.float64)))
            np.testing.assert_allclose(got[b], -(target * log_p).sum(), rtol=1e-5, atol=1e-5)

    def test_terminal_target_is_reward_only(self):
        # discount 0: target all on the reward, r = 0.5 lies exactly on atom 5 of [-2, 3].
        logits = jnp.zeros((A, N))
        loss = losses.categorical_td_loss(logits, 0, jnp.float32(0.5), jnp.float32(0.0),
                                          jnp.ones((A, N)), jnp.zeros(A), jnp.ones(A, bool),
                                          jnp.asarray(ATOMS))
        np.testing.assert_allclose(loss, math.log(N), rtol=1e-6)  # -log(1/N) on that atom

    def test_no_gradient_into_target(self):
        c = _random_case(3)
        grad = jax.grad(losses.categorical_td_loss, argnums=4)(
            c["logits_tm1"][0], c["a_tm1"][0], c["r_t"][0], c["discount_t"][0],
            c["logits_t"][0], c["selector"][0], c["mask"][0], ATOMS)
        np.testing.assert_array_equal(grad, 0.0)

    def test_rejects_mismatched_shapes(self):
        with pytest.raises(AssertionError):
            losses.categorical_td_loss(jnp.zeros((A, N)), 0, 0.0, 0.9, jnp.zeros((A, N + 1)),
                                       jnp.zeros(A), jnp.ones(A, bool), jnp.asarray(ATOMS))


class CqlAndBcTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0, 1)
    def test_cql_matches_numpy_and_ignores_padding(self, seed):
        c = _random_case(seed)
        q = np.where(c["mask"], np.random.default_rng(seed).normal(size=(B, A)), 50.0)
        got = self.variant(jax.vmap(losses.cql_loss))(q.astype(np.float32), c["a_tm1"], c["mask"])
        for b in range(B):
            valid = q[b][c["mask"][b]]
            expected = np.log(np.exp(valid).sum()) - q[b, c["a_tm1"][b]]
            np.testing.assert_allclose(got[b], expected, rtol=1e-5, atol=1e-6)
        assert np.all(np.asarray(got) >= 0)

    def test_cql_gradient_never_reaches_padded_actions(self):
        mask = jnp.array([True, True, True, False, False])
        q = jnp.array([0.1, 0.5, -0.3, 9.0, 9.0])
        grad = jax.grad(losses.cql_loss)(q, 1, mask)
        np.testing.assert_array_equal(grad[3:], 0.0)
        p = _softmax(np.asarray(q[:3], np.float64))
        np.testing.assert_allclose(grad[:3], p - np.eye(3)[1], rtol=1e-5)

    def test_bc_is_masked_cross_entropy(self):
        mask = jnp.array([True, True, False])
        logits = jnp.array([1.0, 2.0, 100.0])
        expected = -np.log(np.exp(1.0) / (np.exp(1.0) + np.exp(2.0)))
        np.testing.assert_allclose(losses.bc_loss(logits, 0, mask), expected, rtol=1e-6)

    def test_masked_argmax_never_picks_padding(self):
        q = jnp.array([[1.0, 2.0, 1e9], [-5.0, -6.0, jnp.inf]])
        mask = jnp.array([[True, True, False], [True, True, False]])
        np.testing.assert_array_equal(losses.masked_argmax(q, mask), [1, 0])


def _hl_gauss_np(target, atoms, sigma):
    half = (atoms[1] - atoms[0]) / 2
    edges = [a - half for a in atoms] + [atoms[-1] + half]
    target = min(max(target, atoms[0]), atoms[-1])
    cdf = [0.5 * (1 + math.erf((e - target) / (sigma * math.sqrt(2)))) for e in edges]
    mass = np.diff(cdf)
    return mass / (cdf[-1] - cdf[0])


class HlGaussTest(parameterized.TestCase):
    @parameterized.parameters((0.37, 0.75), (-2.0, 0.75), (5.0, 0.75), (1.0, 0.1), (0.0, 2.0))
    def test_target_matches_numpy(self, target, sigma_ratio):
        sigma = sigma_ratio * (ATOMS[1] - ATOMS[0])
        got = losses.hl_gauss_target(jnp.float32(target), jnp.asarray(ATOMS), sigma)
        np.testing.assert_allclose(got, _hl_gauss_np(target, ATOMS, sigma), atol=1e-6)
        np.testing.assert_allclose(np.sum(got), 1.0, rtol=1e-5)
        # Its mean recovers an in-range target (the bins are symmetric around it).
        if ATOMS[0] + 3 * sigma < target < ATOMS[-1] - 3 * sigma:
            np.testing.assert_allclose(np.sum(got * ATOMS), target, atol=1e-3)

    @chex.variants(with_jit=True, without_jit=True)
    def test_loss_matches_numpy(self):
        c = _random_case(4)
        sigma = 0.75 * (ATOMS[1] - ATOMS[0])
        fn = jax.vmap(losses.hl_gauss_td_loss, in_axes=(0,) * 7 + (None, None))
        got = self.variant(fn)(c["logits_tm1"], c["a_tm1"], c["r_t"], c["discount_t"], c["q_t"],
                               c["selector"], c["mask"], ATOMS, sigma)
        for b in range(B):
            a_t = _valid_argmax(c["selector"][b], c["mask"][b])
            y = float(c["r_t"][b] + c["discount_t"][b] * c["q_t"][b, a_t])
            probs = _hl_gauss_np(y, ATOMS, sigma)
            log_p = np.log(_softmax(c["logits_tm1"][b, c["a_tm1"][b]].astype(np.float64)))
            np.testing.assert_allclose(got[b], -(probs * log_p).sum(), rtol=1e-4, atol=1e-5)


class ScalarTdTest(parameterized.TestCase):
    @parameterized.parameters(None, 0.5)
    def test_matches_numpy(self, delta):
        c = _random_case(5)
        q_tm1 = (_softmax(c["logits_tm1"]) * ATOMS).sum(-1).astype(np.float32)
        fn = jax.vmap(losses.scalar_td_loss, in_axes=(0,) * 7 + (None,))
        got = fn(q_tm1, c["a_tm1"], c["r_t"], c["discount_t"], c["q_t"], c["selector"],
                 c["mask"], delta)
        for b in range(B):
            a_t = _valid_argmax(c["selector"][b], c["mask"][b])
            td = c["r_t"][b] + c["discount_t"][b] * c["q_t"][b, a_t] - q_tm1[b, c["a_tm1"][b]]
            if delta is None or abs(td) <= delta:
                expected = 0.5 * td**2
            else:
                expected = delta * (abs(td) - 0.5 * delta)
            np.testing.assert_allclose(got[b], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", [ATARI_OBSERVATION, MINATAR_OBSERVATION])
def test_check_batch_takes_the_suites_observation_shape(spec):
    def batch(shape):
        frames = np.zeros((4, *shape), np.uint8)
        return Transition(frames, np.zeros(4, np.int32), np.zeros(4, np.float32),
                          np.ones(4, np.float32), frames, np.zeros(4, np.int32))

    losses.check_batch(batch(spec.shape), spec)  # accepted
    other = MINATAR_OBSERVATION if spec is ATARI_OBSERVATION else ATARI_OBSERVATION
    expected = f"{spec.name} observation must be [B, {', '.join(map(str, spec.shape))}]"
    with pytest.raises(AssertionError, match=re.escape(expected)):
        losses.check_batch(batch(other.shape), spec)
