"""Loaders on files the tests write in the real formats, design preparation, synthetic designs."""

import jax
import numpy as np
import pytest

from jaxpapers._src.data import DatasetNotFoundError
from jaxpapers.volume_sampling import data


def test_load_svmlight(tmp_path):
  path = tmp_path / "housing_scale"
  path.write_text("24 1:-1 2:-0.64 4:0.5 \n21.6 1:-0.99 3:0.25\n-3 2:1e-2 4:7\n")
  X, y = data.load_svmlight(path, n_features=4)
  np.testing.assert_array_equal(y, [24, 21.6, -3])
  np.testing.assert_array_equal(X, [[-1, -0.64, 0, 0.5], [-0.99, 0, 0.25, 0], [0, 0.01, 0, 7]])
  with pytest.raises(FileNotFoundError, match="path"):
    data.load_svmlight(tmp_path / "missing")


def test_load_csv_semicolon_crlf_max_rows(tmp_path):
  path = tmp_path / "cpu_small.csv"
  path.write_bytes(b"a;b;usr;c\r\n1;2;90;3\r\n4;5.5;88;6\r\n7;8;70;9\r\n")
  X, y = data.load_csv(path, target="usr", delimiter=";", max_rows=2)
  np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5.5, 6]])
  np.testing.assert_array_equal(y, [90, 88])


def test_load_csv_quoted_header_drop_and_categorical(tmp_path):
  path = tmp_path / "bodyfat.csv"
  path.write_text('"","density","percent.fat","age"\n"1",1.07,12.3,23\n"2",1.08,6.1,22\n')
  X, y = data.load_csv(path, target="percent.fat", drop=(0,))
  np.testing.assert_array_equal(X, [[1.07, 23], [1.08, 22]])
  np.testing.assert_array_equal(y, [12.3, 6.1])
  path = tmp_path / "abalone.data"
  path.write_text("M,0.4,15\nF,0.3,7\nI,0.2,9\n")
  X, y = data.load_csv(path, target=2, header=False, categorical={0: {"M": 1, "F": 2, "I": 3}})
  np.testing.assert_array_equal(X, [[1, 0.4], [2, 0.3], [3, 0.2]])
  np.testing.assert_array_equal(y, [15, 7, 9])


def test_load_csv_errors(tmp_path):
  path = tmp_path / "bad.csv"
  path.write_text("a,b\n1,2\n3,x\n")
  with pytest.raises(ValueError, match="row 2, column 1.*non-numeric"):
    data.load_csv(path, target="b")
  with pytest.raises(ValueError, match="column 'zz' not in header"):
    data.load_csv(path, target="zz")
  path.write_text("a,b\n1,2\n3\n")
  with pytest.raises(ValueError, match="row 2 .* has 1 fields, expected 2"):
    data.load_csv(path, target="b")
  path.write_text("M,1\nQ,2\n")
  with pytest.raises(ValueError, match="unknown category 'Q'"):
    data.load_csv(path, target=1, header=False, categorical={0: {"M": 1}})


def test_load_dataset_from_written_folder(tmp_path):
  folder = tmp_path / "libsvm-regression"
  folder.mkdir()
  rows = ["1 " + " ".join(f"{j}:{(i * 7 + j) % 5 - 2}" for j in range(1, 14)) for i in range(506)]
  (folder / "housing_scale").write_text("\n".join(rows) + "\n")
  X, y = data.load_dataset("housing", data_dir=tmp_path)
  assert X.shape == (506, 13) and np.all(y == 1)
  (folder / "bodyfat.csv").write_text('"","density","percent.fat"\n"1",1.0,2.0\n')
  with pytest.raises(ValueError, match="expected 252 x 14"):
    data.load_dataset("bodyfat", data_dir=folder)
  with pytest.raises(DatasetNotFoundError):
    data.load_dataset("cadata", data_dir=folder)
  with pytest.raises(ValueError, match="name must be one of"):
    data.load_dataset("mnist")


@pytest.mark.skipif(not data.has_dataset("cpusmall"), reason="../shared/data/libsvm-regression absent")
def test_real_cpusmall_uses_first_8192_rows():
  X, y = data.load_dataset("cpusmall")
  assert X.shape == (8192, 12) and y[0] == 90
  assert len(np.unique(np.column_stack([X, y]), axis=0)) == 8192  # duplicates appended in file dropped


def test_prepare_design_preserves_column_span():
  rng = np.random.default_rng(0)
  raw = rng.standard_normal((50, 3)) * [1, 100, 1e-3] + [5, -2, 1]
  for intercept in (True, False):
    base = np.column_stack([raw, np.ones(50)]) if intercept else raw
    Xp = data.prepare_design(raw, intercept=intercept)
    assert Xp.shape == base.shape
    proj = lambda a: a @ np.linalg.pinv(a)
    np.testing.assert_allclose(proj(Xp), proj(base), atol=1e-9)
    if intercept:
      np.testing.assert_allclose(Xp[:, :3].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Xp[:, :3].std(0), 1, atol=1e-12)
  with pytest.raises(ValueError, match="constant columns \\[1\\]"):
    data.prepare_design(np.column_stack([raw[:, 0], np.ones(50)]))
  with pytest.raises(ValueError, match="NaN or inf"):
    data.prepare_design(np.array([[1.0, np.inf], [0.0, 1.0]]))


def test_lower_bound_instance_structure():
  X, y = data.lower_bound_instance(8, 3, eps=0.01)
  assert X.shape == (8, 3) and y.sum() == 1
  lev = np.einsum("ij,ji->i", X, np.linalg.solve(X.T @ X, X.T))
  np.testing.assert_allclose(lev[:2], 1.0)
  assert lev[2] > 0.99
  with pytest.raises(ValueError, match="n > d"):
    data.lower_bound_instance(3, 3)


def test_synthetic_regression():
  X, y = data.synthetic_regression(jax.random.key(0), 200, 4)
  assert X.shape == (200, 4) and y.shape == (200,)
  lev = np.einsum("ij,ji->i", np.asarray(X, float), np.linalg.pinv(np.asarray(X, float)))
  assert lev.max() > 5 * 4 / 200  # heavy tails: very non-uniform leverage
  with pytest.raises(ValueError, match="spread must be >= 0"):
    data.synthetic_regression(jax.random.key(0), 10, 2, spread=-1.0)
