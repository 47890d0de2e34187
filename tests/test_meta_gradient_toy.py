"""Toy chains of the paper's Fig. 1: hand-derived returns and the learned γ(s) / λ(s) shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.meta_gradient import toy


def test_eta_return_hand_derived():
  r = jnp.array([1.0, 2.0, 4.0])
  v = jnp.array([10.0, 20.0, 40.0])
  g = jnp.array([0.0, 0.5, 0.25])  # γ(s); γ(0) is unused
  lam = jnp.array([0.0, 0.5, 1.0])
  # G_2 = 4; G_1 = 2 + .25 (0·40 + 1·4) = 3; G_0 = 1 + .5 (.5·20 + .5·3) = 6.75
  np.testing.assert_allclose(toy.eta_return(r, v, g, lam), [6.75, 3.0, 4.0], rtol=1e-6)
  ones = jnp.ones(3)
  np.testing.assert_allclose(toy.eta_return(r, v, ones, ones), [7.0, 6.0, 4.0], rtol=1e-6)
  np.testing.assert_allclose(toy.eta_return(r, v, ones, jnp.zeros(3)), [21.0, 42.0, 4.0])


def test_chain_rewards():
  r = toy.sample_chain_rewards(jax.random.key(0), "negation", 8)
  np.testing.assert_allclose(r[0::2], -r[1::2])
  assert set(np.abs(np.asarray(r)).tolist()) == {1.0}
  r = toy.sample_chain_rewards(jax.random.key(0), "signal_noise", 10, n_signal=4)
  np.testing.assert_allclose(r[:4], 1.0)
  assert np.all(np.asarray(r[4:]) != 1.0)
  with pytest.raises(ValueError, match="num_states"):
    toy.sample_chain_rewards(jax.random.key(0), "negation", 7)
  with pytest.raises(ValueError, match="chain"):
    toy.sample_chain_rewards(jax.random.key(0), "ring", 8)


def test_meta_learned_gamma_low_on_noise_high_on_signal():
  cfg = toy.ToyConfig(chain="signal_noise", learn="gamma", num_states=10, n_signal=5)
  _, gamma, _ = jax.jit(lambda k: toy.run_toy(k, cfg, 2500))(jax.random.key(0))
  gamma = np.asarray(gamma)
  assert gamma[1:5].min() > 0.9, gamma      # signal states (state 0's γ is never used)
  assert gamma[5:].max() < 0.35, gamma      # noise states


def test_meta_learned_lambda_high_after_random_reward():
  cfg = toy.ToyConfig(chain="negation", learn="lambda", num_states=10)
  _, lam, _ = jax.jit(lambda k: toy.run_toy(k, cfg, 2500))(jax.random.key(0))
  lam = np.asarray(lam)
  odd, even = lam[1::2], lam[2::2]
  assert odd.min() > 0.85, lam               # keep following the trace to the negation
  assert odd.mean() - even.mean() > 0.2, lam  # bootstrapping at the other states is cheap
