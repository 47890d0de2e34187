"""Training, evaluation, experiment driver and reproductions of uncertainty-aware attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import registry
from jaxpapers._src.metrics import read_metrics
from jaxpapers.ua_attention import config as config_lib
from jaxpapers.ua_attention import data as data_lib
from jaxpapers.ua_attention import model as model_lib
from jaxpapers.ua_attention import study, train


def _tiny_config():
  c = config_lib.get_config("smoke")
  c.variants = ("ua_plus",)
  c.synthetic.num_patients = 300
  c.synthetic.max_visits = 4
  c.synthetic.num_features = 3
  c.model.embed_dim = c.model.hidden_dim = 6
  c.train.batch_size = 50
  c.train.num_epochs = 12
  c.train.patience = 12
  # σ starts at softplus(0) ≈ 0.69 (the reference initialisation), so the noisy UA+ passes need a
  # larger step than 1e-2 to converge in 12 epochs (1e-2: AUROC ≈ 0.67 at epoch 12, still rising).
  c.train.learning_rate = 2e-2
  c.eval.num_samples = 8
  return c


def test_train_and_evaluate_learns_and_writes_metrics(tmp_path):
  c = _tiny_config()
  res = train.train_and_evaluate(c, str(tmp_path))
  m = res["ua_plus"]
  assert m["auroc"] > 0.75  # the synthetic label is a logistic function of one input
  assert 0.0 <= m["ece"] <= 100.0 and 0.0 <= m["error"] <= 1.0
  assert 1 <= m["best_epoch"] <= m["epochs"] <= 12
  assert 0.0 <= m["visit_accuracy"] <= 1.0 and 0.0 <= m["feature_accuracy"] <= 1.0
  lines = read_metrics(tmp_path / "metrics.jsonl")
  epochs = [ln for ln in lines if "val_loss" in ln]
  assert len(epochs) == m["epochs"]
  assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
  finals = [ln for ln in lines if ln.get("final")]
  assert finals[0]["variant"] == "ua_plus" and finals[0]["auroc"] == pytest.approx(m["auroc"])


def test_fit_rejects_bad_arguments():
  c = _tiny_config()
  prepared = train.prepare_data(jax.random.key(0), c)
  model = train.make_model(c, "ua")
  with pytest.raises(ValueError, match="num_epochs"):
    train.fit(jax.random.key(0), model, prepared.train, prepared.val, num_epochs=0)
  with pytest.raises(ValueError, match="variant"):
    train.make_model(c, "retain")
  with pytest.raises(ValueError, match="kind"):
    train.predictive_uncertainty(None, "mutual_information")
  c.dataset = "mimic"
  with pytest.raises(ValueError, match="config.dataset"):
    train.prepare_data(jax.random.key(0), c)


def test_configs_and_registered_reproductions():
  for scale in ("smoke", "cpu", "full"):
    c = config_lib.get_config(scale)
    assert c.model.embed_dim == 33 and c.model.hidden_dim == 33 and c.train.batch_size == 100
    assert (c.model.keep_embed, c.model.keep_rnn, c.model.keep_context) == (0.95, 0.75, 0.95)
    assert c.eval.num_samples == 30
  assert config_lib.get_config("full").train.learning_rate == 1e-4
  assert config_lib.DEFAULT_WEIGHT_DECAY["ua"] == 0.002
  assert config_lib.DEFAULT_WEIGHT_DECAY["ua_plus"] == 0.004
  with pytest.raises(ValueError, match="scale"):
    config_lib.get_config("huge")
  reps = {r.name: r for r in registry.reproductions("ua_attention")}
  assert set(reps) == {"synthetic_attention_abstention", "physionet_mortality_calibration",
                       "physionet_mortality_abstention"}
  syn = reps["synthetic_attention_abstention"]
  good = {"ua": {"visit_accuracy": [0.9, 0.92, 0.95], "feature_accuracy": [0.9, 0.85, 0.8],
                 "chance_visit": [0.2] * 3, "abstention_area": [0.1, 0.12, 0.11],
                 "auroc": [0.9] * 3},
          "retain_da": {"abstention_area": [0.2, 0.21, 0.19], "auroc": [0.9] * 3}}
  assert syn.check(good, "cpu") == "pass"
  good["ua"]["abstention_area"] = [0.3, 0.31, 0.29]  # UA's curve clearly above DA's
  assert syn.check(good, "cpu") == "fail"
  good["ua"]["abstention_area"] = [0.1, 0.3, 0.2]  # inside the noise
  assert syn.check(good, "cpu") == "inconclusive"
  one_seed = {v: {k: x[:1] for k, x in m.items()} for v, m in good.items()}
  assert syn.check(one_seed, "cpu") == "inconclusive"  # one seed cannot give an interval


def _fake_study(ece_da, ece_ua, area_da=(0.1, 0.1, 0.1), area_ua=(0.1, 0.1, 0.1)):
  per_seed = []
  for i, (ed, eu, ad, au) in enumerate(zip(ece_da, ece_ua, area_da, area_ua)):
    per_seed.append({"seed": i, "data": {"test": 799}, "variants": {
        v: {"auroc": 0.8, "ece": e, "ece_floor": 2.0, "abstention_area": a, "error_at_80": 0.1,
            "error_at_50": 0.08, "error": 0.13, "epochs": 30, "best_epoch": 30,
            "final_val_loss": 0.3, "best_val_loss": 0.29, "train_seconds": 1.0}
        for v, e, a in (("retain_da", ed, ad), ("ua", eu, au))}})
  return {"per_seed": per_seed, "summary": study.summarize(per_seed),
          "budget": {"epochs": 30, "early_stopping": False, "learning_rate": 3e-3,
                     "protocol": "reference", "cell": "lstm", "mc_dropout_at_eval": False}}


def test_physionet_rows_judge_the_paired_interval():
  reps = {r.name: r for r in registry.reproductions("ua_attention")}
  cal, abst = reps["physionet_mortality_calibration"], reps["physionet_mortality_abstention"]
  assert cal.check(_fake_study([6.9, 7.1, 6.5], [2.3, 2.6, 2.0]), "cpu") == "pass"
  assert cal.check(_fake_study([2.3, 2.6, 2.0], [6.9, 7.1, 6.5]), "cpu") == "fail"
  # A difference inside the seed-to-seed spread is inconclusive, never a pass.
  assert cal.check(_fake_study([3.0, 5.0, 2.0], [2.5, 2.0, 4.0]), "cpu") == "inconclusive"
  m = _fake_study([6.9, 7.1, 6.5], [2.3, 2.6, 2.0], [0.1, 0.11, 0.12], [0.05, 0.06, 0.05])
  assert abst.check(m, "cpu") == "pass"
  text = cal.summary(m)
  assert "retain_da: ECE 6.83 [" in text and "floor 2.00%" in text
  assert "30 epochs, no early stopping" in text and "799 test records" in text
  cfg = config_lib.get_config("cpu", protocol="reference")
  assert cfg.train.early_stopping is False and cfg.eval.mc_dropout is False


def _small_splits():
  ds = jax.tree.map(np.asarray, data_lib.make_synthetic_ehr(
      jax.random.key(0), 400, 4, 3, min_visits=2, causal_offset=0, signal_scale=4.0))
  arr = lambda idx: data_lib.EHRArrays(ds.x[idx], ds.mask[idx], ds.y[idx])
  return ds, arr(np.arange(300)), arr(np.arange(300, 400))


def test_sigma_is_learned_and_used_for_predictive_variance():
  ds, tr, va = _small_splits()
  kw = dict(learning_rate=1e-2, batch_size=50, num_epochs=8, patience=8, early_stopping=False)
  models, fits = {}, {}
  for variant in ("ua", "retain_da"):
    models[variant] = model_lib.RetainModel(variant=variant, embed_dim=6, hidden_dim=6)
    fits[variant] = train.fit(jax.random.key(1), models[variant], tr, va, **kw)
  assert fits["ua"].best_epoch == 8 and len(fits["ua"].val_loss) == 8  # no early stopping
  x, mask = jnp.asarray(tr.x), jnp.asarray(tr.mask)
  ua = models["ua"]
  init = model_lib.init_params(jax.random.split(jax.random.key(1))[0], ua, x[:2], mask[:2])
  sig = lambda p: ua.apply({"params": p}, x, mask, sample=False)
  before, after = sig(init), sig(fits["ua"].params)
  valid = np.asarray(tr.mask)
  for field in ("alpha_sigma", "beta_sigma"):
    b, a = np.asarray(getattr(before, field))[valid], np.asarray(getattr(after, field))[valid]
    np.testing.assert_allclose(b, np.log(2.0), atol=0.02)  # the reference initialisation
    assert abs(a.mean() - b.mean()) > 0.02, field  # σ moved: it is trained
  # Ambiguous patients: the causal value is near 0, so P(y = 1) ≈ ½. With dropout off at test
  # time, RETAIN-DA is deterministic (variance 0) while UA's learned σ spreads its predictions.
  amb = np.abs(ds.x[np.arange(400), ds.causal_visit, 0]) < 0.3
  xa, ma = jnp.asarray(ds.x[amb]), jnp.asarray(ds.mask[amb])
  var = {v: np.asarray(model_lib.mc_predict(jax.random.key(5), models[v], fits[v].params, xa, ma,
                                            num_samples=16, mc_dropout=False).variance)
         for v in models}
  assert amb.sum() >= 20
  np.testing.assert_allclose(var["retain_da"], 0.0, atol=1e-12)
  assert var["ua"].mean() > 1e-4 and np.all(var["ua"] > var["retain_da"])


def test_reference_protocol_config_and_experiment_flag():
  import importlib.util
  import pathlib

  path = pathlib.Path(__file__).parents[1] / "experiments/ua_attention/configs/default.py"
  spec = importlib.util.spec_from_file_location("_ua_default_config", path)
  exp_default = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(exp_default)

  ours, ref = config_lib.get_config("smoke"), config_lib.get_config("smoke", "reference")
  assert (ours.model.cell, ours.train.early_stopping, ours.eval.mc_dropout) == ("gru", True, True)
  assert (ref.model.cell, ref.train.early_stopping, ref.eval.mc_dropout) == ("lstm", False, False)
  assert (ref.model.keep_embed, ref.model.keep_rnn, ref.model.keep_context) == (0.95, 0.75, 0.95)
  assert train.make_model(ref, "ua").cell == "lstm"
  assert exp_default.get_config("cpu,reference").protocol == "reference"
  assert exp_default.get_config("cpu").protocol == "ours"
  with pytest.raises(ValueError, match="protocol"):
    config_lib.get_config("cpu", "paper")
  assert config_lib.get_config("cpu").cache_dir == ""  # → ~/.cache/jaxpapers, not /tmp
