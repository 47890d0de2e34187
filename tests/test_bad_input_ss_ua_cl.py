"""Bad input to the public functions of spectral_signatures, ua_attention and convlstm_attention.

NaN / inf / empty / wrong rank / out of range / wrong dtype must give a clear error naming the
argument, or an honest NaN — never a finite wrong value. Inputs are tiny so that the whole file
runs in seconds.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.convlstm_attention import cells as cl_cells
from jaxpapers.convlstm_attention import config as cl_config
from jaxpapers.convlstm_attention import data as cl_data
from jaxpapers.convlstm_attention import model as cl_model
from jaxpapers.convlstm_attention import train as cl_train
from jaxpapers.spectral_signatures import attacks as ss_attacks
from jaxpapers.spectral_signatures import data as ss_data
from jaxpapers.spectral_signatures import defense as ss_defense
from jaxpapers.ua_attention import data as ua_data
from jaxpapers.ua_attention import metrics as ua_metrics
from jaxpapers.ua_attention import model as ua_model

NAN, INF = float("nan"), float("inf")
LABELS = np.asarray([0, 0, 1, 1], np.int32)
REPS = np.arange(12, dtype=np.float32).reshape(4, 3) ** 1.5

# ---------------------------------------------------------------- spectral_signatures


@pytest.mark.parametrize("fn", [
    ss_defense.spectral_scores,
    lambda r, y, k: ss_defense.activation_clustering_scores(r, y, k).scores,
    ss_defense.spectre_scores,
], ids=["spectral", "activation_clustering", "spectre"])
@pytest.mark.parametrize("reps, labels, error, match", [
    (np.where(np.eye(4, 3, dtype=bool), NAN, REPS).astype(np.float32), LABELS, ValueError,
     "reps contains NaN or inf"),
    (np.where(np.eye(4, 3, dtype=bool), INF, REPS).astype(np.float32), LABELS, ValueError,
     "reps contains NaN or inf"),
    (np.zeros((0, 3), np.float32), np.zeros(0, np.int32), ValueError, "reps must hold at least"),
    (REPS[0], LABELS, ValueError, "reps must have rank 2"),
    (REPS.astype(bool), LABELS, TypeError, "reps must have dtype"),
    (REPS, LABELS.astype(np.float32), TypeError, "labels must have dtype"),
    (REPS, LABELS + 1, ValueError, r"labels must lie in \[0, 2\)"),
    (REPS, LABELS[:3], ValueError, "labels must have shape"),
])
def test_scorers_refuse_bad_reps_and_labels(fn, reps, labels, error, match):
  with pytest.raises(error, match=match):
    fn(reps, labels, 2)


def test_removal_and_counts_refuse_bad_values():
  scores = np.asarray([0.1, NAN, 0.3, 0.2], np.float32)
  with pytest.raises(ValueError, match="scores contains NaN"):
    ss_defense.removal_mask(scores, LABELS, 2, 0.1)
  with pytest.raises(ValueError, match="scores must have rank 1"):
    ss_defense.removal_mask(scores[None], LABELS, 2, 0.1)
  for eps in (NAN, 0.0, 0.5, INF):
    with pytest.raises(ValueError, match="epsilon"):
      ss_defense.removal_mask(np.zeros(4, np.float32), LABELS, 2, eps)
  for mult in (NAN, INF, 0.0):
    with pytest.raises(ValueError, match="multiplier"):
      ss_defense.removal_counts(np.asarray([10]), 0.1, mult)
  with pytest.raises(ValueError, match="counts must be non-negative"):
    ss_defense.removal_counts(np.asarray([-10]), 0.1)
  with pytest.raises(TypeError, match="counts must have dtype"):
    ss_defense.removal_counts(np.asarray([10.5]), 0.1)
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
    ss_defense.class_blocks(jnp.asarray([0, 5], jnp.int32), 2, 2)
  with pytest.raises(ValueError, match="max_class_size"):
    ss_defense.class_blocks(jnp.asarray([0, 0, 0], jnp.int32), 2, 2)
  with pytest.raises(ValueError, match="same shape"):
    ss_defense.detection_stats(np.ones(2, bool), np.ones(3, bool))
  # +inf is a valid "most suspicious" score: it is removed first.
  removed = ss_defense.removal_mask(np.asarray([0.0, INF, 0.5, 0.2], np.float32), LABELS, 2, 0.3)
  np.testing.assert_array_equal(np.asarray(removed), [False, True, True, False])


def test_attack_and_generator_arguments():
  img = jnp.zeros((2, 6, 6, 3))
  with pytest.raises(ValueError, match="n_source"):
    ss_attacks.num_poisons(-10, 0.1)
  with pytest.raises(ValueError, match="epsilon"):
    ss_attacks.num_poisons(10, NAN)
  with pytest.raises(ValueError, match=r"colour must lie in \[0, 1\]"):
    ss_attacks.apply_trigger(img, "pixel", (0, 0), INF)
  with pytest.raises(TypeError, match="colour for uint8 images"):
    ss_attacks.apply_trigger(img.astype(jnp.uint8), "pixel", (0, 0), 0.5)
  with pytest.raises(ValueError, match="images must have rank 4"):
    ss_attacks.triggered_test_set(img[0], LABELS[:2], source=0)
  with pytest.raises(ValueError, match="source class 7 has no examples"):
    ss_attacks.triggered_test_set(img, jnp.asarray([0, 1], jnp.int32), source=7)
  with pytest.raises(ValueError, match="position"):
    ss_attacks.trigger_mask("pixel", (4, 4), (1,))
  with pytest.raises(ValueError, match="gap_sq"):
    ss_data.gaussian_mixture_reps(jax.random.key(0), gap_sq=-1.0)
  with pytest.raises(ValueError, match="offset"):
    ss_data.gaussian_mixture_reps(jax.random.key(0), offset=NAN)
  with pytest.raises(ValueError, match="epsilon"):
    ss_data.gaussian_mixture_reps(jax.random.key(0), epsilon=NAN)


# ---------------------------------------------------------------- ua_attention


def test_metrics_nan_is_honest_or_refused():
  y = jnp.asarray([0, 1, 0, 1])
  assert np.isnan(float(ua_metrics.auroc(jnp.asarray([0.1, NAN, 0.2, 0.9]), y)))
  assert np.isnan(float(ua_metrics.auroc(jnp.asarray([0.1, 0.4, 0.2, 0.9]), jnp.zeros(4))))
  with pytest.raises(TypeError, match="scores must have dtype"):
    ua_metrics.auroc(jnp.asarray([1, 2, 3, 4]), y)
  with pytest.raises(ValueError, match="scores must have rank 1"):
    ua_metrics.auroc(jnp.ones((2, 2)), y)
  with pytest.raises(ValueError, match="scores must not be empty"):
    ua_metrics.auroc(jnp.zeros((0,)), jnp.zeros((0,), jnp.int32))
  with pytest.raises(ValueError, match=r"prob must be probabilities in \[0, 1\]"):
    ua_metrics.reliability_diagram(jnp.asarray([0.1, INF, 0.2, 0.9]), y)
  with pytest.raises(ValueError, match="num_bins"):
    ua_metrics.expected_calibration_error(jnp.asarray([0.1, 0.2, 0.3, 0.4]), y, 0)
  with pytest.raises(ValueError, match="uncertainty contains NaN"):
    ua_metrics.abstention_curve(jnp.asarray([0.1, NAN, 0.3, 0.4]), y)
  with pytest.raises(ValueError, match=r"prob must be probabilities"):
    ua_metrics.abstain(jnp.asarray([0.1, NAN, 0.3, 0.4]), jnp.asarray([0.1, 0.2, 0.3, 0.4]))
  with pytest.raises(ValueError, match=r"prob must be probabilities"):
    ua_metrics.abstain(jnp.asarray([0.1, 2.0, 0.3, 0.4]), jnp.asarray([0.1, 0.2, 0.3, 0.4]))
  with pytest.raises(ValueError, match="uncertainty contains NaN"):
    ua_metrics.abstain(jnp.asarray([0.1, 0.2, 0.3, 0.4]), jnp.asarray([0.1, NAN, 0.3, 0.4]))
  curve = ua_metrics.abstention_curve(jnp.asarray([0.1, 0.2, 0.3, 0.4]), y)
  with pytest.raises(ValueError, match="coverage"):
    ua_metrics.error_at_coverage(curve, NAN)


def test_model_functions_refuse_bad_values():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="sigma must be >= 0"):
    ua_model.reparameterize(key, jnp.zeros(3), -jnp.ones(3))
  with pytest.raises(ValueError, match="sigma with shape"):
    ua_model.reparameterize(key, jnp.zeros(3), jnp.ones(4))
  assert np.all(np.isnan(np.asarray(ua_model.reparameterize(key, jnp.zeros(3),
                                                            jnp.full(3, NAN)))))
  with pytest.raises(ValueError, match="mask must have shape"):
    ua_model.masked_softmax(jnp.zeros(3), jnp.ones(4, bool))
  with pytest.raises(TypeError, match="logits must have dtype"):
    ua_model.masked_softmax(jnp.zeros(3, jnp.int32), jnp.ones(3, bool))
  for w in (-1.0, NAN):
    with pytest.raises(ValueError, match="weight"):
      ua_model.l2_regularizer({"a": jnp.ones(2)}, w)
  m = ua_model.RetainModel(variant="ua", embed_dim=2, hidden_dim=2)
  x, mask = jnp.ones((2, 3, 2)), jnp.ones((2, 3), bool)
  with pytest.raises(ValueError, match="mask must be boolean or 0/1"):
    ua_model.init_params(key, m, x, jnp.full((2, 3), 2))
  with pytest.raises(TypeError, match="x must have dtype"):
    ua_model.init_params(key, m, x.astype(jnp.int32), mask)
  params = ua_model.init_params(key, m, x, mask)
  out = ua_model.apply_model(key, m, params, x.at[0, 1, 0].set(NAN), mask, sample=False)
  assert np.isnan(float(out.logit[0])) and np.isfinite(float(out.logit[1]))  # NaN stays NaN
  with pytest.raises(ValueError, match="alpha must have shape"):
    ua_model.contributions(params, x, jnp.ones((2, 4)), jnp.ones((2, 3, 2)))


def test_ua_data_arguments():
  key = jax.random.key(0)
  for scale in (NAN, INF, 0.0):
    with pytest.raises(ValueError, match="signal_scale"):
      ua_data.make_synthetic_ehr(key, 10, 4, 3, signal_scale=scale)
  with pytest.raises(ValueError, match="num_patients"):
    ua_data.make_synthetic_ehr(key, 0, 4, 3)
  with pytest.raises(ValueError, match="causal_feature"):
    ua_data.make_synthetic_ehr(key, 10, 4, 3, causal_feature=3)


# ---------------------------------------------------------------- convlstm_attention


@pytest.fixture(scope="module")
def cl_setup():
  cfg = cl_config.get_config("smoke")
  return cfg, cl_model.init_network(jax.random.key(0), cfg)


def test_network_refuses_bad_clips_and_keeps_nan_honest(cl_setup):
  cfg, params = cl_setup
  shape = (1, cfg.num_frames, cfg.size, cfg.size, 3)
  with pytest.raises(TypeError, match="clips must be floating point"):
    cl_model.apply_network(params, jnp.ones(shape, jnp.uint8), cfg)
  with pytest.raises(ValueError, match="clips must be non-empty"):
    cl_model.apply_network(params, jnp.ones((0,) + shape[1:]), cfg)
  with pytest.raises(ValueError, match="clips must be non-empty"):
    cl_model.apply_network(params, jnp.ones((1, 0) + shape[2:]), cfg)
  with pytest.raises(ValueError, match="clips must have rank 5"):
    cl_model.apply_network(params, jnp.ones(shape[1:]), cfg)
  logits = cl_model.apply_network(params, jnp.full(shape, NAN), cfg)
  assert np.all(np.isnan(np.asarray(logits)))


def test_convlstm_data_and_cell_arguments():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="batch_size"):
    cl_data.synthetic_batch(key, 0, num_frames=4, size=8)
  with pytest.raises(ValueError, match="num_frames"):
    cl_data.synthetic_batch(key, 2, num_frames=-1, size=8)
  with pytest.raises(ValueError, match="label must be an int"):
    cl_data.synthetic_clip(key, 99, num_frames=4, size=8)
  with pytest.raises(ValueError, match="label must be an int"):
    cl_data.synthetic_clip(key, 1.5, num_frames=4, size=8)
  with pytest.raises(ValueError, match="num_available"):
    cl_data.sample_frame_indices(0, 4)
  with pytest.raises(ValueError, match="batch must be a non-negative int"):
    cl_cells.zero_state(-1, 2, 2, 2)
  with pytest.raises(ValueError, match="variant"):
    cl_cells.init_cell(key, "zz", 3, 4)


def test_full_pass_eval_refuses_out_of_range_labels(cl_setup):
  cfg, params = cl_setup
  clips = jnp.zeros((3, cfg.num_frames, cfg.size, cfg.size, 3))
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
    cl_train.full_pass_eval(params, clips, jnp.asarray([0, -1, 2]), cfg)
