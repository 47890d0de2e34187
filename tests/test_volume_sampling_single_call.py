"""The single-call fast path of ``dpp_volume_sample``: CholeskyQR2 basis, two-level inverse CDF,
in-program input checks. Laws against enumeration; jit == eager == vmap. No timing here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.volume_sampling import exact, samplers

N_DRAWS = 40_000


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _design(n, d, seed=0, dtype=np.float64):
  rng = np.random.default_rng(seed)
  X = rng.standard_normal((n, d))
  X[0] *= 4.0  # very non-uniform leverage scores
  return jnp.asarray(X, dtype)


def _codes(idx, n):
  return np.sum(np.asarray(idx) * n ** np.arange(idx.shape[1])[::-1], axis=1)


def _law_check(X, k, num=N_DRAWS, seed=1):
  """Chi-square p-value and total variation of the sampled subsets against enumeration."""
  n = X.shape[0]
  keys = jax.random.split(jax.random.key(seed), num)
  out = jax.jit(jax.vmap(lambda key, X: samplers.dpp_volume_sample(key, X, k),
                         in_axes=(0, None)))(keys, X)
  idx = np.asarray(out.indices)
  assert np.all(np.diff(idx, axis=1) > 0), "indices must be sorted and distinct"
  subsets, dets = exact.enumerate_volume(jnp.asarray(X, jnp.float64), k)
  table = {c: i for i, c in enumerate(_codes(np.asarray(subsets), n))}
  counts = np.bincount([table[c] for c in _codes(idx, n)], minlength=len(table))
  probs = np.asarray(dets, float) / np.sum(dets)
  freq = counts / num
  tv = 0.5 * np.abs(freq - probs).sum()
  # E[TV] <= 0.5 sum_S sqrt(p_S (1 - p_S) / num): allow four times that.
  tv_bound = 4 * 0.5 * np.sum(np.sqrt(probs * (1 - probs) / num))
  expected = probs * num
  small = expected < 5
  c, p = counts[~small], probs[~small]
  if small.any():
    c, p = np.append(c, counts[small].sum()), np.append(p, probs[small].sum())
  return testing.chi_square_pvalue(c, p), tv, tv_bound


# n = 9: 3 blocks of 3 rows; n = 10: 3 blocks of 4 rows (two zero padding rows); k = d and k > d.
@pytest.mark.parametrize("n,d,k", [(9, 2, 2), (10, 3, 3), (10, 2, 4)])
def test_fast_path_law_matches_enumeration(n, d, k):
  pvalue, tv, tv_bound = _law_check(_design(n, d, seed=n + d), k)
  assert pvalue > 1e-3
  assert tv < tv_bound, (tv, tv_bound)


def test_householder_fallback_law_matches_enumeration():
  # float32 with cond(X) ~ 1e4: one CholeskyQR pass is far from orthonormal (cond^2 eps >> 1),
  # so the basis comes from the Householder branch; the law must not change.
  rng = np.random.default_rng(5)
  a = rng.standard_normal((8, 1))
  X = np.concatenate([a, a + 1e-4 * rng.standard_normal((8, 1))], axis=1)
  X32 = jnp.asarray(X, jnp.float32)
  u1, _, _ = samplers._cholesky_qr(X32)
  assert not float(jnp.sum((u1.T @ u1 - jnp.eye(2)) ** 2)) < 0.25  # the fallback is taken
  pvalue, tv, tv_bound = _law_check(X32, 2)
  assert pvalue > 1e-3
  assert tv < tv_bound, (tv, tv_bound)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_orthonormal_basis(dtype, tol):
  rng = np.random.default_rng(2)
  X = jnp.asarray(rng.standard_t(3.0, (2000, 10)), dtype)
  U, R = samplers.orthonormal_basis(X)
  np.testing.assert_allclose(U.T @ U, np.eye(10), atol=tol)
  np.testing.assert_allclose(U @ R, X, atol=tol * float(jnp.abs(X).max()) * 10)
  # The same projection as Householder QR.
  Q = jnp.linalg.qr(X)[0]
  np.testing.assert_allclose(jnp.sum(U * U, 1), jnp.sum(Q * Q, 1), atol=tol * 10)
  # Ill-conditioned in float32: the Householder fallback is still orthonormal.
  Y = X.at[:, 1].set(X[:, 0] + 1e-6 * X[:, 1])
  U, _ = samplers.orthonormal_basis(Y)
  assert np.all(np.isfinite(np.asarray(U)))
  np.testing.assert_allclose(U.T @ U, np.eye(10), atol=tol * 100)


def test_two_level_inverse_cdf_matches_flat_and_skips_zeros():
  rng = np.random.default_rng(3)
  for n in (1, 2, 7, 10, 101):
    blocks, width = samplers._block_shape(n)
    assert blocks * width >= n and (blocks - 1) * width < n
    p = rng.random(n) * (rng.random(n) < 0.6)
    p[rng.integers(n)] = 0.5  # at least one positive entry
    p2 = jnp.asarray(np.pad(p, (0, blocks * width - n)).reshape(blocks, width))
    us = np.concatenate([rng.random(200), [0.0, 1e-12, 1 - 1e-12, np.nextafter(1.0, 0.0)]])
    pick = jax.jit(jax.vmap(samplers._inverse_cdf_two_level, in_axes=(None, 0)))
    got = np.asarray(pick(p2, jnp.asarray(us)))
    assert np.all(p[np.minimum(got, n - 1)] > 0) and np.all(got < n), n
    cdf = np.cumsum(p)
    want = np.minimum(np.searchsorted(cdf, us[:200] * cdf[-1], side="right"), n - 1)
    np.testing.assert_array_equal(got[:200], want)


def test_eager_equals_jit_equals_vmap():
  X = _design(50, 4, seed=4)
  keys = jax.random.split(jax.random.key(7), 3)
  for k in (4, 9):
    jitted = jax.jit(samplers.dpp_volume_sample, static_argnums=2)
    batched = jax.jit(jax.vmap(lambda key, X, k=k: samplers.dpp_volume_sample(key, X, k),
                               in_axes=(0, None)))(keys, X)
    for i in range(3):
      eager = samplers.dpp_volume_sample(keys[i], X, k)
      np.testing.assert_array_equal(eager.indices, jitted(keys[i], X, k).indices)
      np.testing.assert_array_equal(eager.indices, batched.indices[i])
      np.testing.assert_array_equal(eager.weights, np.ones(k))
      assert int(eager.proposals) == 1


def test_eager_checks_without_host_copy_still_raise():
  X = _design(12, 3, seed=8)
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="X contains NaN or inf"):
    samplers.dpp_volume_sample(key, X.at[3, 1].set(jnp.inf), 3)
  deficient = X.at[:, 2].set(X[:, 0] - 2.0 * X[:, 1])
  with pytest.raises(ValueError, match="full column rank d=3, got rank 2"):
    samplers.dpp_volume_sample(key, deficient, 3)
  with pytest.raises(ValueError, match="full column rank"):  # numpy input, too
    samplers.dpp_volume_sample(key, np.asarray(deficient), 4)
  # A concrete X closed over by a jitted function is still checked (once, at trace time).
  with pytest.raises(ValueError, match="full column rank"):
    jax.jit(lambda key: samplers.dpp_volume_sample(key, deficient, 3))(key)
  # Traced X: no check is possible, the call still runs.
  out = jax.jit(lambda key, X: samplers.dpp_volume_sample(key, X, 3))(key, X)
  assert out.indices.shape == (3,)
