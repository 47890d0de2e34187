"""Pipe-SGD data loaders on small files written in the real formats."""

import gzip
import io
import struct
import tarfile

import numpy as np
import pytest

from jaxpapers.pipe_sgd import data


def _write_idx(path, arr, gz=False):
  type_byte = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
  header = bytes([0, 0, type_byte, arr.ndim]) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
  body = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
  opener = gzip.open if gz else open
  with opener(path, "wb") as f:
    f.write(header + body)


def test_read_idx_raw_gz_and_big_endian(tmp_path):
  a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  _write_idx(tmp_path / "a", a)
  _write_idx(tmp_path / "a.gz", a, gz=True)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), a)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), a)
  b = np.array([1, -2, 70000], dtype=np.int32)
  _write_idx(tmp_path / "b", b)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "b"), b)


def test_load_mnist_from_written_idx(tmp_path):
  rng = np.random.default_rng(0)
  xtr = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
  ytr = np.array([0, 1, 2, 3, 9], np.uint8)
  xte = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
  yte = np.array([7, 4], np.uint8)
  for name, arr in zip(data.MNIST_FILES, (xtr, ytr, xte, yte)):
    _write_idx(tmp_path / (name + ".gz"), arr, gz=True)
  ds = data.load_mnist(tmp_path)
  assert ds.x_train.shape == (5, 28, 28, 1) and ds.x_train.dtype == np.float32
  np.testing.assert_allclose(ds.x_train[..., 0], xtr / 255.0)
  np.testing.assert_array_equal(ds.y_test, [7, 4])
  root = tmp_path / "root"
  (root / "mnist").mkdir(parents=True)
  for name in data.MNIST_FILES:
    (tmp_path / (name + ".gz")).rename(root / "mnist" / (name + ".gz"))
  np.testing.assert_array_equal(data.load_mnist(root).y_test, [7, 4])  # a data root works too


def test_bad_idx(tmp_path):
  (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x05abc")
  with pytest.raises(ValueError, match="magic"):
    data.read_idx(tmp_path / "bad")
  (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
  with pytest.raises(ValueError, match="expected 5"):
    data.read_idx(tmp_path / "short")


def _cifar_records(images, labels):
  # CIFAR-10 binary: label byte, then 1024 R, 1024 G, 1024 B bytes (row-major 32x32 planes)
  out = bytearray()
  for img, lab in zip(images, labels):
    out.append(int(lab))
    out += img.transpose(2, 0, 1).tobytes()
  return bytes(out)


def test_load_cifar10_binary(tmp_path):
  rng = np.random.default_rng(1)
  imgs = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
  labs = np.array([0, 1, 2, 3, 4, 9])
  folder = tmp_path / "cifar-10-batches-bin"
  folder.mkdir()
  (folder / "data_batch_1.bin").write_bytes(_cifar_records(imgs[:4], labs[:4]))
  (folder / "test_batch.bin").write_bytes(_cifar_records(imgs[4:], labs[4:]))
  ds = data.load_cifar10(tmp_path)
  np.testing.assert_allclose(ds.x_train, imgs[:4] / 255.0, rtol=1e-6)
  np.testing.assert_array_equal(ds.y_train, labs[:4])
  np.testing.assert_array_equal(ds.y_test, [4, 9])
  (folder / "data_batch_2.bin").write_bytes(b"\x00" * 100)
  with pytest.raises(ValueError, match="record"):
    data.load_cifar10(tmp_path)


def test_load_cifar10_jpeg_tar(tmp_path):
  from PIL import Image

  path = tmp_path / "c.tar.gz"
  colors = {}
  with tarfile.open(path, "w:gz") as tar:
    for split in ("train", "test"):
      for ci, cls in enumerate(("airplane", "truck")):
        for i in range(3):
          color = (ci * 200, i * 50, 100)
          colors[(split, cls, i)] = color
          buf = io.BytesIO()
          Image.new("RGB", (32, 32), color).save(buf, format="JPEG", quality=95)
          info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
          info.size = len(buf.getvalue())
          tar.addfile(info, io.BytesIO(buf.getvalue()))
  ds = data.load_cifar10_jpeg_tar(path, max_per_class=2, max_test_per_class=3)
  assert ds.x_train.shape == (4, 32, 32, 3)
  np.testing.assert_array_equal(ds.y_train, [0, 0, 9, 9])
  np.testing.assert_array_equal(ds.y_test, [0, 0, 0, 9, 9, 9])
  # JPEG is lossy, but a flat colour survives to within a few levels
  np.testing.assert_allclose(ds.x_train[1].mean(axis=(0, 1)) * 255, (0, 50, 100), atol=4)


def test_digits_and_batches():
  ds = data.load_digits()
  assert ds.x_train.shape[1:] == (8, 8, 1) and len(ds.y_train) + len(ds.y_test) == 1797
  assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
  a = data.stacked_batches(ds.x_train, ds.y_train, 32, 5, seed=3)
  b = data.stacked_batches(ds.x_train, ds.y_train, 32, 5, seed=3)
  np.testing.assert_array_equal(a["y"], b["y"])
  assert a["x"].shape == (5, 32, 8, 8, 1)
  with pytest.raises(ValueError, match="batch_size"):
    next(data.batches(ds.x_train, ds.y_train, 0, 0))
  with pytest.raises(ValueError, match="dataset"):
    data.load_dataset("imagenet")
