"""Loaders on small files written in the real CIFAR-10 formats, digits, and the synthetic mixture."""

import pickle
import tarfile

import jax
import numpy as np
import pytest

from jaxpapers._src.data import DatasetNotFoundError
from jaxpapers.spectral_signatures import data


def _fake_cifar(n, seed):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, n).astype(np.int64)
  return images, labels


def _rows(images):  # official layout: 1024 red, 1024 green, 1024 blue, each row-major.
  return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


@pytest.fixture(scope="module")
def batches():
  return [_fake_cifar(4, s) for s in range(6)]  # 5 train batches + test


def test_pickle_loader(tmp_path, batches):
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
  for name, (im, lb) in zip(names, batches):
    with open(folder / name, "wb") as f:
      pickle.dump({b"data": _rows(im), b"labels": lb.tolist(), b"batch_label": b"x"}, f)
  train = data.load_cifar10_pickle(tmp_path, "train", allow_pickle=True)  # finds the sub-folder
  want = np.concatenate([b[0] for b in batches[:5]])
  assert train.images.shape == (20, 32, 32, 3) and train.images.dtype == np.float32
  np.testing.assert_allclose(train.images * 255.0, want, atol=1e-3)
  np.testing.assert_array_equal(train.labels, np.concatenate([b[1] for b in batches[:5]]))
  test = data.load_cifar10_pickle(folder, "test", allow_pickle=True)
  np.testing.assert_allclose(test.images * 255.0, batches[5][0], atol=1e-3)
  ds = data.load_cifar10(tmp_path, allow_pickle=True)
  assert ds.train.images.shape[0] == 20 and ds.test.images.shape[0] == 4
  limited = data.load_cifar10_pickle(folder, "train", limit_per_class=1, allow_pickle=True)
  assert np.all(np.bincount(limited.labels) <= 1)
  assert len(limited.labels) == len(np.unique(train.labels))


class _Exploit:
  """Unpickling this would call os.system; the loaders must never unpickle without consent."""

  def __reduce__(self):
    import os
    return (os.system, ("echo pwned > /dev/null",))


def test_pickles_are_refused_without_allow_pickle(tmp_path, batches, monkeypatch):
  folder = tmp_path / "cifar-10-batches-py"
  folder.mkdir()
  for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    with open(folder / name, "wb") as f:
      pickle.dump(_Exploit(), f)
  calls = []
  monkeypatch.setattr(pickle, "load", lambda *a, **k: calls.append(a) or {})
  with pytest.raises(ValueError, match="allow_pickle"):
    data.load_cifar10_pickle(tmp_path, "train")
  with pytest.raises(ValueError, match="allow_pickle"):
    data.load_cifar10(tmp_path)
  assert not calls  # nothing was unpickled
  # With the binary batches beside them, load_cifar10 uses those and leaves the pickles alone.
  bin_folder = tmp_path / "cifar-10-batches-bin"
  bin_folder.mkdir()
  for name, (im, lb) in zip([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"],
                            batches):
    np.concatenate([lb.astype(np.uint8)[:, None], _rows(im)], axis=1).tofile(bin_folder / name)
  assert data.load_cifar10(tmp_path).train.images.shape == (20, 32, 32, 3)
  assert not calls


def test_binary_loader(tmp_path, batches):
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
  for name, (im, lb) in zip(names, batches):
    rec = np.concatenate([lb.astype(np.uint8)[:, None], _rows(im)], axis=1)
    rec.tofile(folder / name)
  train = data.load_cifar10_binary(tmp_path, "train")
  np.testing.assert_allclose(train.images * 255.0, np.concatenate([b[0] for b in batches[:5]]),
                             atol=1e-3)
  np.testing.assert_array_equal(train.labels, np.concatenate([b[1] for b in batches[:5]]))
  assert data.load_cifar10(tmp_path).test.images.shape == (4, 32, 32, 3)
  (folder / "test_batch.bin").write_bytes(b"\x00" * 3072)  # truncated record
  with pytest.raises(ValueError, match="3073"):
    data.load_cifar10_binary(folder, "test")


def test_image_folder_and_tar(tmp_path):
  from PIL import Image

  rng = np.random.default_rng(0)
  root = tmp_path / "imgs"
  expected = {}
  for split in ("train", "test"):
    for cls in ("cat", "airplane"):
      d = root / split / cls
      d.mkdir(parents=True)
      for i in range(3):
        im = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(im).save(d / f"{i:04d}.png")  # lossless, so pixels must match exactly
        expected[(split, cls, i)] = im
  tar_path = tmp_path / "imgs.tar.gz"
  with tarfile.open(tar_path, "w:gz") as tar:
    tar.add(root, arcname="cifar10-jpeg")
  for src in (root, tar_path):
    s = data.load_image_folder(src, "test", limit_per_class=2)
    np.testing.assert_array_equal(s.labels, [0, 0, 3, 3])  # airplane = 0, cat = 3
    want = np.stack([expected[("test", c, i)] for c in ("airplane", "cat") for i in (0, 1)])
    np.testing.assert_allclose(s.images * 255.0, want, atol=1e-3)
    assert data.load_image_folder(src, "train").images.shape == (6, 32, 32, 3)
  with pytest.raises(DatasetNotFoundError):
    data.load_image_folder(tmp_path / "missing", "train")


def _write_jpeg_tar(tmp_path, corrupt_name=None):
  from PIL import Image

  rng = np.random.default_rng(0)
  root = tmp_path / "imgs"
  for split in ("train", "test"):
    for cls in ("cat", "airplane"):
      d = root / split / cls
      d.mkdir(parents=True)
      for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i:04d}.jpg")
  if corrupt_name:
    (root / corrupt_name).write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  tar_path = tmp_path / "imgs.tar.gz"
  with tarfile.open(tar_path, "w:gz") as tar:
    tar.add(root, arcname="cifar10-jpeg")
  return root, tar_path


