"""DMWGAN-PL core: learned prior identities, gradient penalty, generator selection, train step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers._src import testing
from jaxpapers._src.loop import make_chunk
from jaxpapers.dmgan import core, data, networks

N_G = 5


def _posterior(key, batch=16, n_g=N_G):
  return jax.nn.softmax(3.0 * jax.random.normal(key, (batch, n_g)))


def test_prior_gradient_without_entropy_is_r_minus_mean_posterior_over_ng():
  logits = jnp.asarray([0.3, -1.0, 0.5, 2.0, 0.0])
  post = _posterior(jax.random.key(0))
  grad = jax.grad(core.prior_loss)(logits, post, 0.0)
  expected = (jax.nn.softmax(logits) - post.mean(0)) / N_G
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_prior_gradient_entropy_term_matches_hand_derivation():
  # d/dζ_k [-κ H(softmax ζ)] = κ r_k (log r_k + H).
  logits = jnp.asarray([0.3, -1.0, 0.5, 2.0, 0.0])
  post = _posterior(jax.random.key(1))
  kappa = 2.5
  r = jax.nn.softmax(logits)
  h = -jnp.sum(r * jnp.log(r))
  expected = (r - post.mean(0)) / N_G + kappa * r * (jnp.log(r) + h)
  np.testing.assert_allclose(jax.grad(core.prior_loss)(logits, post, kappa), expected, rtol=1e-5,
                             atol=1e-7)


def test_prior_iterations_converge_to_mean_posterior():
  post = _posterior(jax.random.key(2), batch=64)
  opt = optax.sgd(2.0 * N_G)
  state = core.init_prior(N_G, opt)

  def body(s, _):
    return core.prior_update(s, post, 0.0, opt)[0], None

  state, _ = jax.lax.scan(body, state, None, length=2000)
  np.testing.assert_allclose(core.prior_probs(state.logits), post.mean(0), atol=1e-4)


def test_prior_with_reference_optimizer_and_large_entropy_weight_stays_uniform():
  post = jax.nn.one_hot(jnp.zeros(32, jnp.int32), N_G)  # all posterior mass on generator 0
  state = core.init_prior(N_G)

  def body(s, _):
    return core.prior_update(s, post, 1000.0)[0], None

  state, _ = jax.lax.scan(body, state, None, length=300)
  np.testing.assert_allclose(core.prior_probs(state.logits), 1.0 / N_G, atol=2e-3)
  # With κ = 0 the same posterior moves the prior towards generator 0.
  state0, _ = jax.lax.scan(lambda s, _: (core.prior_update(s, post, 0.0)[0], None),
                           core.init_prior(N_G), None, length=300)
  assert core.prior_probs(state0.logits)[0] > 0.3


def _reference_kappas(num_steps, scale=1000.0, decay=0.999):
  """The reference's schedule, step by step: ``rl_counter`` starts at 1 and is multiplied by
  ``decay`` (a control dependency of the prior loss) before each prior step uses
  ``scale · rl_counter``."""
  counter, out = 1.0, []
  for _ in range(num_steps):
    counter *= decay
    out.append(scale * counter)
  return np.asarray(out)


def test_entropy_weight_matches_reference_counter():
  ref = _reference_kappas(30_001)
  assert ref[0] == pytest.approx(999.0)  # κ at the first prior step
  assert float(core.entropy_weight(0)) == pytest.approx(999.0, rel=1e-6)
  steps = np.array([0, 1, 10, 1000, 7000, 30000])
  np.testing.assert_allclose(core.entropy_weight(jnp.asarray(steps)), ref[steps], rtol=1e-4)
  # Other schedules: κ_t = scale · decay^(t + 1), e.g. 2 · 0.5^4 at t = 3.
  assert float(core.entropy_weight(3, 2.0, 0.5)) == 0.125
  np.testing.assert_allclose(core.entropy_weight(jnp.arange(5), 2.0, 0.5),
                             _reference_kappas(5, 2.0, 0.5), rtol=1e-6)


def test_train_step_uses_reference_kappa_at_first_step():
  cfg = core.DMGANConfig(num_generators=2, batch_size=4, critic_steps=1, latent_dim=3)
  gen, crit = networks.toy_models(latent_dim=3)
  sampler = data.toy_sampler(data.four_segments())
  state = core.init_state(jax.random.key(0), cfg, gen, crit)
  step = jax.jit(core.make_train_step(cfg, gen, crit, sampler))
  state, m0 = step(state, 0)
  _, m1 = step(state, 1)
  ref = _reference_kappas(2)
  np.testing.assert_allclose([float(m0["kappa"]), float(m1["kappa"])], ref, rtol=1e-6)


def test_active_generators_and_perplexity():
  logits = jnp.log(jnp.asarray([0.25, 0.25, 0.25, 0.25 - 3e-3, 1e-3, 1e-3, 1e-3]))
  assert int(core.active_generators(core.prior_probs(logits))) == 4
  np.testing.assert_allclose(jnp.exp(core.prior_entropy(jnp.zeros(7))), 7.0, rtol=1e-6)


@pytest.mark.parametrize("norm_a", [0.5, 1.0, 3.0])
def test_gradient_penalty_on_linear_critic(norm_a):
  a = jnp.asarray([0.6, 0.8, 0.0]) * norm_a  # ||a|| = norm_a
  x_hat = jax.random.normal(jax.random.key(0), (7, 3))
  score = lambda x: x @ a
  np.testing.assert_allclose(core.gradient_penalty(score, x_hat, one_sided=True),
                             max(norm_a - 1.0, 0.0) ** 2, atol=1e-5)
  np.testing.assert_allclose(core.gradient_penalty(score, x_hat, one_sided=False),
                             (norm_a - 1.0) ** 2, atol=1e-5)


def test_critic_loss_on_linear_critic_hand_value():
  critic = networks.MLPCritic(2, (4,))
  params = critic.init(jax.random.key(0))
  # Make the critic linear: identity-like body with zero slope region avoided (positive inputs).
  params = {"body": {"dense0": {"w": jnp.asarray([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]),
                                "b": jnp.asarray([10.0, 10.0, 0, 0])}},
            "out": {"w": jnp.asarray([[2.0], [0.0], [0.0], [0.0]]), "b": jnp.zeros(1)}}
  x_real = jnp.asarray([[1.0, 0.0], [3.0, 1.0]])
  x_fake = jnp.asarray([[0.0, 0.0], [2.0, 2.0]])
  loss, (w, gp) = core.critic_loss(params, critic, jax.random.key(1), x_real, x_fake)
  # D(x) = 2 (x_0 + 10): E D(fake) - E D(real) = 2 (1 - 2) = -2; ||∇D|| = 2 -> GP = 1.
  np.testing.assert_allclose(w, 2.0, rtol=1e-6)
  np.testing.assert_allclose(gp, 1.0, rtol=1e-5)
  np.testing.assert_allclose(loss, -2.0 + 10.0, rtol=1e-5)


def test_generate_selects_generator_per_sample_and_matches_loop():
  gen = networks.MLPGenerator(6, (5, 4), 2)
  params = networks.init_generators(jax.random.key(0), gen, 4)
  z = jax.random.uniform(jax.random.key(1), (9, 6), minval=-1, maxval=1)
  c = jnp.asarray([0, 1, 2, 3, 2, 1, 0, 0, 3], jnp.int32)
  out = networks.generate(gen, params, z, c)
  for b in range(9):
    one = jax.tree.map(lambda p: p[int(c[b])], params)
    np.testing.assert_allclose(out[b], gen.apply(one, z[b:b + 1])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k,stride,size", [(5, 2, 14), (5, 2, 7), (3, 2, 8), (4, 2, 9), (3, 1, 6)])
def test_convolutions_match_lax(k, stride, size):
  # conv / conv_transpose (patches @ kernel and the sub-pixel form on CPU) equal lax's, and the
  # per-sample selected transposed convolution equals lax's with each sample's own kernel.
  x = jax.random.normal(jax.random.key(0), (3, size, size, 4))
  w = jax.random.normal(jax.random.key(1), (k, k, 4, 5))
  b = jax.random.normal(jax.random.key(2), (5,))
  dn = ("NHWC", "HWIO", "NHWC")
  ref = jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=dn) + b
  np.testing.assert_allclose(networks.conv({"w": w, "b": b}, x, stride), ref, atol=3e-5)
  ref_t = jax.lax.conv_transpose(x, w, (stride, stride), "SAME", dimension_numbers=dn) + b
  np.testing.assert_allclose(networks.conv_transpose({"w": w, "b": b}, x, stride), ref_t, atol=3e-5)
  stack = {"w": jnp.stack([w, -2.0 * w, w[::-1]]), "b": jnp.stack([b, 2 * b, -b])}
  c = jnp.asarray([2, 0, 1], jnp.int32)
  sel = networks.selected_conv_transpose(stack, x, c, stride)
  for i in range(3):
    one = jax.lax.conv_transpose(x[i:i + 1], stack["w"][c[i]], (stride, stride), "SAME",
                                 dimension_numbers=dn)[0] + stack["b"][c[i]]
    np.testing.assert_allclose(sel[i], one, atol=3e-5)


def test_selected_dense_methods_agree_and_reject_unknown():
  stack = {"w": jax.random.normal(jax.random.key(0), (4, 6, 3)),
           "b": jax.random.normal(jax.random.key(1), (4, 3))}
  x = jax.random.normal(jax.random.key(2), (5, 6))
  c = jnp.asarray([3, 0, 0, 2, 1], jnp.int32)
  loop = jnp.stack([x[i] @ stack["w"][c[i]] + stack["b"][c[i]] for i in range(5)])
  for method in ("gather", "gemm"):
    np.testing.assert_allclose(networks.selected_dense(stack, x, c, method), loop, atol=1e-5)
  with pytest.raises(ValueError, match="method"):
    networks.selected_dense(stack, x, c, "loop")


def test_conv_generator_selection_matches_loop_and_gradients_stay_in_selected():
  gen = networks.ConvGenerator((8, 8, 1), 6, 16, (8, 4), kernel=3)
  params = networks.init_generators(jax.random.key(0), gen, 4)
  z = jax.random.uniform(jax.random.key(1), (5, 6), minval=-1, maxval=1)
  c = jnp.asarray([0, 2, 2, 0, 2], jnp.int32)
  out = jax.jit(lambda p: networks.generate(gen, p, z, c))(params)
  all_out = networks.generate_all(gen, params, z)
  np.testing.assert_allclose(out, all_out[c, jnp.arange(5)], atol=1e-5)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(networks.generate(gen, p, z, c) ** 2)))(params)
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.asarray(leaf[1]) == 0) and np.all(np.asarray(leaf[3]) == 0)
    assert np.any(np.asarray(leaf[0]) != 0) and np.any(np.asarray(leaf[2]) != 0)


def test_encoder_head_matches_reference_form():
  # Q = softmax(W2 lrelu(BN(W1 h)) + b2), BN over the batch without scale (eps 1e-3).
  h = jax.random.normal(jax.random.key(0), (7, 10))
  enc = networks.init_encoder(jax.random.key(1), 10, 3, hidden=6)
  enc["hidden"]["beta"] = jnp.arange(6.0) / 10
  a = np.asarray(h @ enc["hidden"]["w"])
  bn = (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-3) + np.arange(6.0) / 10
  ref = np.where(bn >= 0, bn, 0.2 * bn) @ np.asarray(enc["out"]["w"]) + np.asarray(enc["out"]["b"])
  np.testing.assert_allclose(networks.encoder_logits(enc, h), ref, rtol=1e-4, atol=1e-5)
  lin = networks.init_encoder(jax.random.key(1), 10, 3, hidden=0)
  assert set(lin) == {"out"} and networks.encoder_logits(lin, h).shape == (7, 3)


def test_gradients_reach_only_selected_generators():
  gen = networks.MLPGenerator(6, (5, 4), 2)
  params = networks.init_generators(jax.random.key(0), gen, 4)
  z = jax.random.uniform(jax.random.key(1), (8, 6), minval=-1, maxval=1)
  c = jnp.asarray([0, 2, 2, 0, 0, 2, 2, 0], jnp.int32)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(networks.generate(gen, p, z, c) ** 2)))(params)
  for leaf in jax.tree.leaves(grads):
    assert np.all(np.asarray(leaf[1]) == 0) and np.all(np.asarray(leaf[3]) == 0)
  assert all(np.any(np.asarray(leaf[0]) != 0) for leaf in jax.tree.leaves(grads)
             if leaf.ndim > 1)
  assert all(np.any(np.asarray(leaf[2]) != 0) for leaf in jax.tree.leaves(grads)
             if leaf.ndim > 1)


def test_generator_loss_gradient_zero_for_unselected_generators_with_mi_term():
  gen, crit = networks.toy_models()
  params = networks.init_generators(jax.random.key(0), gen, 3)
  cp = crit.init(jax.random.key(1))
  ep = networks.init_encoder(jax.random.key(2), crit.feature_dim, 3)
  z = core.sample_latents(jax.random.key(3), 6)
  c = jnp.asarray([1, 1, 2, 1, 2, 2], jnp.int32)
  grads = jax.jit(jax.grad(lambda p: core.generator_loss(p, gen, cp, crit, ep, z, c)[0]))(params)
  assert all(np.all(np.asarray(leaf[0]) == 0) for leaf in jax.tree.leaves(grads))
  assert any(np.any(np.asarray(leaf[1]) != 0) for leaf in jax.tree.leaves(grads))


def test_stacked_generators_are_independent_and_image_shapes():
  for make, shape in [(networks.mnist_models, (28, 28, 1)), (networks.digits_models, (8, 8, 1)),
                      (networks.face_bed_models, (64, 64, 3))]:
    gen, crit = make()
    params = jax.eval_shape(lambda: networks.init_generators(jax.random.key(0), gen, 3))
    z = jax.ShapeDtypeStruct((2, 100), jnp.float32)
    c = jax.ShapeDtypeStruct((2,), jnp.int32)
    x = jax.eval_shape(lambda p, z, c: networks.generate(gen, p, z, c), params, z, c)
    assert x.shape == (2, *shape)
    cp = jax.eval_shape(crit.init, jax.random.key(0))
    s, h = jax.eval_shape(crit.apply, cp, x)
    assert s.shape == (2,) and h.shape == (2, crit.feature_dim)
  gen = networks.MLPGenerator()
  p = networks.init_generators(jax.random.key(0), gen, 3)
  assert not np.allclose(p["dense0"]["w"][0], p["dense0"]["w"][1])


def test_quarter_width_stack_has_about_the_parameters_of_a_full_generator():
  g_full, _ = networks.mnist_models(width=1.0)
  g_q, _ = networks.mnist_models(width=0.25)
  full = networks.param_count(jax.eval_shape(g_full.init, jax.random.key(0)))
  stack = networks.param_count(jax.eval_shape(
      lambda: networks.init_generators(jax.random.key(0), g_q, 20)))
  assert 0.5 * full < stack < 2.5 * full
  w = networks.matched_width(networks.MLPGenerator(), 10)
  n = networks.param_count(networks.MLPGenerator(width=w).init(jax.random.key(0)))
  ref = networks.param_count(networks.init_generators(jax.random.key(0), networks.MLPGenerator(), 10))
  assert abs(n - ref) / ref < 0.02


def _tiny_problem(n_g=3, **kw):
  cfg = core.variant_config("dmwgan_pl", n_g, critic_steps=1, batch_size=8, **kw)
  gen, crit = networks.toy_models()
  step = core.make_train_step(cfg, gen, crit, data.toy_sampler(data.four_segments()))
  return cfg, gen, crit, step


def test_train_step_jit_matches_eager_and_vmap_matches_loop():
  cfg, gen, crit, step = _tiny_problem()
  keys = jax.random.split(jax.random.key(0), 2)
  states = jax.vmap(lambda k: core.init_state(k, cfg, gen, crit))(keys)
  s0 = jax.tree.map(lambda a: a[0], states)
  jstep = jax.jit(step)
  jitted = jstep(s0, jnp.int32(3))
  with jax.disable_jit():
    eager = step(s0, jnp.int32(3))
  testing.assert_trees_allclose(jitted, eager, rtol=2e-4, atol=2e-5)
  batched = jax.jit(jax.vmap(step, in_axes=(0, None)))(states, jnp.int32(3))
  for i in range(2):
    one = jstep(jax.tree.map(lambda a: a[i], states), jnp.int32(3))
    testing.assert_trees_allclose(jax.tree.map(lambda a: a[i], batched), one, rtol=2e-4, atol=2e-5)
  testing.assert_trees_allclose(jax.tree.map(lambda a: a[0], batched), jitted, rtol=2e-4, atol=2e-5)
  new, metrics = jitted
  assert int(new.step) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())
  # The prior moves only through its own update (κ_0 = 1000 keeps it almost uniform).
  np.testing.assert_allclose(core.prior_probs(new.prior.logits), 1.0 / 3, atol=1e-2)


def test_uniform_prior_variant_keeps_prior_fixed_and_chunk_does_not_retrace():
  cfg = core.variant_config("dmwgan", 3, critic_steps=1, batch_size=8)
  gen, crit = networks.toy_models()
  counted = testing.TraceCounter(core.make_train_step(cfg, gen, crit,
                                                      data.toy_sampler(data.four_segments())))
  chunk = make_chunk(counted, 3)
  state = core.init_state(jax.random.key(0), cfg, gen, crit)
  state, _ = chunk(state, jnp.int32(0))
  state, m = chunk(state, jnp.int32(3))
  assert counted.count == 1
  assert int(state.step) == 6
  np.testing.assert_array_equal(state.prior.logits, jnp.zeros(3))


def test_bad_inputs_raise_clear_errors():
  gen = networks.MLPGenerator()
  with pytest.raises(ValueError, match="num_generators"):
    networks.init_generators(jax.random.key(0), gen, 0)
  with pytest.raises(ValueError, match="num_generators"):
    core.DMGANConfig(num_generators=0)
  with pytest.raises(ValueError, match="num_generators"):
    core.init_prior(0)
  with pytest.raises(ValueError, match="variant"):
    core.variant_config("gan")
  with pytest.raises(ValueError, match="posterior"):
    core.prior_loss(jnp.zeros(3), jnp.ones((4, 2)) / 2, 0.0)
  crit = networks.MLPCritic()
  cp = crit.init(jax.random.key(0))
  bad = jnp.asarray([[0.0, 1.0], [jnp.nan, 0.0]])
  with pytest.raises(ValueError, match="x_real.*NaN"):
    core.critic_loss(cp, crit, jax.random.key(1), bad, jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match="x_fake"):
    core.critic_loss(cp, crit, jax.random.key(1), jnp.zeros((2, 2)), jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="z"):
    networks.generate(gen, networks.init_generators(jax.random.key(0), gen, 2), jnp.zeros(100),
                      jnp.zeros(1, jnp.int32))
  with pytest.raises(TypeError, match="c"):
    networks.generate(gen, networks.init_generators(jax.random.key(0), gen, 2),
                      jnp.zeros((2, 100)), jnp.zeros(2))
