"""The MinAtar meta-vs-fixed row: its verdict rule, its games, and its per-game cache."""

import importlib.util
import pathlib

import numpy as np
import pytest

from jaxpapers.meta_gradient import reproductions as rep


def _game(diff, sem, n=5):
  """A game record whose paired differences have mean ``diff`` and standard error ``sem``."""
  rng = np.random.default_rng(0)
  z = rng.standard_normal(n)
  z = (z - z.mean()) / (np.std(z, ddof=1) / np.sqrt(n))  # mean 0, standard error 1
  fixed = np.full(n, 10.0)
  meta = fixed + diff + sem * z
  d = meta - fixed
  return {"fixed": fixed.tolist(), "meta": meta.tolist(), "diff_mean": float(d.mean()),
          "diff_sem": float(np.std(d, ddof=1) / np.sqrt(n)), "gamma": [0.99], "lambda": [0.9],
          "meta_mean": float(meta.mean()), "fixed_mean": 10.0}


@pytest.mark.parametrize("diffs, verdict", [
    ([(0.5, 1.0), (2.5, 1.0), (-0.9, 1.0)], True),     # all ≥ −s.e., one > s.e.
    ([(0.5, 1.0), (2.5, 1.0), (-1.1, 1.0)], False),    # one game more than one s.e. below
    ([(0.5, 1.0), (0.9, 1.0), (-0.9, 1.0)], "inconclusive"),  # nothing resolved
])
def test_check_follows_issue_rule(diffs, verdict):
  m = {"games": {g: _game(d, s) for g, (d, s) in zip(rep.MINATAR_GAMES, diffs)}, "meta_lr": 1e-3}
  for g, (d, s) in zip(m["games"].values(), diffs):
    assert g["diff_mean"] == pytest.approx(d) and g["diff_sem"] == pytest.approx(s)
  assert rep._minatar_check(m, "cpu") == verdict
  assert "Asterix meta" in rep._minatar_summary(m)


def test_check_fails_on_nan_and_smoke_only_checks_finiteness():
  g = _game(1.0, 0.5)
  bad = {**g, "meta": [np.nan] + g["meta"][1:]}
  assert rep._minatar_check({"games": {"SpaceInvaders-MinAtar": bad}}, "cpu") is False
  one = {**g, "diff_sem": float("nan")}
  assert rep._minatar_check({"games": {"SpaceInvaders-MinAtar": one}}, "smoke") is True
  assert rep._minatar_check({"games": {"SpaceInvaders-MinAtar": one}}, "cpu") is False


def test_games_and_config():
  assert rep.minatar_games("cpu") == ("SpaceInvaders-MinAtar", "Asterix-MinAtar",
                                      "Freeway-MinAtar")
  assert rep.minatar_games("smoke") == ("SpaceInvaders-MinAtar",)
  assert rep.minatar_config("cpu", "Freeway-MinAtar").env_name == "Freeway-MinAtar"
  with pytest.raises(ValueError, match="game must be one of"):
    rep.minatar_config("cpu", "Pong-MinAtar")


def test_run_caches_each_game(tmp_path, monkeypatch):
  calls = []

  def fake_game(c, seeds, workdir=None):
    calls.append(c.env_name)
    return _game(1.0, 0.5) | {"env_name": c.env_name}

  monkeypatch.setattr(rep, "_minatar_game", fake_game)
  first = rep._minatar_run("cpu", (0, 1, 2, 3, 4), str(tmp_path))
  assert calls == list(rep.MINATAR_GAMES)
  again = rep._minatar_run("cpu", (0, 1, 2, 3, 4), str(tmp_path))
  assert calls == list(rep.MINATAR_GAMES)  # every game read back, none retrained
  assert again == first
  rep._minatar_run("cpu", (0, 1), str(tmp_path))  # other seeds: another configuration
  assert len(calls) == 2 * len(rep.MINATAR_GAMES)


def test_study_paired_difference():
  path = pathlib.Path(__file__).parents[1] / "experiments/meta_gradient/meta_lr_study.py"
  spec = importlib.util.spec_from_file_location("meta_lr_study", path)
  study = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(study)
  d, se = study.paired([3.0, 5.0, 7.0], [1.0, 2.0, 3.0])  # differences 2, 3, 4
  assert d == pytest.approx(3.0) and se == pytest.approx(1.0 / np.sqrt(3))
  assert study.parse_setting("meta_lr=1e-3+trace_decay=0.9") == {"meta_lr": 1e-3,
                                                                 "trace_decay": 0.9}
  with pytest.raises(ValueError, match="keys in"):
    study.parse_setting("meta_lr=1e-3+beta=2")
  with pytest.raises(ValueError, match="lambda_ref must be a number"):
    study.parse_setting("lambda_ref=high")
