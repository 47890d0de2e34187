"""Spectral scores, removal and peers (Tran, Li & Mądry 2018, Algorithm 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.spectral_signatures import data, defense


def _numpy_reference(reps, labels, num_classes):
  """The paper's score ((R_i − R̂)·v)², v the top right singular vector of [R_i − R̂]."""
  scores = np.zeros(len(labels))
  for c in range(num_classes):
    idx = np.flatnonzero(labels == c)
    if idx.size == 0:
      continue
    r = reps[idx].astype(np.float64)
    a = r - r.mean(0)
    v = np.linalg.svd(a, full_matrices=False)[2][0]
    scores[idx] = (a @ v) ** 2
  return scores


def _madrylab_transcription(reps, labels, num_classes):
  """Line-by-line transcription of MadryLab/backdoor_data_poisoning compute_corr.py, per class."""
  scores = np.zeros(len(labels))
  for lbl in range(num_classes):
    cur_indices = np.where(labels == lbl)[0]
    if cur_indices.size == 0:
      continue
    full_cov = reps[cur_indices].astype(np.float64)
    full_mean = np.mean(full_cov, axis=0, keepdims=True)
    centered_cov = full_cov - full_mean
    _, _, v = np.linalg.svd(centered_cov, full_matrices=False)
    eigs = v[0:1]
    corrs = np.matmul(eigs, np.transpose(full_cov))
    scores[cur_indices] = np.linalg.norm(corrs, axis=0)
  return scores


# One shape (n = 247 → 256 padded rows, 4 classes, d = 16) for most tests: compiled once.
_MIX = dict(num_classes=4, n_per_class=60, dim=16, epsilon=0.1)


@pytest.fixture(scope="module")
def problem():
  mix = data.gaussian_mixture_reps(jax.random.key(0), **_MIX)
  # Anisotropic classes (a clear top direction in every class) with a big common offset.
  reps = np.asarray(mix.reps) * np.linspace(3.0, 0.5, 16).astype(np.float32) + np.float32(5.0)
  return reps, np.asarray(mix.labels)


def test_paper_scores_equal_numpy_svd_reference(problem):
  reps, labels = problem
  got = np.asarray(defense.spectral_scores(reps, labels, 4))
  want = _numpy_reference(reps, labels, 4)
  np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3 * want.max())


def test_reference_score_equals_madrylab_transcription(problem):
  reps, labels = problem
  got = np.asarray(defense.spectral_scores(reps, labels, 4, centered=False))
  want = _madrylab_transcription(reps, labels, 4)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())
  # The strawman (top direction of the *uncentred* matrix, squared) is a different score here.
  strawman = np.zeros(len(labels))
  for c in range(4):
    idx = labels == c
    v0 = np.linalg.svd(reps[idx].astype(np.float64), full_matrices=False)[2][0]
    strawman[idx] = np.abs(reps[idx] @ v0)
  assert np.max(np.abs(strawman - want)) > 0.1 * want.max()


def test_reference_and_paper_scores_by_hand():
  # One class, rows (1,5),(3,5),(5,5): mean (3,5), centred rows (−2,0),(0,0),(2,0), so v = ±e₁.
  reps = np.asarray([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], np.float32)
  labels = np.zeros(3, np.int32)
  np.testing.assert_allclose(np.asarray(defense.spectral_scores(reps, labels, 1, centered=False)),
                             [1.0, 3.0, 5.0], rtol=1e-5)  # |R_i · e₁|
  np.testing.assert_allclose(np.asarray(defense.spectral_scores(reps, labels, 1)),
                             [4.0, 0.0, 4.0], atol=1e-5)  # ((R_i − R̂) · e₁)²
  np.testing.assert_allclose(np.asarray(_madrylab_transcription(reps, labels, 1)), [1.0, 3.0, 5.0],
                             rtol=1e-6)


def test_wide_representations_use_gram_path():
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(3), [7, 12, 9]).astype(np.int32)
  reps = (rng.normal(size=(28, 50)) * np.linspace(4, 1, 50)).astype(np.float32)
  got = np.asarray(defense.spectral_scores(reps, labels, 3, max_class_size=16))
  np.testing.assert_allclose(got, _numpy_reference(reps, labels, 3), rtol=2e-3, atol=1e-3)


def test_power_method_matches_exact(problem):
  reps, labels = problem
  exact = defense.spectral_scores(reps, labels, 4, method="eigh")
  power = defense.spectral_scores(reps, labels, 4, method="power", num_iters=30)
  np.testing.assert_allclose(np.asarray(power), np.asarray(exact), rtol=1e-3, atol=1e-3)


