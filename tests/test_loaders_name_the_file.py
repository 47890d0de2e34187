"""Loaders name the file (and line) they failed on (issue 22): svmlight, delimited text, .mat."""

import numpy as np
import pytest
import scipy.io

from jaxpapers.bbmm import data as bbmm_data
from jaxpapers.volume_sampling import data as vs_data


def test_svmlight_parse_errors_name_file_and_line(tmp_path):
  good = tmp_path / "good"
  good.write_text("1.5 1:0.5 3:2\n-2 2:1\n")
  x, y = vs_data.load_svmlight(good)
  np.testing.assert_array_equal(x, [[0.5, 0, 2], [0, 1, 0]])
  np.testing.assert_array_equal(y, [1.5, -2])
  bad = tmp_path / "bad"
  bad.write_text("1.5 1:0.5\n2 1:abc\n")
  with pytest.raises(ValueError, match=rf"{bad}:2: not a valid svmlight file"):
    vs_data.load_svmlight(bad)
  binary = tmp_path / "binary"
  binary.write_bytes(b"1 1:0.5\n\xff\xfe 1:2\n")
  with pytest.raises(ValueError, match=str(binary)):
    vs_data.load_svmlight(binary)
  nan = tmp_path / "nan"
  nan.write_text("1 1:nan\n")
  with pytest.raises(ValueError, match=f"{nan}"):
    vs_data.load_svmlight(nan)


def test_csv_non_utf8_names_the_file(tmp_path):
  path = tmp_path / "t.csv"
  path.write_bytes(b"a,b\n1,2\n\xff,3\n")
  with pytest.raises(ValueError, match=rf"{path}: not UTF-8 text at byte"):
    vs_data.load_csv(path, target="b")


def test_mat_loader_names_the_broken_file(tmp_path):
  ok = tmp_path / "ok.mat"
  scipy.io.savemat(ok, {"data": np.arange(6.0).reshape(3, 2)})
  x, y = bbmm_data.load_mat(ok)
  assert x.shape == (3, 1) and y.tolist() == [1.0, 3.0, 5.0]
  broken = tmp_path / "broken.mat"
  broken.write_bytes(ok.read_bytes()[:100])
  with pytest.raises(ValueError, match=f"{broken}: not a readable MATLAB .mat file"):
    bbmm_data.load_mat(broken)
  garbage = tmp_path / "garbage.mat"
  garbage.write_bytes(b"not a mat file at all" * 10)
  with pytest.raises(ValueError, match=str(garbage)):
    bbmm_data.load_mat(garbage)