def test_broken_jpeg_names_archive_and_member_or_is_skipped(tmp_path):
  root, tar_path = _write_jpeg_tar(tmp_path, corrupt_name="train/cat/0001.jpg")
  with pytest.raises(data.ImageDecodeError) as err:
    data.load_image_folder(tar_path, "train")
  msg = str(err.value)
  assert "cifar10-jpeg/train/cat/0001.jpg" in msg and str(tar_path) in msg
  assert "BytesIO" not in msg
  with pytest.raises(ValueError, match="0001.jpg"):  # a folder names the file
    data.load_image_folder(root, "train")
  for src in (tar_path, root):
    s = data.load_image_folder(src, "train", on_error="skip")
    assert s.skipped == 1 and s.images.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(s.labels, [0, 0, 0, 3, 3])
  # limit_per_class counts decodable images.
  s = data.load_image_folder(tar_path, "train", on_error="skip", limit_per_class=2)
  np.testing.assert_array_equal(s.labels, [0, 0, 3, 3])
  assert data.load_image_folder(tar_path, "test").skipped == 0
  with pytest.raises(ValueError, match="on_error"):
    data.load_image_folder(tar_path, "train", on_error="ignore")


def test_truncated_archive_names_the_archive(tmp_path):
  _, tar_path = _write_jpeg_tar(tmp_path)
  cut = tmp_path / "cut.tar.gz"
  cut.write_bytes(tar_path.read_bytes()[: tar_path.stat().st_size // 2])
  with pytest.raises(data.ImageDecodeError, match="cut.tar.gz"):
    data.load_image_splits(cut)


def test_digits_loader():
  ds = data.load_digits(0.3)
  assert ds.train.images.shape[1:] == (8, 8, 1) and ds.num_classes == 10
  assert ds.train.images.shape[0] + ds.test.images.shape[0] == 1797
  assert 0.0 <= ds.train.images.min() and ds.train.images.max() <= 1.0
  assert set(np.unique(ds.test.labels)) == set(range(10))


def test_gaussian_mixture_reps_geometry():
  mix = data.gaussian_mixture_reps(jax.random.key(0), num_classes=2, n_per_class=900, dim=8,
                                   epsilon=0.1, offset=10.0)
  reps, labels, pm = (np.asarray(a) for a in mix)
  assert pm.sum() == 100 and np.all(labels[pm] == 0)
  assert abs(pm.sum() / np.sum(labels == 0) - 0.1) < 1e-9
  clean0 = reps[(labels == 0) & ~pm]
  gap = reps[pm].mean(0) - clean0.mean(0)
  assert abs(gap @ gap - 60.0) < 6.0  # ‖Δ‖² = 6/ε, up to sampling noise
  assert abs(np.linalg.norm(clean0.mean(0)) - 10.0) < 0.5


def test_bad_loader_args(tmp_path):
  with pytest.raises(ValueError, match="split"):
    data.load_cifar10_pickle(tmp_path, "valid")
  with pytest.raises(DatasetNotFoundError):
    data.load_cifar10_binary(tmp_path, "train")
  with pytest.raises(ValueError, match="test_fraction"):
    data.load_digits(1.5)
  with pytest.raises(ValueError, match="epsilon"):
    data.gaussian_mixture_reps(jax.random.key(0), epsilon=0.6)
