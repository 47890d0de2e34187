"""The paper's network as written (Res3D-18 + BN → 2 ConvLSTM → MobileNet + ReLU6).

Parameter counts per block against formulas derived by hand from the reference's layer list,
full-size shapes via ``jax.eval_shape``, BatchNorm train/eval semantics against NumPy, ReLU6
saturation, jit == eager on a tiny clip, and one training step through ``train.make_train``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.convlstm_attention import cells, config, model, train
from jaxpapers.convlstm_attention import paper_network as pn

# Cheap settings for the forward passes: every width / 8 (stem 8-32, ConvLSTM 32, head 32-128).
TINY_WIDTH = 0.125
TINY_CLIP = (2, 4, 16, 16, 3)


# ----------------------------------------------------------------------------- hand formulas


def conv3d(kt, kh, kw, c_in, c_out):  # bias-free
  return kt * kh * kw * c_in * c_out


def bn(c):  # trainable gamma and beta
  return 2 * c


def sep(c_in, c_out):  # depthwise 3x3 (multiplier 1) + pointwise 1x1 + bias, then BN
  return 9 * c_in + c_in * c_out + c_out + bn(c_out)


def res_projection(c_in, c):  # 1x1x1 shortcut + BN, two 3x3x3 convs + BN each
  return conv3d(1, 1, 1, c_in, c) + bn(c) + conv3d(3, 3, 3, c_in, c) + bn(c) + conv3d(3, 3, 3, c, c) + bn(c)


def res_identity(c):
  return 2 * (conv3d(3, 3, 3, c, c) + bn(c))


HAND = {
    "conv1": conv3d(3, 7, 7, 3, 64) + bn(64),
    "res2a": res_projection(64, 64),
    "res2b": res_identity(64),
    "res3a": res_projection(64, 128),
    "res3b": res_identity(128),
    "res4a": res_projection(128, 256),
    "res4b": res_identity(256),
    "sep1a": sep(256, 256),
    "sep1b": sep(256, 256),
    "sep2a": sep(256, 512),
    "sep2b": sep(512, 512),
    "sep2c": sep(512, 512),
    "sep2d": sep(512, 512),
    "sep2e": sep(512, 512),
    "sep3a": sep(512, 1024),
    "sep3b": sep(1024, 1024),
}
# The reference ConvLSTM layer counts at 256 channels (test_convlstm_attention_cells).
CELL = {"convlstm": 4_719_616, "a": 529_920, "b": 668_160, "c": 602_368, "d": 602_368}


def _shapes(variant, num_classes=27, **kw):
  return jax.eval_shape(lambda k: pn.init_paper_network(k, variant, num_classes, **kw),
                        jax.random.key(0))


def test_hand_formulas_give_the_documented_block_counts():
  # Worked out once by hand: conv1 3*7*7*3*64 + 128; res2a 64*64 + 27*64*64*2 + 3*128; ...
  assert HAND["conv1"] == 28_352 and HAND["res2a"] == 225_664 and HAND["res2b"] == 221_440
  assert HAND["res3a"] == 672_512 and HAND["res3b"] == 885_248
  assert HAND["res4a"] == 2_688_512 and HAND["res4b"] == 3_539_968
  assert sum(HAND[b] for b in pn.STEM_BLOCKS) == 8_261_696
  assert HAND["sep1a"] == 68_608 and HAND["sep2a"] == 134_912 and HAND["sep2b"] == 268_288
  assert HAND["sep3a"] == 531_968 and HAND["sep3b"] == 1_060_864
  assert sum(HAND[b] for b in pn.HEAD_BLOCKS) == 2_938_112


@pytest.mark.parametrize("variant", ["convlstm", "a", "b", "c", "d", "new"])
def test_block_counts_match_the_architecture(variant):
  num_classes = 27
  params, bn_state = _shapes(variant, num_classes)
  counts = pn.param_counts(params)
  assert list(counts) == list(pn.BLOCKS)  # network order
  for block, n in HAND.items():
    assert counts[block] == n, block
  assert counts["classifier"] == 1024 * num_classes + num_classes
  second = "a" if variant in ("b", "c", "d") else variant
  cell1 = cells.count_params(jax.eval_shape(lambda k: cells.init_cell(k, variant, 256, 256),
                                            jax.random.key(0)))
  cell2 = cells.count_params(jax.eval_shape(lambda k: cells.init_cell(k, second, 256, 256),
                                            jax.random.key(0)))
  if variant in CELL:
    assert cell1 == CELL[variant] and cell2 == CELL[second]
  assert counts["lstm1"] == cell1 and counts["lstm2"] == cell2
  total = sum(HAND.values()) + cell1 + cell2 + 1024 * num_classes + num_classes
  assert sum(counts.values()) == cells.count_params(params) == total
  # Non-trainable BN statistics: mean and variance per channel of every BN layer.
  bn_channels = 64 + 5 * 64 + 5 * 128 + 5 * 256 + (256 + 256 + 5 * 512 + 2 * 1024)
  assert cells.count_params(bn_state) == 2 * bn_channels == 14_848
  table = pn.format_param_counts(params, bn_state)
  assert f"{total:,d}" in table and "8,261,696" in table and "2,938,112" in table


def test_full_size_shapes():
  params, bn_state = _shapes("c", 27)
  clips = jax.ShapeDtypeStruct((2, 16, 112, 112, 3), jnp.float32)
  stem, stem_state = jax.eval_shape(
      lambda p, s, x: pn.apply_stem(p, s, x, train=True), params, bn_state, clips)
  assert stem.shape == (2, 8, 28, 28, 256)  # (T/2, 28, 28, 256) as the reference reshapes
  head, _ = jax.eval_shape(lambda p, s, x: pn.apply_head(p, s, x, train=True), params, bn_state,
                           jax.ShapeDtypeStruct((16, 28, 28, 256), jnp.float32))
  assert head.shape == (16, 4, 4, 1024)
  for train_mode in (True, False):
    logits, new_state = jax.eval_shape(
        lambda p, s, x, t=train_mode: pn.apply_paper_network(p, s, x, variant="c", train=t),
        params, bn_state, clips)
    assert logits.shape == (2, 27) and logits.dtype == jnp.float32
    assert jax.tree.structure(new_state) == jax.tree.structure(bn_state)
    assert jax.tree.map(lambda a, b: a.shape == b.shape, new_state, bn_state) == jax.tree.map(
        lambda a: True, bn_state)
  assert set(stem_state) == set(pn.STEM_BLOCKS)


# ----------------------------------------------------------------------------- BatchNorm


def _np_bn(x, gamma, beta, mean, var, eps=1e-3):
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def test_batch_norm_train_and_eval_against_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, (3, 4, 5, 6)).astype(np.float32)
  gamma, beta = rng.normal(size=6).astype(np.float32), rng.normal(size=6).astype(np.float32)
  mean0, var0 = rng.normal(size=6).astype(np.float32), rng.uniform(0.5, 2, 6).astype(np.float32)
  p, s = {"gamma": gamma, "beta": beta}, pn.BNState(jnp.asarray(mean0), jnp.asarray(var0))
  x64 = x.astype(np.float64).reshape(-1, 6)
  bm, bv = x64.mean(0), x64.var(0)  # biased, over every axis but channels

  y, s_train = pn.batch_norm(p, s, jnp.asarray(x), train=True)
  np.testing.assert_allclose(y, _np_bn(x, gamma, beta, bm, bv), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(s_train.mean, 0.99 * mean0 + 0.01 * bm, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(s_train.var, 0.99 * var0 + 0.01 * bv, rtol=1e-5, atol=1e-6)

  y, s_eval = pn.batch_norm(p, s, jnp.asarray(x), train=False)
  np.testing.assert_allclose(y, _np_bn(x, gamma, beta, mean0, var0), rtol=1e-4, atol=1e-4)
  assert s_eval is s


def _tiny(variant, key=0, num_classes=5):
  params, bn_state = pn.init_paper_network(jax.random.key(key), variant, num_classes,
                                           width=TINY_WIDTH)
  # Non-trivial running statistics, so eval mode differs from the identity.
  k1, k2 = jax.random.split(jax.random.key(key + 100))
  bn_state = jax.tree.map(
      lambda s: pn.BNState(0.1 * jax.random.normal(k1, s.mean.shape),
                           jax.random.uniform(k2, s.var.shape, minval=0.5, maxval=1.5)),
      bn_state, is_leaf=lambda s: isinstance(s, pn.BNState))
  clips = jax.random.uniform(jax.random.key(key + 1), TINY_CLIP)
  return params, bn_state, clips


def test_network_bn_modes():
  params, bn_state, clips = _tiny("a")
  fwd = jax.jit(pn.apply_paper_network, static_argnames=("variant", "train"))

  # Eval mode: running statistics, state returned unchanged, no coupling across the batch.
  logits, same = fwd(params, bn_state, clips, variant="a", train=False)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), same, bn_state))
  alone, _ = fwd(params, bn_state, clips[:1], variant="a", train=False)
  np.testing.assert_allclose(alone[0], logits[0], rtol=1e-4, atol=1e-6)
  shifted = jax.tree.map(lambda s: pn.BNState(s.mean + 0.5, s.var), bn_state,
                         is_leaf=lambda s: isinstance(s, pn.BNState))
  assert float(jnp.max(jnp.abs(fwd(params, shifted, clips, variant="a", train=False)[0] - logits))) > 1e-4

  # Train mode: batch statistics (the running ones do not matter), running ones updated.
  t_logits, new_state = fwd(params, bn_state, clips, variant="a", train=True)
  t_shifted, _ = fwd(params, shifted, clips, variant="a", train=True)
  np.testing.assert_allclose(t_shifted, t_logits, rtol=1e-5, atol=1e-6)
  # conv1's statistics against a NumPy reduction of a direct 3-D convolution.
  pre = jax.lax.conv_general_dilated(clips, params["conv1"]["w"], (1, 2, 2), "SAME",
                                     dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
  pre = np.asarray(pre, np.float64).reshape(-1, pre.shape[-1])
  old = bn_state["conv1"]["bn"]
  np.testing.assert_allclose(new_state["conv1"]["bn"].mean, 0.99 * np.asarray(old.mean)
                             + 0.01 * pre.mean(0), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(new_state["conv1"]["bn"].var, 0.99 * np.asarray(old.var)
                             + 0.01 * pre.var(0), rtol=1e-4, atol=1e-6)
  for block in pn.STEM_BLOCKS + pn.HEAD_BLOCKS:  # every BN layer moved
    for name, s in new_state[block].items():
      assert not np.allclose(s.mean, bn_state[block][name].mean), (block, name)


def test_relu6_saturates_the_head_and_the_classifier_sees_it():
  params, bn_state, clips = _tiny("convlstm")
  frames = 5.0 * jax.random.normal(jax.random.key(3), (3, 16, 16, params["sep1a"]["dw"].shape[-1]))
  out, _ = pn.apply_head(params, bn_state, frames, train=True)
  assert out.shape == (3, 2, 2, params["sep3b"]["pw"].shape[-1])
  assert float(out.min()) >= 0.0 and float(out.max()) <= 6.0
  big = jax.tree.map(lambda x: x, params)
  big["sep1a"] = dict(params["sep1a"], bn={"gamma": 50.0 * params["sep1a"]["bn"]["gamma"],
                                           "beta": params["sep1a"]["bn"]["beta"]})
  out_big, _ = pn.apply_head(big, bn_state, frames, train=True)
  assert float(out_big.max()) <= 6.0
  # With sep3b's BN shifted far up (down), every output is exactly 6 (0): logits = 6·ΣW + b (b).
  w, b = params["classifier"]["w"], params["classifier"]["b"]
  for beta, expect in ((100.0, 6.0 * w.sum(0) + b), (-100.0, b)):
    p = dict(params, sep3b=dict(params["sep3b"], bn={"gamma": params["sep3b"]["bn"]["gamma"],
                                                     "beta": jnp.full_like(params["sep3b"]["bn"]["beta"], beta)}))
    logits, _ = pn.apply_paper_network(p, bn_state, clips, variant="convlstm", train=False)
    np.testing.assert_allclose(logits, jnp.broadcast_to(expect, logits.shape), rtol=1e-5, atol=1e-5)


def test_jit_equals_eager_and_vmap():
  params, bn_state, clips = _tiny("b")
  eager, eager_state = pn.apply_paper_network(params, bn_state, clips, variant="b", train=True)
  jitted, jit_state = jax.jit(lambda p, s, x: pn.apply_paper_network(p, s, x, variant="b", train=True)
                              )(params, bn_state, clips)
  assert eager.shape == (2, 5) and bool(jnp.all(jnp.isfinite(eager)))
  np.testing.assert_allclose(jitted, eager, rtol=1e-4, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), jit_state, eager_state)
  # vmap over clips in eval mode equals the batched call (eval BN has no batch coupling).
  batched, _ = pn.apply_paper_network(params, bn_state, clips, variant="b", train=False)
  mapped = jax.vmap(lambda x: pn.apply_paper_network(params, bn_state, x[None], variant="b",
                                                     train=False)[0][0])(clips)
  np.testing.assert_allclose(mapped, batched, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- training wiring


def _paper_config():
  c = config.get_config("smoke")
  c.network = "paper"
  c.paper_width = 1 / 16
  c.variant = "c"
  c.num_frames, c.size, c.batch_size, c.num_classes = 4, 16, 2, 4
  c.eval_size = 2
  return c


def test_one_training_step_updates_params_and_bn_state():
  c = _paper_config()
  init, step, evaluate = train.make_train(c)
  state = init(jax.random.key(0))
  assert isinstance(state.bn_state["res3a"]["shortcut_bn"], pn.BNState)
  assert pn.param_counts(state.params)["res3a"] == (
      conv3d(1, 1, 1, 4, 8) + conv3d(3, 3, 3, 4, 8) + conv3d(3, 3, 3, 8, 8) + 3 * bn(8))  # width 1/16
  new, metrics = jax.jit(step)(state, 0)
  assert bool(jnp.isfinite(metrics["loss"]))
  moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.bn_state, state.bn_state)
  assert jax.tree.all(moved)  # every running statistic moved
  assert not np.allclose(new.params["sep2c"]["pw"], state.params["sep2c"]["pw"])
  # The seed-vmapped step and the evaluation with BN statistics (eval mode) trace; compiling them
  # again would only repeat the step's cost.
  stacked = jax.eval_shape(jax.vmap(init), jnp.stack([jax.random.key(0), jax.random.key(1)]))
  assert stacked.bn_state["conv1"]["bn"].mean.shape == (2, 4)
  out, m2 = jax.eval_shape(jax.vmap(step, in_axes=(0, None)), stacked, 0)
  assert m2["loss"].shape == (2,) and jax.tree.structure(out) == jax.tree.structure(stacked)
  acc = jax.eval_shape(evaluate, new.params, jax.random.key(2), new.bn_state)
  assert acc.shape == () and acc.dtype == jnp.float32


# ----------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument(tmp_path):
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="variant"):
    pn.init_paper_network(key, "e", 5)
  with pytest.raises(ValueError, match="num_classes"):
    pn.init_paper_network(key, "a", 0)
  with pytest.raises(ValueError, match="width"):
    pn.init_paper_network(key, "a", 5, width=0.0)
  params, bn_state = _shapes("a", 5, width=TINY_WIDTH)
  clips = jnp.zeros(TINY_CLIP)
  with pytest.raises(ValueError, match="clips"):
    pn.apply_paper_network(params, bn_state, clips[0], variant="a", train=False)
  with pytest.raises(ValueError, match="train"):
    pn.apply_paper_network(params, bn_state, clips, variant="a", train="yes")
  with pytest.raises(ValueError, match="variant"):
    pn.apply_paper_network(params, bn_state, clips, variant="e", train=False)
  with pytest.raises(ValueError, match="bn_state"):
    pn.apply_paper_network(params, {}, clips, variant="a", train=False)
  c = _paper_config()
  with pytest.raises(ValueError, match="config.network"):
    model.init_network(key, c)
  c.network = "huge"
  with pytest.raises(ValueError, match="config.network"):
    train.make_train(c)
  c.network, c.model = "paper", "order_free"
  with pytest.raises(ValueError, match="config.network"):
    train.init_params(key, c)
  c.model, c.controls = "convlstm_net", ["order_free"]
  with pytest.raises(ValueError, match="config.network"):  # before any data or training
    train.train_and_evaluate(c, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "results.json").exists()
