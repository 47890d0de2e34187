"""DMGAN data: toy sets on their manifolds, IDX and CIFAR-JPEG loaders on written files, mixtures."""

import gzip
import io
import struct
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers._src import testing
from jaxpapers.dmgan import data


def _write_idx(path, array, code=0x08):
  header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
  payload = header + array.astype(dtype).tobytes()
  opener = gzip.open if str(path).endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(payload)


def test_read_idx_roundtrip_plain_gzip_and_dtypes(tmp_path):
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
  _write_idx(tmp_path / "a", img)
  _write_idx(tmp_path / "a.gz", img)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), img)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), img)
  shorts = rng.integers(-300, 300, (3, 4)).astype(np.int16)
  _write_idx(tmp_path / "s", shorts, 0x0B)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "s"), shorts)
  floats = rng.normal(size=(7,)).astype(np.float32)
  _write_idx(tmp_path / "f", floats, 0x0D)
  np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), floats)


def test_read_idx_rejects_bad_files(tmp_path):
  (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x01\x00")
  with pytest.raises(ValueError, match="not an IDX"):
    data.read_idx(tmp_path / "bad")
  (tmp_path / "code").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
  with pytest.raises(ValueError, match="type code"):
    data.read_idx(tmp_path / "code")
  (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00\x00")
  with pytest.raises(ValueError, match="needs 5"):
    data.read_idx(tmp_path / "short")
  with pytest.raises(FileNotFoundError):
    data.read_idx(tmp_path / "missing")


def test_load_mnist_from_written_idx_folder(tmp_path):
  rng = np.random.default_rng(1)
  img = rng.integers(0, 256, (6, 28, 28)).astype(np.uint8)
  lab = rng.integers(0, 10, (6,)).astype(np.uint8)
  _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", img)
  _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", lab)
  x, y = data.load_mnist("test", data_dir=tmp_path)
  assert x.shape == (6, 28, 28, 1) and x.dtype == np.float32
  np.testing.assert_allclose(x[..., 0], img / 255.0 * 2 - 1, atol=1e-6)
  np.testing.assert_array_equal(y, lab)
  with pytest.raises(FileNotFoundError, match="mnist"):
    data.load_mnist("train", data_dir=tmp_path)
  _write_idx(tmp_path / "train-images-idx3-ubyte", img)
  _write_idx(tmp_path / "train-labels-idx1-ubyte", lab[:4])
  with pytest.raises(ValueError, match="disagree"):
    data.load_mnist("train", data_dir=tmp_path)


def test_load_cifar10_jpeg_from_written_tar(tmp_path):
  from PIL import Image

  rng = np.random.default_rng(2)
  tar_path = tmp_path / "cifar10-jpeg.tar.gz"
  originals = {}
  with tarfile.open(tar_path, "w:gz") as tar:
    for split in ("train", "test"):
      for cls in ("cat", "ship"):
        for i in range(3):
          arr = np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8)  # flat colour: JPEG-exact-ish
          buf = io.BytesIO()
          Image.fromarray(arr).save(buf, format="JPEG", quality=95)
          info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
          info.size = len(buf.getvalue())
          tar.addfile(info, io.BytesIO(buf.getvalue()))
          originals[(split, cls, i)] = arr
  x, y = data.load_cifar10_jpeg("test", classes=("ship", "cat"), limit_per_class=2,
                                data_dir=tmp_path)
  assert x.shape == (4, 32, 32, 3)
  assert sorted(y.tolist()) == [3, 3, 8, 8]
  first = originals[("test", "cat", 0)] if y[0] == 3 else originals[("test", "ship", 0)]
  np.testing.assert_allclose((x[0] + 1) * 127.5, first, atol=4.0)
  with pytest.raises(ValueError, match="classes"):
    data.load_cifar10_jpeg("test", classes=("zebra",), data_dir=tar_path)


@pytest.mark.parametrize("name", ["segments", "circles", "ring"])
def test_toy_samples_lie_on_pieces_with_equal_probabilities(name):
  ds = data.toy_dataset(name)
  x = jax.jit(data.sample_toy, static_argnums=(1, 2))(jax.random.key(0), ds, 6000)
  dist = data.distance_to_manifold(ds, x)
  if name == "ring":
    assert float(jnp.mean(dist > 0.05)) == 0.0  # std 0.01: 5σ away essentially never
  else:
    assert float(jnp.max(dist)) < 1e-5
  counts = np.bincount(np.asarray(data.toy_labels(ds, x)), minlength=ds.num_pieces)
  assert testing.chi_square_pvalue(counts, np.ones(ds.num_pieces)) > 1e-3


def test_pieces_are_disjoint_and_distances_match_dense_reference():
  ds = data.four_segments()
  # Dense reference: distance to a fine discretisation of every segment.
  t = np.linspace(0, 1, 20001)[:, None]
  dense = np.concatenate([np.asarray(a) + t * (np.asarray(b) - np.asarray(a)) for a, b in ds.pieces])
  q = np.random.default_rng(3).uniform(-1.2, 1.2, (50, 2)).astype(np.float32)
  ref = np.min(np.linalg.norm(q[:, None] - dense[None], axis=-1), axis=1)
  np.testing.assert_allclose(data.distance_to_manifold(ds, jnp.asarray(q)), ref, atol=1e-4)
  # Pieces are disjoint: each piece's points are at distance > 0.2 from every other piece.
  for k in range(4):
    pts = jnp.asarray(dense[k * 20001:(k + 1) * 20001:500], jnp.float32)
    d = np.asarray(data.piece_distances(ds, pts))
    assert np.all(np.delete(d, k, axis=1) > 0.2)
  c = data.two_circles(radius=0.3, gap=0.4)
  np.testing.assert_allclose(data.distance_to_manifold(c, jnp.asarray([[-0.5, 0.0], [0.5, 0.6]])),
                             [0.3, np.hypot(0, 0.6) - 0.3], atol=1e-6)


def test_two_circles_default_is_reference_generate_circle_data():
  # run_dmgan.py: (sin z - 2, cos z) or (sin z + 2, cos z), z ~ U[0, 2π): unit circles at (±2, 0).
  c = data.two_circles()
  assert c.pieces == (((-2.0, 0.0), 1.0), ((2.0, 0.0), 1.0))
  z = np.linspace(0, 2 * np.pi, 50, endpoint=False)
  ref = np.concatenate([np.c_[np.sin(z) - 2, np.cos(z)], np.c_[np.sin(z) + 2, np.cos(z)]])
  assert float(jnp.max(data.distance_to_manifold(c, jnp.asarray(ref, jnp.float32)))) < 1e-5
  x = data.sample_toy(jax.random.key(1), c, 2000)
  assert float(jnp.max(data.distance_to_manifold(c, x))) < 1e-5


def _assert_frequencies(counts, weights, n):
  """Chi-square goodness of fit, plus every piece within 5 binomial standard deviations."""
  w = np.asarray(weights, np.float64) / np.sum(weights)
  assert testing.chi_square_pvalue(counts, w) > 1e-4, (counts, w)
  sd = np.sqrt(w * (1 - w) / n)
  np.testing.assert_array_less(np.abs(counts / n - w), 5 * sd + 1e-12)


@pytest.mark.parametrize("weights", [(0.5, 0.3, 0.2), (0.1, 0.0, 0.9)])
def test_weighted_toy_pieces_are_sampled_with_their_masses(weights):
  ds = data.three_segments(weights)
  assert ds.masses == pytest.approx(weights)
  n = 20_000
  x = jax.jit(data.sample_toy, static_argnums=(1, 2))(jax.random.key(5), ds, n)
  assert float(jnp.max(data.distance_to_manifold(ds, x))) < 1e-5
  counts = np.bincount(np.asarray(data.toy_labels(ds, x)), minlength=3)
  _assert_frequencies(counts, weights, n)
  if 0.0 in weights:
    assert counts[weights.index(0.0)] == 0
  # Unnormalised weights mean the same masses.
  assert data.three_segments(tuple(10 * w for w in weights)).masses == pytest.approx(weights)
  # A ring with unequal masses through the named constructor.
  ring = data.toy_dataset("ring", num_modes=4, weights=(4, 3, 2, 1))
  xr = data.sample_toy(jax.random.key(6), ring, n)
  _assert_frequencies(np.bincount(np.asarray(data.toy_labels(ring, xr)), minlength=4),
                      (4, 3, 2, 1), n)


def test_custom_samplers_with_masses():
  n = 20_000
  seg = lambda y: (lambda k, b: jnp.stack([jax.random.uniform(k, (b,)), jnp.full((b,), y)], 1))
  mix = jax.jit(data.mixture_sampler([seg(0.0), seg(1.0), seg(2.0)], (0.2, 0.5, 0.3)),
                static_argnums=1)
  x = mix(jax.random.key(0), n)
  assert x.shape == (n, 2)
  counts = np.bincount(np.asarray(x[:, 1]).round().astype(int), minlength=3)
  _assert_frequencies(counts, (0.2, 0.5, 0.3), n)
  # Row weights of an in-memory array: 2 rows of piece A (mass 0.6 together), 1 row of piece B.
  rows = jnp.asarray([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
  sample = data.array_sampler(rows, weights=(0.3, 0.3, 0.4))
  y = np.asarray(sample(jax.random.key(1), n))
  _assert_frequencies(np.array([np.sum(y[:, 0] < 1), np.sum(y[:, 0] > 1)]), (0.6, 0.4), n)
  for bad in [(0.5, 0.5), (-1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (np.nan, 1.0, 1.0)]:
    with pytest.raises(ValueError, match="weights"):
      data.array_sampler(rows, weights=bad)
  with pytest.raises(ValueError, match="weights"):
    data.mixture_sampler([seg(0.0), seg(1.0)], (1.0,))
  with pytest.raises(ValueError, match="weights"):
    data.three_segments((0.5, 0.5))


def test_two_domain_mixture_fractions_shapes_and_sources():
  a = jnp.full((5, 8, 8, 1), -0.5)  # grey domain
  b = jnp.full((7, 16, 16, 3), 0.75)  # colour domain at another size
  x, dom = data.two_domain_mixture(jax.random.key(0), a, b, 2000, fraction_a=0.3)
  assert x.shape == (2000, 8, 8, 3)
  np.testing.assert_allclose(float(jnp.mean(dom == 0)), 0.3, atol=0.04)
  np.testing.assert_allclose(x[dom == 0], -0.5, atol=1e-6)
  np.testing.assert_allclose(x[dom == 1], 0.75, atol=1e-6)
  with pytest.raises(ValueError, match="fraction_a"):
    data.two_domain_mixture(jax.random.key(0), a, b, 4, fraction_a=1.5)
  with pytest.raises(ValueError, match="images_b"):
    data.two_domain_mixture(jax.random.key(0), a, b[0], 4)


def test_digits_and_array_sampler_validation():
  x, y = data.load_digits()
  assert x.shape == (1797, 8, 8, 1) and y.shape == (1797,)
  assert x.min() == -1.0 and x.max() == 1.0
  s = data.array_sampler(x)
  assert s(jax.random.key(0), 4).shape == (4, 8, 8, 1)
  with pytest.raises(ValueError, match="NaN"):
    data.array_sampler(np.where(np.arange(64).reshape(8, 8) == 3, np.nan, 0.0).astype(np.float32))
  with pytest.raises(ValueError, match="rank"):
    data.array_sampler(np.zeros(5, np.float32))
  with pytest.raises(ValueError, match="x must have"):
    data.distance_to_manifold(data.four_segments(), jnp.zeros((3, 3)))
  with pytest.raises(ValueError, match="num_modes"):
    data.gaussian_ring(0)
