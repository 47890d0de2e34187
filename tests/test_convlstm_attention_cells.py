"""Cells of Zhang et al. (2018): parameter counts, identities, equivariance, scan/jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.convlstm_attention import cells, config, model

B, H, W, CIN, C = 2, 5, 6, 3, 4


def _setup(variant, key=0, padding_scale=1.0, **kw):
  k1, k2, k3, k4 = jax.random.split(jax.random.key(key), 4)
  params = cells.init_cell(k1, variant, CIN, C, **kw)
  # Non-trivial gate weights and biases so the tests exercise every path.
  params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(k4, p.shape), params)
  x = jax.random.normal(k2, (B, H, W, CIN))
  h = 0.5 * jax.random.normal(k3, (B, H, W, C))
  carry = cells.LSTMState(h, 0.7 * h)
  return params, carry, x


@pytest.mark.parametrize("variant,expected", [
    ("convlstm", 4_719_616), ("a", 529_920), ("b", 668_160), ("c", 602_368), ("d", 602_368)])
def test_parameter_counts_match_reference_layer_shapes(variant, expected):
  shapes = jax.eval_shape(lambda k: cells.init_cell(k, variant, 256, 256), jax.random.key(0))
  assert cells.count_params(shapes) == expected
  assert expected / 4_719_616 <= 0.15 or variant == "convlstm"


def test_new_variant_recurrent_kernel_flag():
  p3 = cells.init_cell(jax.random.key(0), "new", 256, 256)
  p1 = cells.init_cell(jax.random.key(0), "new", 256, 256, recurrent_kernel=1)
  # gates 512*768 + 768; input-to-state 9*256*256 (+ 9 or 1)*256*256 + 256.
  assert cells.count_params(p3) == 512 * 768 + 768 + 9 * 256 * 256 + 9 * 256 * 256 + 256
  assert cells.count_params(p1) == 512 * 768 + 768 + 9 * 256 * 256 + 1 * 256 * 256 + 256


def _fc_lstm(w, b, x, h, c):
  z = jnp.concatenate([x, h], -1) @ w + b
  i, f, o, g = jnp.split(z, 4, -1)
  c2 = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return jax.nn.sigmoid(o) * jnp.tanh(c2), c2


def test_one_by_one_inputs_reduce_to_fc_lstm():
  k = jax.random.split(jax.random.key(1), 5)
  w = jax.random.normal(k[0], (CIN + C, 4 * C)) * 0.5
  b = jax.random.normal(k[1], (4 * C,)) * 0.5
  x = jax.random.normal(k[2], (B, 1, 1, CIN))
  h = jax.random.normal(k[3], (B, 1, 1, C))
  c = jax.random.normal(k[4], (B, 1, 1, C))
  h_ref, c_ref = _fc_lstm(w, b, x, h, c)

  conv = cells.init_cell(jax.random.key(0), "convlstm", CIN, C)
  conv = {"w": jnp.zeros_like(conv["w"]).at[1, 1].set(w), "b": b}
  (hc, cc), _ = cells.cell(conv, cells.LSTMState(h, c), x)
  np.testing.assert_allclose(hc, h_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(cc, c_ref, rtol=1e-5, atol=1e-6)

  a = cells.init_cell(jax.random.key(0), "a", CIN, C)
  a = {"gate_w": w[:, :3 * C], "gate_b": b[:3 * C],
       "dw": jnp.zeros_like(a["dw"]).at[1, 1].set(1.0), "pw": w[:, 3 * C:], "b": b[3 * C:]}
  (ha, ca), _ = cells.cell(a, cells.LSTMState(h, c), x, variant="a")
  np.testing.assert_allclose(ha, h_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ca, c_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["a", "new"])
def test_gates_of_a_are_spatially_constant(variant):
  params, carry, x = _setup(variant)
  i, f, o, g, att = cells.gates(params, carry, x)
  for gate in (i, f, o):
    assert gate.shape == (B, 1, 1, C)
    assert bool(jnp.all((gate > 0) & (gate < 1)))
  assert g.shape == (B, H, W, C) and att is None
  assert float(jnp.std(g, axis=(1, 2)).min()) > 0  # the candidate is not constant


def test_gate_kernels_initialised_to_one_over_c():
  p = cells.init_cell(jax.random.key(0), "a", CIN, C)
  np.testing.assert_allclose(p["gate_w"], 1.0 / C)


def test_b_attention_sums_to_one_and_is_uniform_for_zero_output_weights():
  params, carry, x = _setup("b")
  _, _, _, _, att = cells.gates(params, carry, x)
  assert att.shape == (B, H, W, 1)
  np.testing.assert_allclose(att.sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
  zero = dict(params, att_z=jnp.zeros_like(params["att_z"]))
  _, _, _, _, att0 = cells.gates(zero, carry, x)
  np.testing.assert_allclose(att0, 1.0 / (H * W), rtol=1e-6)


@pytest.mark.parametrize("variant,which", [("c", 0), ("d", 2)])
def test_attention_gates_in_unit_interval_with_spatial_max_one(variant, which):
  params, carry, x = _setup(variant)
  out = cells.gates(params, carry, x, variant=variant)
  gate, att = out[which], out[4]
  np.testing.assert_array_equal(gate, att)
  assert gate.shape == (B, H, W, C)
  assert bool(jnp.all((gate > 0) & (gate <= 1)))
  np.testing.assert_allclose(gate.max(axis=(1, 2)), 1.0, rtol=0, atol=1e-7)
  assert float(gate.min()) < 0.999  # genuinely spatial
  with pytest.raises(ValueError, match="variant must be given"):
    cells.cell(params, carry, x)


@pytest.mark.parametrize("variant", cells.VARIANTS)
def test_circular_padding_is_shift_equivariant(variant):
  params, carry, x = _setup(variant)
  name = variant

  def step(cy, xx):
    return cells.cell(params, cy, xx, variant=name, padding="CIRCULAR")

  shift = lambda a: jnp.roll(a, (2, -1), axis=(1, 2))
  (h1, c1), _ = step(carry, x)
  (h2, c2), _ = step(cells.LSTMState(shift(carry.h), shift(carry.c)), shift(x))
  np.testing.assert_allclose(h2, shift(h1), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(c2, shift(c1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["convlstm", "b", "d"])
def test_scan_equals_unrolled_loop_jit_eager_and_vmap(variant):
  params, carry, _ = _setup(variant)
  xs = jax.random.normal(jax.random.key(9), (B, 4, H, W, CIN))
  final, hs = cells.run_cell(params, carry, xs, variant=variant)
  cy = carry
  for t in range(4):
    cy, h = cells.cell(params, cy, xs[:, t], variant=variant)
    np.testing.assert_allclose(hs[:, t], h, rtol=1e-5, atol=1e-6)
  testing.assert_trees_allclose(final, cy, rtol=1e-5, atol=1e-6)
  testing.assert_jit_matches_eager(
      lambda p, c, x: cells.run_cell(p, c, x, variant=variant), params, carry, xs)
  # vmap over the batch of unbatched maps equals the batched cell.
  single = lambda h, c, x: cells.cell(params, cells.LSTMState(h, c), x, variant=variant)[1]
  out = testing.assert_vmap_matches_loop(single, (carry.h, carry.c, xs[:, 0]))
  np.testing.assert_allclose(out, cells.cell(params, carry, xs[:, 0], variant=variant)[1],
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", cells.VARIANTS)
def test_grad_finite_and_bf16_close_to_fp32(variant):
  params, carry, x = _setup(variant, key=3)

  def loss(p):
    (h, c), _ = cells.cell(p, carry, x, variant=variant)
    return jnp.sum(h ** 2) + jnp.sum(c)

  grads = jax.grad(loss)(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  assert sum(float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads)) > 0
  (h32, _), _ = cells.cell(params, carry, x, variant=variant)
  bf = lambda a: a.astype(jnp.bfloat16)
  (h16, _), _ = cells.cell(params, cells.LSTMState(bf(carry.h), bf(carry.c)), bf(x), variant=variant)
  assert h16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(h16, np.float32), h32, atol=1e-2, rtol=0)


def test_bad_inputs_raise_clear_errors():
  params, carry, x = _setup("a")
  with pytest.raises(ValueError, match="x must have rank 4"):
    cells.cell(params, carry, x[0, 0])
  with pytest.raises(ValueError, match="channel mismatch"):
    cells.cell(params, carry, jnp.ones((B, H, W, CIN + 1)))
  with pytest.raises(ValueError, match="kernel_size must be an integer >= 1"):
    cells.init_cell(jax.random.key(0), "a", 3, 4, kernel_size=0)
  with pytest.raises(ValueError, match="recurrent_kernel"):
    cells.init_cell(jax.random.key(0), "new", 3, 4, recurrent_kernel=0)
  with pytest.raises(ValueError, match="variant must be one of"):
    cells.init_cell(jax.random.key(0), "e", 3, 4)
  with pytest.raises(ValueError, match="params are for variant 'a'"):
    cells.cell(params, carry, x, variant="convlstm")
  with pytest.raises(ValueError, match="padding must be one of"):
    cells.cell(params, carry, x, padding="REFLECT")
  with pytest.raises(ValueError, match="xs must have rank 5"):
    cells.run_cell(params, carry, x)
  cfg = config.get_config("smoke")
  net = model.init_network(jax.random.key(0), cfg)
  with pytest.raises(ValueError, match="clips must have rank 5"):
    model.apply_network(net, jnp.ones((2, 6, 8, 8)), cfg)
  with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
    model.apply_network(net, jnp.ones((2, 6, 8, 8, 1)), cfg)


def test_network_controls_ignore_order_and_later_frames():
  cfg = config.get_config("smoke")
  clips = jax.random.uniform(jax.random.key(0), (2, cfg.num_frames, cfg.size, cfg.size, 3))
  perm = jnp.roll(jnp.arange(cfg.num_frames), 2)
  for name in model.MODELS:
    cfg.model = name
    params = model.init_network(jax.random.key(1), cfg)
    logits = model.apply_network(params, clips, cfg)
    assert logits.shape == (2, cfg.num_classes)
    permuted = model.apply_network(params, clips[:, perm], cfg)
    later = model.apply_network(params, clips.at[:, 1:].set(0.0), cfg)
    if name == "order_free":
      np.testing.assert_allclose(permuted, logits, rtol=1e-4, atol=1e-5)
    if name == "single_frame":
      np.testing.assert_allclose(later, logits, rtol=1e-5, atol=1e-6)
    if name == "convlstm_net":  # the recurrent network does see the order
      assert float(jnp.abs(permuted - logits).max()) > 1e-6


@pytest.mark.parametrize("t,kt,stride", [(6, 3, (1, 2, 2)), (7, 3, (2, 2, 2)), (6, 5, (3, 1, 1)),
                                         (5, 1, (1, 2, 2))])
def test_conv3d_as_sum_of_2d_convs_equals_direct_3d_convolution(t, kt, stride):
  x = jax.random.normal(jax.random.key(0), (2, t, 9, 9, 3))
  w = jax.random.normal(jax.random.key(1), (kt, 3, 3, 3, 4))
  direct = jax.lax.conv_general_dilated(x, w, stride, "SAME",
                                        dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  got = model.conv3d(x, w, stride)
  assert got.shape == direct.shape
  np.testing.assert_allclose(got, direct, rtol=1e-4, atol=1e-4)


def test_unrolled_scan_equals_rolled_network():
  cfg = config.get_config("smoke")
  clips = jax.random.uniform(jax.random.key(0), (2, cfg.num_frames, cfg.size, cfg.size, 3))
  params = model.init_network(jax.random.key(1), cfg)
  cfg.unroll = 1
  rolled = model.apply_network(params, clips, cfg)
  cfg.unroll = cfg.num_frames
  np.testing.assert_allclose(model.apply_network(params, clips, cfg), rolled, rtol=1e-5, atol=1e-6)
