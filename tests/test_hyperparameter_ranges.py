"""Training configs refuse out-of-range hyperparameters before any work, naming the field."""

import pytest

from jaxpapers._src import validation
from jaxpapers.convlstm_attention import config as convlstm_config
from jaxpapers.convlstm_attention import train as convlstm_train
from jaxpapers.spectral_signatures import config as spectral_config
from jaxpapers.spectral_signatures import train as spectral_train
from jaxpapers.ua_attention import config as ua_config
from jaxpapers.ua_attention import train as ua_train


@pytest.mark.parametrize("paper_config,train_mod,field,value", [
    (ua_config, ua_train, "train.learning_rate", -1e-3),
    (ua_config, ua_train, "train.num_epochs", 0),
    (ua_config, ua_train, "model.keep_rnn", 0.0),
    (ua_config, ua_train, "eval.num_samples", -3),
    (spectral_config, spectral_train, "train.momentum", 1.0),
    (spectral_config, spectral_train, "train.batch_size", 0),
    (spectral_config, spectral_train, "train.weight_decay", -1e-4),
    (convlstm_config, convlstm_train, "learning_rate", float("nan")),
    (convlstm_config, convlstm_train, "num_frames", -2),
    (convlstm_config, convlstm_train, "num_steps", 0),
])
def test_train_and_evaluate_rejects_out_of_range_hyperparameters(paper_config, train_mod, field,
                                                                  value, tmp_path):
  cfg = paper_config.get_config("smoke")
  node = cfg
  *parents, leaf = field.split(".")
  for p in parents:
    node = node[p]
  with cfg.unlocked():
    node[leaf] = value
  with pytest.raises(ValueError, match=f"config.{field}"):
    train_mod.train_and_evaluate(cfg, str(tmp_path / "wd"))
  assert not list((tmp_path / "wd").glob("*.json"))  # refused before any work


def test_defaults_pass_the_checks():
  for cfg_mod in (ua_config, spectral_config, convlstm_config):
    for scale in ("smoke", "cpu", "full"):
      validation.check_hyperparameters(cfg_mod.get_config(scale))