def test_offset_sign_and_permutation_invariance(problem):
  reps, labels = problem
  sig = defense.spectral_signature(reps, labels, 4)
  shifted = defense.spectral_scores(reps + np.float32(100.0), labels, 4)
  np.testing.assert_allclose(np.asarray(shifted), np.asarray(sig.scores), rtol=2e-3, atol=2e-3)
  # v → −v: the score built from −v is the same.
  y = labels
  proj_neg = np.einsum("nd,nd->n", reps - np.asarray(sig.means)[y], -np.asarray(sig.directions)[y])
  np.testing.assert_allclose(proj_neg ** 2, np.asarray(sig.scores), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(sig.directions), axis=1), 1.0, atol=1e-5)
  perm = np.random.default_rng(2).permutation(len(labels))
  permuted = defense.spectral_scores(reps[perm], labels[perm], 4)
  np.testing.assert_allclose(np.asarray(permuted), np.asarray(sig.scores)[perm], rtol=1e-4,
                             atol=1e-4)


def test_class_blocks_group_every_example_once():
  labels = jnp.asarray([2, 0, 2, 1, 2, 0], jnp.int32)
  b = defense.class_blocks(labels, 4, 3)
  np.testing.assert_array_equal(np.asarray(b.counts), [2, 1, 3, 0])
  np.testing.assert_array_equal(np.asarray(b.index), [[1, 5, 6], [3, 6, 6], [0, 2, 4], [6, 6, 6]])
  np.testing.assert_array_equal(np.asarray(b.mask).sum(1), [2, 1, 3, 0])


def test_removal_count_is_rounded_1p5_eps_n_per_class():
  rng = np.random.default_rng(3)
  counts = [40, 67, 13, 100]
  labels = np.repeat(np.arange(4), counts).astype(np.int32)
  scores = rng.uniform(size=labels.size).astype(np.float32)
  for eps in (0.05, 0.1, 0.3):
    removed = np.asarray(defense.removal_mask(scores, labels, 4, eps))
    for c, n_c in enumerate(counts):
      k = int(np.floor(1.5 * eps * n_c + 0.5))
      sel = labels == c
      assert removed[sel].sum() == k
      # The removed ones are exactly the top-k scores of the class.
      top = np.argsort(-scores[sel])[:k]
      assert set(np.flatnonzero(removed[sel])) == set(top)
  np.testing.assert_array_equal(np.asarray(defense.removal_counts(jnp.asarray([10, 20]), 0.1)),
                                [2, 3])  # 1.5 → 2, 3.0 → 3


def test_removal_is_jittable_and_hand_checked():
  scores = jnp.asarray([0.1, 5.0, 0.3, 2.0, 9.0, 0.2], jnp.float32)
  labels = jnp.asarray([0, 0, 0, 1, 1, 1], jnp.int32)
  removed = defense.removal_mask(scores, labels, 2, 0.3)  # k = floor(1.35 + .5) = 1 per class
  np.testing.assert_array_equal(np.asarray(removed), [False, True, False, False, True, False])
  f = jax.jit(lambda s, y: defense._removal_mask(s, y, jnp.asarray([2, 1]), 2))  # k by hand
  np.testing.assert_array_equal(np.asarray(f(scores, labels)),
                                [False, True, True, False, True, False])


def test_gaussian_mixture_centred_catches_all():
  # Poisons at ‖Δ‖² = 6/ε from their class mean, 10% of class 0; 8 seeds × 7 poisons.
  recalls = []
  for seed in range(1, 9):
    mix = data.gaussian_mixture_reps(jax.random.key(seed), **_MIX)
    s = defense.spectral_scores(mix.reps, mix.labels, 4)
    removed = defense.removal_mask(s, mix.labels, 4, 0.1)
    recalls.append(defense.detection_stats(removed, mix.poison_mask).recall)
  assert np.mean(recalls) >= 0.99


def test_reference_score_misses_poisons_when_class_offset_opposes_them():
  # Class 0: 90 clean rows around (−8, 0), 10 poisons around (+2, 0), small isotropic noise; the
  # centred top direction is e₁ and the class mean ≈ (−7, 0). The paper's score puts the poisons
  # (≈ 9 from the mean) on top; the reference's |R_i·e₁| gives clean rows ≈ 8 and poisons ≈ 2.
  rng = np.random.default_rng(5)
  clean = np.stack([-8.0 + 0.3 * rng.normal(size=90), 0.3 * rng.normal(size=90)], 1)
  poison = np.stack([2.0 + 0.3 * rng.normal(size=10), 0.3 * rng.normal(size=10)], 1)
  reps = np.concatenate([clean, poison]).astype(np.float32)
  labels = np.zeros(100, np.int32)
  is_poison = np.arange(100) >= 90
  recall = {}
  for centered in (True, False):
    s = defense.spectral_scores(reps, labels, 1, centered=centered)
    removed = defense.removal_mask(s, labels, 1, 0.1)
    recall[centered] = defense.detection_stats(removed, is_poison).recall
  assert recall[True] == 1.0
  assert recall[False] == 0.0
  # With no offset (zero-mean class) the two scores rank examples identically.
  shifted = reps - reps.mean(0)
  paper = np.asarray(defense.spectral_scores(shifted, labels, 1))
  ref = np.asarray(defense.spectral_scores(shifted, labels, 1, centered=False))
  np.testing.assert_allclose(ref ** 2, paper, rtol=1e-3, atol=1e-4)


