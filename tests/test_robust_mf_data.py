"""Loaders, outlier injection and the synthetic generator of robust_mf, on files the tests write."""

import jax
import numpy as np
import pytest

from jaxpapers._src import data as data_lib
from jaxpapers.robust_mf import data
from jaxpapers.robust_mf import observations as obs_lib


def _write(path, lines):
  path.write_text("\n".join(lines) + "\n", encoding="latin-1")
  return path


def test_load_100k_tsv_and_index(tmp_path):
  folder = tmp_path / "movielens-100k"
  folder.mkdir()
  _write(folder / "u1.base", ["1\t10\t5\t881250949", "2\t10\t3\t891717742", "3\t7\t1\t878887116",
                              "1\t7\t4\t880606923"])
  _write(folder / "u1.test", ["2\t7\t2\t886397596", "4\t12\t4\t884182806"])
  raw = data.load_ratings_tsv(folder / "u1.base")
  np.testing.assert_array_equal(raw.users, [1, 2, 3, 1])
  np.testing.assert_array_equal(raw.items, [10, 10, 7, 7])
  np.testing.assert_array_equal(raw.ratings, [5, 3, 1, 4])
  split = data.load_movielens_100k(tmp_path)  # a root that contains the folder
  assert split.train.shape == split.test.shape == (4, 3)  # users {1,2,3,4}, items {7,10,12}
  np.testing.assert_array_equal(split.train.rows, [0, 1, 2, 0])
  np.testing.assert_array_equal(split.train.cols, [1, 1, 0, 0])
  np.testing.assert_array_equal(split.test.rows, [1, 3])
  np.testing.assert_array_equal(split.test.cols, [0, 2])
  np.testing.assert_allclose(split.test.values, [2.0, 4.0])
  assert data.load_movielens_100k(folder).train.nnz == 4  # the folder itself


def test_load_ratings_dat_double_colon(tmp_path):
  path = _write(tmp_path / "ratings.dat", ["1::1193::5::978300760", "1::661::3::978302109",
                                           "", "71567::65133::3.5::1112185292"])
  raw = data.load_ratings_dat(path)
  np.testing.assert_array_equal(raw.users, [1, 1, 71567])
  np.testing.assert_array_equal(raw.items, [1193, 661, 65133])
  np.testing.assert_allclose(raw.ratings, [5.0, 3.0, 3.5])
  (obs,), shape = data.index_ratings(raw)
  assert shape == (2, 3)
  np.testing.assert_array_equal(obs.cols, [1, 0, 2])  # sorted item ids 661 < 1193 < 65133
  split = data.split_ratings(jax.random.key(0), raw, 0.5)
  assert split.train.nnz + split.test.nnz == 3
  assert split.train.shape == split.test.shape == (2, 3)


def test_loader_errors(tmp_path):
  with pytest.raises(FileNotFoundError):
    data.load_ratings_tsv(tmp_path / "missing.data")
  bad = _write(tmp_path / "bad.dat", ["1::2"])
  with pytest.raises(ValueError, match="bad.dat:1"):
    data.load_ratings_dat(bad)
  nan = _write(tmp_path / "nan.data", ["1\t2\t4\t0", "1\t2\tnan\t0"])
  with pytest.raises(ValueError, match=r"nan.data:2: rating must be a number in \[1, 5\]"):
    data.load_ratings_tsv(nan)
  short = _write(tmp_path / "short.data", ["1\t2\t4\t0", "", "3\t2\t4"])
  with pytest.raises(ValueError, match="short.data:3: expected 4 fields"):
    data.load_ratings_tsv(short)
  extra = _write(tmp_path / "extra.data", ["1\t2\t4\t0\t9"])
  with pytest.raises(ValueError, match="extra.data:1: expected 4 fields"):
    data.load_ratings_tsv(extra)
  for rating in ("0", "6", "-1", "inf", "5.5"):
    out = _write(tmp_path / "out.data", ["1\t2\t3\t0", f"2\t2\t{rating}\t0"])
    with pytest.raises(ValueError, match="out.data:2: rating must be"):
      data.load_ratings_tsv(out)
  half = _write(tmp_path / "half.dat", ["1::2::0.5::0", "1::3::0.25::0"])
  with pytest.raises(ValueError, match=r"half.dat:2: rating must be a number in \[0.5, 5\]"):
    data.load_ratings_dat(half)
  with pytest.raises(ValueError, match="half.dat:1: rating must be a number in"):
    data.load_ratings_dat(half, rating_range=(1.0, 5.0))
  ids = _write(tmp_path / "ids.dat", ["0::2::3::0"])
  with pytest.raises(ValueError, match="ids.dat:1: user and item ids must be positive"):
    data.load_ratings_dat(ids)
  text = _write(tmp_path / "text.dat", ["1::x::3::0"])
  with pytest.raises(ValueError, match="text.dat:1: cannot parse"):
    data.load_ratings_dat(text)
  with pytest.raises(data_lib.DatasetNotFoundError):
    data.load_movielens_100k(tmp_path / "nowhere")
  raw = data.Ratings(np.array([1, 2]), np.array([1, 2]), np.array([1.0, 2.0]))
  with pytest.raises(ValueError, match="train_fraction"):
    data.split_ratings(jax.random.key(0), raw, 1.5)


