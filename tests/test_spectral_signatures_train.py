"""Models, training pieces and the end-to-end digits pipeline (Tran, Li & Mądry 2018, §4)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers.spectral_signatures import config, models, train


def test_digits_end_to_end_9_to_4_removes_poisons_and_backdoor(tmp_path):
  cfg = config.get_config("smoke")
  assert list(cfg.pairs) == [(9, 4)] and list(cfg.epsilons) == [0.1]
  result = train.train_and_evaluate(cfg, str(tmp_path))
  (row,) = result["rows"]
  assert row["num_poisons"] == 13  # round(0.1 · 126): 180 nines, 54 held out
  assert row["pois1"] >= 0.5, "the attack must work before the defence for the test to mean much"
  assert row["caught"] / row["num_poisons"] >= 0.9
  assert row["pois2"] <= 0.05
  assert row["nat2"] >= 0.9
  # Removed per class = round(1.5 · 0.1 · n_y): 127 clean 4s in the split + 13 poisons → 21.
  assert row["target_class_removed"] == 21
  lines = open(os.path.join(tmp_path, "metrics.jsonl")).read().splitlines()
  assert len(lines) == 1 and json.loads(lines[0])["caught"] == row["caught"]
  assert "| 9→4 | 10% | pixel |" in open(os.path.join(tmp_path, "table.md")).read()
  # Resuming finds the finished run and does not repeat it.
  again = train.train_and_evaluate(cfg, str(tmp_path))
  assert again["rows"][0]["caught"] == row["caught"]
  assert len(open(os.path.join(tmp_path, "metrics.jsonl")).read().splitlines()) == 1


def test_resnet32_layout_and_representation_layer():
  model = models.ResNet32(10)
  variables = jax.eval_shape(lambda k: models.init_variables(k, model, (32, 32, 3)),
                             jax.random.key(0))
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))
  assert 0.45e6 < n_params < 0.48e6  # ResNet-32 has ≈ 0.46M parameters
  (logits, feats) = jax.eval_shape(lambda v, x: model.apply(v, x), variables,
                                   jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
  assert logits.shape == (2, 10)
  assert set(feats) == set(models.REPRESENTATION_LAYERS["resnet32"])
  assert feats[models.DEFAULT_LAYER["resnet32"]].shape == (2, 8 * 8 * 64)  # 4096-dim reps
  assert feats["s1u5"].shape == (2, 32 * 32 * 16) and feats["pool"].shape == (2, 64)


def test_augment_is_crop_and_flip():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(16, 6, 6, 2)), jnp.float32)
  y = np.asarray(train.augment_batch(jax.random.key(1), x, pad=0))
  xs = np.asarray(x)
  flipped = [np.array_equal(y[i], xs[i, :, ::-1]) for i in range(16)]
  same = [np.array_equal(y[i], xs[i]) for i in range(16)]
  assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)
  z = np.asarray(train.augment_batch(jax.random.key(2), x, pad=2))
  # Every crop keeps a 2×2 central block of the original somewhere in the centre window.
  for i in range(16):
    zi = z[i] if any(np.array_equal(z[i][2:4, 2:4], xs[i][a:a + 2, b:b + 2])
                     for a in range(5) for b in range(5)) else z[i][:, ::-1]
    assert any(np.array_equal(zi[2:4, 2:4], xs[i][a:a + 2, b:b + 2])
               for a in range(5) for b in range(5))


def test_lr_schedule_and_weight_decay_mask():
  tx = train.make_optimizer(8, 0.1, (0.5, 0.75), momentum=0.0, weight_decay=0.0)
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  steps = []
  for _ in range(8):
    upd, state = tx.update(grads, state, params)
    steps.append(float(-upd["bias"][0]))
  np.testing.assert_allclose(steps, [0.1] * 4 + [0.01] * 2 + [0.001] * 2, rtol=1e-6)
  txd = train.make_optimizer(8, 0.1, momentum=0.0, weight_decay=0.5)
  upd, _ = txd.update(jax.tree.map(jnp.zeros_like, params), txd.init(params), params)
  np.testing.assert_allclose(np.asarray(upd["kernel"]), -0.05)  # decayed: −lr · wd · w
  np.testing.assert_allclose(np.asarray(upd["bias"]), 0.0)  # biases are not decayed
  assert isinstance(optax.tree_utils.tree_get(state, "count"), jax.Array)


def test_training_compiles_once_across_keys_and_subsets():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(100, 4, 4, 1)).astype(np.float32)
  y = (x.reshape(100, -1).sum(1) > 8).astype(np.int32)
  model = models.MLP(2, (8,))
  kw = dict(num_steps=20, batch_size=16)
  v1 = train.train_classifier(jax.random.key(0), model, x, y, **kw)
  tx, chunk = train._trainer(model, 20, 16, 0.1, (0.5, 0.75), 0.9, 2e-4, False, 20, False)
  size = chunk._cache_size()
  keep = np.arange(100) % 3 != 0
  v2 = train.train_classifier(jax.random.key(1), model, x[:90], y[:90], weights=keep[:90], **kw)
  assert chunk._cache_size() == size
  assert not np.allclose(np.asarray(v1["params"]["Dense_0"]["kernel"]),
                         np.asarray(v2["params"]["Dense_0"]["kernel"]))
  # Same arguments, same result: a pure function of the key.
  v3 = train.train_classifier(jax.random.key(0), model, x, y, **kw)
  np.testing.assert_array_equal(np.asarray(v1["params"]["Dense_0"]["kernel"]),
                                np.asarray(v3["params"]["Dense_0"]["kernel"]))


def test_bad_training_inputs():
  model = models.MLP(2, (4,))
  x, y = np.zeros((10, 4, 4, 1), np.float32), np.zeros(10, np.int32)
  with pytest.raises(ValueError, match="num_steps"):
    train.train_classifier(jax.random.key(0), model, x, y, num_steps=0)
  with pytest.raises(ValueError, match="weights"):
    train.train_classifier(jax.random.key(0), model, x, y, num_steps=2,
                           weights=np.zeros(10, bool))
  with pytest.raises(ValueError, match="images"):
    train.train_classifier(jax.random.key(0), model, np.zeros((10, 16), np.float32), y,
                           num_steps=2)
  with pytest.raises(ValueError, match="model"):
    models.make_model("vgg", 10)
  with pytest.raises(ValueError, match="scale"):
    config.get_config("huge")
