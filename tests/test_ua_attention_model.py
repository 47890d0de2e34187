"""Model tests for uncertainty-aware attention (Heo et al., NeurIPS 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.ua_attention import model as ua

B, T, D, E = 4, 5, 3, 4
LENGTHS = np.array([5, 3, 1, 4])


def _inputs(seed=0, t=T):
  x = jax.random.normal(jax.random.key(seed), (B, t, D))
  mask = jnp.arange(t)[None, :] < jnp.asarray(LENGTHS)[:, None]
  return x * mask[..., None], mask


def _model(variant):
  return ua.RetainModel(variant=variant, embed_dim=E, hidden_dim=E)


@jax.jit
def _apply_ua(key, params, x, mask):
  return ua.apply_model(key, _model("ua"), params, x, mask, dropout=True, sample=True)


@jax.jit
def _apply_da(key, params, x, mask):
  return ua.apply_model(key, _model("retain_da"), params, x, mask, dropout=True, sample=True)


@pytest.fixture(scope="module")
def ua_params():
  x, mask = _inputs()
  return ua.init_params(jax.random.key(1), _model("ua"), x, mask)


def test_sigma_to_zero_ua_equals_retain_da(ua_params):
  x, mask = _inputs()
  params = jax.tree.map(lambda a: a, ua_params)
  for head in ("alpha_sigma", "beta_sigma"):
    params[head] = {"kernel": jnp.zeros_like(params[head]["kernel"]),
                    "bias": jnp.full_like(params[head]["bias"], -60.0)}  # softplus(-60) ~ 1e-26
  da_params = {k: v for k, v in params.items() if k not in ("alpha_sigma", "beta_sigma")}
  key = jax.random.key(7)
  out_ua = _apply_ua(key, params, x, mask)
  out_da = _apply_da(key, da_params, x, mask)
  assert float(jnp.max(out_ua.alpha_sigma)) < 1e-20
  np.testing.assert_allclose(out_ua.logit, out_da.logit, atol=1e-6)
  np.testing.assert_allclose(out_ua.alpha, out_da.alpha, atol=1e-6)
  np.testing.assert_allclose(out_ua.beta, out_da.beta, atol=1e-6)
  # With the default σ-heads the attention really is stochastic (the test above can fail).
  assert not np.allclose(_apply_ua(key, ua_params, x, mask).alpha, out_da.alpha, atol=1e-4)


def test_attention_simplex_mask_and_beta_range(ua_params):
  x, mask = _inputs()
  out = _apply_ua(jax.random.key(3), ua_params, x, mask)
  np.testing.assert_allclose(jnp.sum(out.alpha, axis=1), 1.0, atol=1e-6)
  assert np.all(np.asarray(out.alpha)[~np.asarray(mask)] == 0.0)
  assert np.all(np.asarray(out.alpha)[np.asarray(mask)] > 0.0)
  beta = np.asarray(out.beta)
  assert np.all(beta > -1.0) and np.all(beta < 1.0)
  assert out.beta.shape == (B, T, E) and out.logit.shape == (B,)
  assert np.all(np.asarray(out.alpha_sigma) > 0) and np.all(np.asarray(out.beta_sigma) > 0)


def test_padding_does_not_change_predictions(ua_params):
  x, mask = _inputs()
  pad = jax.random.normal(jax.random.key(9), (B, 2, D)) * 100.0  # garbage in padded steps
  xp = jnp.concatenate([x, pad], axis=1)
  mp = jnp.concatenate([mask, jnp.zeros((B, 2), bool)], axis=1)
  f = jax.jit(lambda p, x, m: ua.apply_model(jax.random.key(0), _model("ua"), p, x, m,
                                             dropout=False, sample=False))
  a, b = f(ua_params, x, mask), f(ua_params, xp, mp)
  np.testing.assert_allclose(a.logit, b.logit, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(a.alpha, b.alpha[:, :T], atol=1e-6)
  assert np.all(np.asarray(b.alpha[:, T:]) == 0.0)


def test_contributions_sum_to_logit(ua_params):
  x, mask = _inputs()
  out = jax.jit(lambda p: ua.apply_model(jax.random.key(4), _model("ua"), p, x, mask,
                                         dropout=False, sample=True))(ua_params)
  omega = ua.contributions(ua_params, x, out.alpha, out.beta)
  assert omega.shape == (B, T, D)
  total = jnp.sum(omega, axis=(1, 2)) + ua_params["output"]["bias"][0]
  np.testing.assert_allclose(total, out.logit_mean, rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(omega)[~np.asarray(mask)] == 0.0)


def test_reparameterize_moments_and_gradient():
  mu, sigma = jnp.full((200_000,), 1.5), jnp.full((200_000,), 0.3)
  z = ua.reparameterize(jax.random.key(0), mu, sigma)
  assert abs(float(jnp.mean(z)) - 1.5) < 4 * 0.3 / np.sqrt(2e5)
  assert abs(float(jnp.std(z)) - 0.3) < 0.003
  # dz/dσ = ε = (z − μ)/σ and dz/dμ = 1 elementwise.
  g = jax.grad(lambda s: jnp.sum(ua.reparameterize(jax.random.key(0), mu[:5], s)))(sigma[:5])
  np.testing.assert_allclose(g, (z[:5] - 1.5) / 0.3, rtol=1e-5)
  with pytest.raises(ValueError, match="sigma"):
    ua.reparameterize(jax.random.key(0), jnp.zeros(3), jnp.ones((2, 3)))


def test_l2_regularizer_matches_hand_value(ua_params):
  tree = {"a": jnp.array([1.0, 2.0]), "b": {"c": jnp.array([[3.0]])}}
  np.testing.assert_allclose(ua.l2_regularizer(tree, 0.1), 0.1 * 0.5 * 14.0, rtol=1e-6)
  ref = 0.002 * 0.5 * sum(float(np.sum(np.square(np.asarray(p))))
                          for p in jax.tree.leaves(ua_params))
  np.testing.assert_allclose(ua.l2_regularizer(ua_params, 0.002), ref, rtol=1e-5)
  with pytest.raises(ValueError, match="weight"):
    ua.l2_regularizer(tree, -1.0)


def test_masked_softmax_empty_row_is_zero_not_nan():
  a = ua.masked_softmax(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([[True, False],
                                                                        [False, False]]))
  np.testing.assert_allclose(a, [[1.0, 0.0], [0.0, 0.0]])


def test_same_key_same_output_and_keys_differ(ua_params):
  x, mask = _inputs()
  a = _apply_ua(jax.random.key(11), ua_params, x, mask)
  b = _apply_ua(jax.random.key(11), ua_params, x, mask)
  c = _apply_ua(jax.random.key(12), ua_params, x, mask)
  testing.assert_trees_equal(a, b)
  assert not np.allclose(a.logit, c.logit)


def test_mc_predict_jit_compiles_once_and_vmap_matches_loop(ua_params):
  x, mask = _inputs()
  counted = testing.TraceCounter(
      lambda key, p: ua.mc_predict(key, _model("ua"), p, x, mask, num_samples=6))
  f = jax.jit(counted)
  preds = [f(jax.random.key(s), ua_params) for s in (0, 1, 2)]
  assert counted.count == 1
  assert not np.allclose(preds[0].prob, preds[1].prob)
  p = preds[0]
  assert p.probs.shape == (6, B)
  np.testing.assert_allclose(p.prob, jnp.mean(p.probs, 0), rtol=1e-6)
  np.testing.assert_allclose(p.variance, jnp.var(p.probs, 0), rtol=1e-5, atol=1e-9)
  # "map" (default) and "vmap": sample s is apply_model with split(key, S)[s], as in a loop.
  vm = jax.jit(lambda k: ua.mc_predict(k, _model("ua"), ua_params, x, mask, num_samples=6,
                                       method="vmap"))(jax.random.key(0))
  keys = jax.random.split(jax.random.key(0), 6)
  looped = jax.nn.sigmoid(jnp.stack([_apply_ua(k, ua_params, x, mask).logit for k in keys]))
  np.testing.assert_allclose(looped, vm.probs, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(looped, p.probs, rtol=1e-5, atol=1e-6)
  assert np.all(np.std(np.asarray(p.probs), axis=0) > 0)  # samples differ
  # "fold": the samples are rows of one pass over S stacked copies of the batch.
  fold = jax.jit(lambda k: ua.mc_predict(k, _model("ua"), ua_params, x, mask, num_samples=6,
                                         method="fold"))(jax.random.key(0))
  xs, ms = jnp.concatenate([x] * 6), jnp.concatenate([mask] * 6)
  one = _apply_ua(jax.random.key(0), ua_params, xs, ms).logit.reshape(6, B)
  np.testing.assert_allclose(jax.nn.sigmoid(one), fold.probs, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="method"):
    ua.mc_predict(jax.random.key(0), _model("ua"), ua_params, x, mask, method="loop")


def test_retain_da_without_mc_dropout_is_deterministic():
  x, mask = _inputs()
  m = _model("retain_da")
  params = ua.init_params(jax.random.key(2), m, x, mask)
  pred = jax.jit(lambda k: ua.mc_predict(k, m, params, x, mask, num_samples=4,
                                         mc_dropout=False))(jax.random.key(0))
  np.testing.assert_allclose(pred.variance, 0.0, atol=1e-12)


def test_retain_sa_noise_is_input_independent():
  x, mask = _inputs()
  m = _model("retain_sa")
  params = ua.init_params(jax.random.key(2), m, x, mask)
  out = jax.jit(lambda k: ua.apply_model(k, m, params, x, mask))(jax.random.key(0))
  s = np.asarray(out.alpha_sigma)
  np.testing.assert_allclose(s, s.flat[0], rtol=1e-6)
  np.testing.assert_allclose(s.flat[0], jax.nn.softplus(params["alpha_rho"]), rtol=1e-6)
  assert "alpha_sigma" not in params and "output_sigma" not in params


def test_bad_inputs_raise():
  x, mask = _inputs()
  m = _model("ua")
  with pytest.raises(ValueError, match="x must have rank 3"):
    ua.init_params(jax.random.key(0), m, x[0], mask)
  with pytest.raises(ValueError, match="mask must have shape"):
    ua.init_params(jax.random.key(0), m, x, mask[:, :2])
  with pytest.raises(TypeError, match="x must have dtype"):
    ua.init_params(jax.random.key(0), m, x.astype(jnp.int32), mask)
  with pytest.raises(ValueError, match="num_samples"):
    ua.mc_predict(jax.random.key(0), m, {}, x, mask, num_samples=0)
  with pytest.raises(ValueError, match="variant"):
    ua.init_params(jax.random.key(0), _model("bogus"), x, mask)


def test_sigma_heads_start_as_the_reference(ua_params):
  # jayheo/UA: σ-head kernel N(0, 0.01²), bias 0, so σ = softplus(≈0) ≈ log 2 at the start.
  for head in ("alpha_sigma", "beta_sigma"):
    np.testing.assert_array_equal(np.asarray(ua_params[head]["bias"]), 0.0)
  m = ua.RetainModel(variant="ua_plus", embed_dim=16, hidden_dim=16)
  x, mask = _inputs()
  params = ua.init_params(jax.random.key(3), m, x, mask)
  k = np.concatenate([np.asarray(params[h]["kernel"]).ravel()
                      for h in ("alpha_sigma", "beta_sigma", "output_sigma")])
  assert 0.007 < k.std() < 0.013 and abs(k.mean()) < 0.003
  out = ua.apply_model(jax.random.key(0), m, params, x, mask, sample=False)
  valid = np.asarray(mask)
  for s in (np.asarray(out.alpha_sigma)[valid], np.asarray(out.beta_sigma)[valid],
            np.asarray(out.logit_sigma)):
    np.testing.assert_allclose(s, np.log(2.0), atol=0.02)
  sa = ua.init_params(jax.random.key(3), _model("retain_sa"), x, mask)
  np.testing.assert_array_equal(np.asarray(sa["alpha_rho"]), 0.0)


def test_lstm_cell_option_masks_padding_and_names_cells():
  m = ua.RetainModel(variant="ua", embed_dim=E, hidden_dim=E, cell="lstm")
  x, mask = _inputs()
  params = ua.init_params(jax.random.key(4), m, x, mask)
  cells = params["rnn"]["step"]
  assert set(cells) == {"alpha_cell", "beta_cell"} and "ii" in cells["alpha_cell"]  # LSTM gates
  out = ua.apply_model(jax.random.key(0), m, params, x, mask, sample=False)
  x_long = jnp.concatenate([x, 7.0 * jnp.ones((B, 2, D))], axis=1)  # junk in padded visits
  mask_long = jnp.concatenate([mask, jnp.zeros((B, 2), bool)], axis=1)
  out_long = ua.apply_model(jax.random.key(0), m, params, x_long, mask_long, sample=False)
  np.testing.assert_allclose(out_long.logit, out.logit, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(out.alpha)[~np.asarray(mask)], 0.0)
  with pytest.raises(ValueError, match="cell"):
    ua.init_params(jax.random.key(0), ua.RetainModel(cell="rnn"), x, mask)
  with pytest.raises(ValueError, match="keep_rnn"):
    ua.init_params(jax.random.key(0), ua.RetainModel(keep_rnn=0.0), x, mask)