def test_inject_outliers_ratio_and_range():
  n = 1000
  obs = obs_lib.sparse_observations(np.arange(n) % 50, np.arange(n) // 50, np.full(n, 3.0),
                                    (50, 20))
  corrupted, mask = data.inject_outliers(jax.random.key(1), obs, 0.1, 1.0, 5.0)
  assert int(mask.sum()) == 100
  changed = np.asarray(corrupted.values)[np.asarray(mask)]
  assert np.all((changed >= 1.0) & (changed <= 5.0)) and np.std(changed) > 0.5
  np.testing.assert_array_equal(np.asarray(corrupted.values)[~np.asarray(mask)], 3.0)
  with pytest.raises(ValueError, match="ratio"):
    data.inject_outliers(jax.random.key(1), obs, 1.5, 1.0, 5.0)
  with pytest.raises(ValueError, match="mode"):
    data.inject_outliers(jax.random.key(1), obs, 0.1, 1.0, 5.0, "flip")
  # "opposite": a rating at or above the midpoint goes to `low`, one below it to `high`.
  vals = np.arange(n) % 5 + 1.0
  obs = obs_lib.sparse_observations(np.arange(n) % 50, np.arange(n) // 50, vals, (50, 20))
  corrupted, mask = data.inject_outliers(jax.random.key(2), obs, 0.3, 1.0, 5.0, "opposite")
  mask, out = np.asarray(mask), np.asarray(corrupted.values)
  assert int(mask.sum()) == 300
  np.testing.assert_array_equal(out[mask], np.where(vals[mask] >= 3.0, 1.0, 5.0))
  np.testing.assert_array_equal(out[~mask], vals[~mask])


def test_holdout_and_shift():
  n = 1000
  obs = obs_lib.sparse_observations(np.arange(n) % 50, np.arange(n) // 50,
                                    np.arange(n, dtype=np.float32), (50, 20))
  kept, held = data.holdout(jax.random.key(3), obs, 0.1)
  assert kept.nnz == 900 and held.nnz == 100 and kept.shape == held.shape == (50, 20)
  both = np.sort(np.concatenate([np.asarray(kept.values), np.asarray(held.values)]))
  np.testing.assert_array_equal(both, np.arange(n))  # a partition of Ω
  np.testing.assert_array_equal(np.asarray(held.rows), np.asarray(held.values).astype(int) % 50)
  with pytest.raises(ValueError, match="empty"):
    data.holdout(jax.random.key(3), obs, 0.0)
  np.testing.assert_allclose(data.shift(obs, 2.5).values, np.asarray(obs.values) - 2.5)


def test_synthetic_problem_properties():
  p = data.synthetic(jax.random.key(2), 40, 30, 3, density=0.2, outlier_ratio=0.25,
                     noise_std=0.0, num_test=300)
  n = 30
  train = np.asarray(p.train.rows) * n + np.asarray(p.train.cols)
  test = np.asarray(p.test.rows) * n + np.asarray(p.test.cols)
  assert train.size == 240 and np.unique(train).size == 240
  assert test.size == 300 and np.unique(test).size == 300
  assert np.intersect1d(train, test).size == 0
  assert int(p.outlier_mask.sum()) == 60
  truth = np.asarray(p.u) @ np.asarray(p.v).T
  np.testing.assert_allclose(p.test.values, truth[p.test.rows, p.test.cols], rtol=1e-5,
                             atol=1e-5)
  inl = ~np.asarray(p.outlier_mask)
  np.testing.assert_allclose(np.asarray(p.train.values)[inl],
                             truth[p.train.rows, p.train.cols][inl], rtol=1e-5, atol=1e-5)
  assert np.all(np.abs(np.asarray(p.train.values)[~inl]
                       - truth[p.train.rows, p.train.cols][~inl]) > 0)
  np.testing.assert_allclose(obs_lib.rmse(p.test, p.u, p.v), 0.0, atol=1e-6)
  with pytest.raises(ValueError, match="rank"):
    data.synthetic(jax.random.key(0), 5, 5, 6)
  with pytest.raises(ValueError, match="density"):
    data.synthetic(jax.random.key(0), 5, 5, 2, density=1.5)
