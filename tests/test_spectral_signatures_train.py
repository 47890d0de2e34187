"""Models, training pieces and the end-to-end digits pipeline (Tran, Li & Mądry 2018, §4)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxpapers.spectral_signatures import attacks, config, data, defense, models, train


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
  assert cfg.model == "cnn" and row["layer"] == "fc"
  # The raw-pixel control is scored with the same removal budget and reported beside it.
  assert 0 <= row["raw_pixels_caught"] <= row["num_poisons"]
  assert "raw_pixels caught" in result["table"]
  # Resuming finds the finished run and does not repeat it.
  again = train.train_and_evaluate(cfg, str(tmp_path))
  assert again["rows"][0]["caught"] == row["caught"]
  assert len(open(os.path.join(tmp_path, "metrics.jsonl")).read().splitlines()) == 1


def test_clean_control_is_added_on_resume_and_another_config_is_refused(tmp_path):
  # A finished run of the same configuration gains its never-poisoned control on resume (same
  # key as its first training, so it equals the control computed in one go); a changed
  # configuration refuses the workdir instead of reusing rows it did not compute.
  cfg = config.get_config("smoke")
  first = train.train_and_evaluate(cfg, str(tmp_path / "a"))["rows"][0]
  assert "pois_clean" not in first
  cfg.clean_control = True
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "a"))
  row = resumed["rows"][0]
  assert row["caught"] == first["caught"] and row["pois2"] == first["pois2"]  # not re-run
  assert len(open(tmp_path / "a" / "metrics.jsonl").read().splitlines()) == 2
  # A model that never saw a poison does not map marked 9s to 4 (the poisoned one did).
  assert row["pois_clean"] <= 0.1 < row["pois1"] and row["nat_clean"] >= 0.9
  s = resumed["summary"]
  assert s["pois_clean"] == row["pois_clean"]
  assert s["pois2_minus_clean"]["mean"] == pytest.approx(row["pois2"] - row["pois_clean"])
  once = train.train_and_evaluate(cfg, str(tmp_path / "b"))["rows"][0]
  assert once["pois_clean"] == row["pois_clean"] and once["nat_clean"] == row["nat_clean"]
  # Reading it back a third time changes nothing.
  train.train_and_evaluate(cfg, str(tmp_path / "a"))
  assert len(open(tmp_path / "a" / "metrics.jsonl").read().splitlines()) == 2
  cfg.train.num_steps += 1
  with pytest.raises(ValueError, match=r"metrics\.jsonl: run 9->4.*another configuration"):
    train.train_and_evaluate(cfg, str(tmp_path / "a"))


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


def test_digits_3_to_8_is_learned_by_the_cnn_but_not_separable_in_raw_pixels():
  # What makes a pair test a *learned* signature: the conv net learns the attack (attack
  # success ≥ 80%, the registered row's gate), while the same centred score on the raw pixels,
  # with the same 1.5·ε·n_y budget, misses most poisons (the 8s' top pixel direction is not the
  # trigger's). 9→4 is the opposite case: raw pixels separate it, so it tests little (see the
  # registered row's control column).
  # (Only the poisoned training; the registered row also retrains.)
  cfg = config.get_config("smoke")
  dataset = data.load_digits(cfg.test_fraction, seed=0)
  k_pois, k_train, _ = jax.random.split(jax.random.fold_in(jax.random.key(0), 0), 3)
  trig = dict(trigger="pixel", position=tuple(cfg.position), colour=cfg.colour)
  poisoned = attacks.poison_dataset(k_pois, dataset.train.images, dataset.train.labels, source=3,
                                    target=8, epsilon=0.1, **trig)
  model = models.make_model(cfg.model, 10)
  variables = train.train_classifier(k_train, model, poisoned.images, poisoned.labels,
                                     **train.train_kwargs(cfg))
  assert train.attack_success(model, variables, dataset.test, source=3, target=8, **trig) >= 0.8
  labels, pm = np.asarray(poisoned.labels), np.asarray(poisoned.poison_mask)
  assert pm.sum() == 13
  raw = np.asarray(poisoned.images).reshape(labels.size, -1)
  raw_removed = defense.removal_mask(defense.spectral_scores(raw, labels, 10), labels, 10, 0.1)
  assert defense.detection_stats(raw_removed, pm).caught < 13 / 2
  _, reps = train.apply_model(model, variables, poisoned.images, layer="fc")
  assert reps.shape == (labels.size, 128)


def test_small_resnet_layout_parameter_count_and_default_layer():
  model = models.make_model("resnet8", 10, (8, 16, 32))
  variables = jax.eval_shape(lambda k: models.init_variables(k, model, (32, 32, 3)),
                             jax.random.key(0))
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables["params"]))
  # stem 3·3·3·8 = 216; s1u1: BN 16 + 2 convs 2·576 + BN 16 = 1184; s2u1: BN 16 + 1×1 shortcut
  # 128 + 1152 + BN 32 + 2304 = 3632; s3u1: 32 + 512 + 4608 + 64 + 9216 = 14432; final BN 64;
  # head 32·10 + 10 = 330.
  assert n_params == 216 + 1184 + 3632 + 14432 + 64 + 330
  (_, feats) = jax.eval_shape(lambda v, x: model.apply(v, x), variables,
                              jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
  assert set(feats) == {"s1u1", "s2u1", "s3u1", "pool"}
  # The paper's rule (two units before the end: s3u3 of ResNet-32), clipped for shallow nets.
  assert models.DEFAULT_LAYER == {"mlp": "hidden1", "cnn": "fc", "resnet8": "s3u1",
                                  "resnet14": "s3u1", "resnet20": "s3u1", "resnet32": "s3u3"}
  assert feats["s3u1"].shape == (2, 8 * 8 * 32)
  with pytest.raises(ValueError, match="filters"):
    models.make_model("cnn", 10, (8, 16, 32))
  with pytest.raises(ValueError, match="filters"):
    models.make_model("resnet20", 10, (8, 16))


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


def test_gpu_check_config_is_one_row_of_the_paper_setup():
  # experiments/gpu_checks.sh runs main.py with default.py:full_one: the paper's ResNet-32 setup
  # on all of CIFAR-10 (no per-class subset), one (pair, ε, trigger, seed).
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), "..", "experiments", "spectral_signatures",
                      "configs", "default.py")
  spec = importlib.util.spec_from_file_location("spectral_default_config", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  cfg = mod.get_config("full_one")
  assert (cfg.dataset, cfg.model, cfg.train_per_class, cfg.test_per_class) == (
      "cifar10", "resnet32", 0, 0)
  assert (cfg.train.num_steps, cfg.train.batch_size, cfg.train.augment) == (80_000, 128, True)
  assert tuple(cfg.train.lr_boundaries) == (0.5, 0.75) and cfg.train.learning_rate == 0.1
  assert [tuple(p) for p in cfg.pairs] == [(0, 2)] and list(cfg.epsilons) == [0.1]
  assert list(cfg.triggers) == ["x"] and list(cfg.seeds) == [0]
  assert (cfg.layer or models.DEFAULT_LAYER[cfg.model]) == "s3u3"
  assert mod.get_config("cifar_cpu").model == "resnet8"
