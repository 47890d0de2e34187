"""Training, evaluation, experiment driver and reproductions of uncertainty-aware attention."""

import jax
import pytest

from jaxpapers._src import registry
from jaxpapers._src.metrics import read_metrics
from jaxpapers.ua_attention import config as config_lib
from jaxpapers.ua_attention import train


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
  c.train.learning_rate = 1e-2
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
  assert set(reps) == {"synthetic_attention_abstention", "physionet_mortality_calibration"}
  rep = reps["physionet_mortality_calibration"]
  fake = {v: {"auroc": [0.8, 0.82, 0.81], "ece": [e, e, e]}
          for v, e in (("retain_da", 6.9), ("ua", 2.3))}
  assert rep.check(fake, "cpu")
  fake["ua"]["ece"] = [7.0, 7.0, 7.0]
  assert not rep.check(fake, "cpu")
  assert "retain_da: AUROC 0.810" in rep.summary(fake)
  syn = reps["synthetic_attention_abstention"]
  good = {"ua": {"visit_accuracy": [0.9], "feature_accuracy": [0.9], "chance_visit": [0.2],
                 "abstention_area": [0.1], "auroc": [0.9]},
          "retain_da": {"abstention_area": [0.2], "auroc": [0.9]}}
  assert syn.check(good, "cpu")
  good["ua"]["abstention_area"] = [0.3]
  assert not syn.check(good, "cpu")