def test_no_retracing_across_calls_of_same_shape(problem):
  reps, labels = problem
  defense.spectral_scores(reps, labels, 4)
  before = defense._spectral_jit._cache_size()
  for seed in range(3):
    other = np.random.default_rng(seed).normal(size=reps.shape).astype(np.float32)
    defense.spectral_scores(other, labels, 4)
  assert defense._spectral_jit._cache_size() == before


def test_fastica_rotation_is_orthogonal_and_two_means_splits_blobs():
  rng = np.random.default_rng(4)
  s = rng.laplace(size=(2000, 3)) / np.sqrt(2.0)  # unit-variance independent sources
  mixing = np.linalg.qr(rng.normal(size=(3, 3)))[0]
  z = jnp.asarray(s @ mixing.T, jnp.float32)  # whitened mixtures
  w = np.asarray(jax.jit(defense.fastica_rotation, static_argnums=2)(z, jnp.ones(2000, bool), 100))
  np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-4)
  # W undoes the rotation up to signs/permutation: W·mixing is a signed permutation.
  np.testing.assert_allclose(np.sort(np.abs(w @ mixing), axis=1)[:, -1], 1.0, atol=0.05)
  x = jnp.asarray(np.concatenate([rng.normal(size=(40, 2)), rng.normal(size=(10, 2)) + 8]),
                  jnp.float32)
  mask = jnp.ones(50, bool)
  assign, _ = jax.jit(defense.two_means)(x, mask)
  assign = np.asarray(assign)
  assert len(set(assign[:40])) == 1 and len(set(assign[40:])) == 1 and assign[0] != assign[-1]


def test_peers_catch_a_well_separated_planted_cluster():
  mix = data.gaussian_mixture_reps(jax.random.key(7), **{**_MIX, "n_per_class": 60},
                                   gap_sq=400.0)
  ac = defense.activation_clustering_scores(mix.reps, mix.labels, 4, ica_iters=50)
  pm = np.asarray(mix.poison_mask)
  np.testing.assert_array_equal(np.asarray(ac.in_small_cluster)[pm], True)
  assert np.asarray(ac.small_fraction)[0] == pytest.approx(pm.sum() / (60 + pm.sum()), abs=0.02)
  for scores in (ac.scores, defense.spectre_scores(mix.reps, mix.labels, 4, num_components=8)):
    removed = defense.removal_mask(scores, mix.labels, 4, 0.1)
    assert defense.detection_stats(removed, mix.poison_mask).recall == 1.0


def test_detection_stats_hand_values():
  s = defense.detection_stats(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 0, 1], bool))
  assert s == defense.DetectionStats(3, 2, 3, 2 / 3, 2 / 3)


def test_bad_inputs():
  reps, labels = np.zeros((10, 3), np.float32), np.zeros(10, np.int32)
  with pytest.raises(ValueError, match="reps"):
    defense.spectral_scores(np.zeros(10), labels, 2)
  with pytest.raises(ValueError, match="labels"):
    defense.spectral_scores(reps, np.zeros(9, np.int32), 2)
  with pytest.raises(TypeError, match="labels"):
    defense.spectral_scores(reps, np.zeros(10, np.float32), 2)
  with pytest.raises(ValueError, match="labels must lie"):
    defense.spectral_scores(reps, np.full(10, 5, np.int32), 2)
  with pytest.raises(ValueError, match="method"):
    defense.spectral_scores(reps, labels, 2, method="svds")
  with pytest.raises(ValueError, match="max_class_size"):
    defense.spectral_scores(reps, labels, 2, max_class_size=4)
  for eps in (0.0, 0.5, 1.2):
    with pytest.raises(ValueError, match="epsilon"):
      defense.removal_mask(np.zeros(10, np.float32), labels, 2, eps)
  with pytest.raises(ValueError, match="trim_fraction"):
    defense.spectre_scores(reps, labels, 2, trim_fraction=1.0)
  with pytest.raises(ValueError, match="num_components"):
    defense.activation_clustering_scores(reps, labels, 2, num_components=0)
