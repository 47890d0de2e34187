"""The seeds × variants study behind the PhysioNet rows, and the ECE noise floor."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxpapers.ua_attention import config as config_lib
from jaxpapers.ua_attention import metrics, study, train


def test_ece_noise_floor_matches_the_binomial_value():
  # All predictions 0.5 fall in one bin, so ECE = |mean(y) − ½| and its expectation is
  # Σ_k P(Bin(N, ½) = k) |k/N − ½|.
  n = 400
  k = np.arange(n + 1)
  exact = float(np.sum(scipy.stats.binom.pmf(k, n, 0.5) * np.abs(k / n - 0.5)))
  floor = metrics.ece_noise_floor(jax.random.key(0), jnp.full((n,), 0.5), num_draws=4000)
  assert float(floor) == pytest.approx(exact, rel=0.04)
  # Under jit it is the same computation.
  jitted = jax.jit(metrics.ece_noise_floor, static_argnums=(2, 3))
  assert float(jitted(jax.random.key(0), jnp.full((n,), 0.5), 10, 4000)) == pytest.approx(
      float(floor), rel=1e-6)


def test_ece_noise_floor_shrinks_with_the_test_set_and_checks_inputs():
  p = jax.random.uniform(jax.random.key(1), (4000,))
  big = float(metrics.ece_noise_floor(jax.random.key(2), p))
  small = float(metrics.ece_noise_floor(jax.random.key(2), p[:400]))
  assert 2.0 < small / big < 4.5  # ~√10
  with pytest.raises(ValueError, match="prob"):
    metrics.ece_noise_floor(jax.random.key(0), jnp.array([0.2, jnp.nan]))
  with pytest.raises(ValueError, match="num_draws"):
    metrics.ece_noise_floor(jax.random.key(0), jnp.array([0.2, 0.4]), num_draws=0)


def _tiny_config():
  c = config_lib.get_config("smoke", protocol="reference")
  c.variants = ("retain_da", "ua")
  c.synthetic.num_patients = 200
  c.synthetic.max_visits = 4
  c.synthetic.num_features = 3
  c.model.embed_dim = c.model.hidden_dim = 4
  c.train.batch_size = 50
  c.train.num_epochs = 2
  c.eval.num_samples = 4
  return c


def test_run_seed_caches_refuses_other_configs_and_resumes(tmp_path, monkeypatch):
  c = _tiny_config()
  first = study.run_seed(c, 3, str(tmp_path))
  assert first["complete"] and set(first["variants"]) == {"retain_da", "ua"}
  assert first["variants"]["ua"]["epochs"] == 2 and first["data"]["test"] == 40
  # A finished seed is read back, not retrained.
  monkeypatch.setattr(train, "run_variant", lambda *a, **k: pytest.fail("retrained"))
  again = study.run_seed(c, 3, str(tmp_path))
  assert again["variants"] == first["variants"]
  other = _tiny_config()
  other.train.num_epochs = 3
  with pytest.raises(ValueError, match="another configuration"):
    study.run_seed(other, 3, str(tmp_path))
  # An interrupted seed keeps its finished variants and trains only the rest.
  path = tmp_path / "seed3.json"
  rec = json.loads(path.read_text())
  del rec["variants"]["ua"]
  rec["complete"] = False
  path.write_text(json.dumps(rec))
  calls = []
  monkeypatch.setattr(train, "run_variant",
                      lambda key, config, variant, prepared, **kw: calls.append(variant) or
                      {k: 1.0 for k in train.SCALAR_KEYS})
  resumed = study.run_seed(c, 3, str(tmp_path))
  assert calls == ["ua"] and resumed["complete"]
  assert resumed["variants"]["retain_da"] == first["variants"]["retain_da"]


def test_summarize_pairs_the_variants_per_seed():
  per_seed = [{"seed": s, "variants": {
      "retain_da": {"ece": e_da, "auroc": 0.80, "abstention_area": 0.2, "error_at_80": 0.1,
                    "error_at_50": 0.1},
      "ua": {"ece": e_ua, "auroc": 0.82, "abstention_area": 0.1, "error_at_80": 0.1,
             "error_at_50": 0.1}}} for s, (e_da, e_ua) in enumerate([(6.0, 2.0), (5.0, 3.0)])]
  s = study.summarize(per_seed)
  d = s["paired"]["ece:retain_da-ua"]
  assert d["values"] == [4.0, 2.0] and d["mean"] == pytest.approx(3.0)
  # Student t with 1 degree of freedom: half-width 12.706 × se, se = std([4, 2], ddof=1) / √2 = 1.
  assert d["high"] - d["mean"] == pytest.approx(12.706, rel=1e-3)
  assert s["paired"]["auroc:ua-retain_da"]["mean"] == pytest.approx(0.02)
  assert s["variants"]["ua"]["ece"]["mean"] == pytest.approx(2.5)
  with pytest.raises(ValueError, match="per_seed"):
    study.summarize([])
