"""Training and evaluating from streams (Jester layout written by the test): a full pass over the
evaluation stream equals the whole-split evaluation, a killed run resumes mid-epoch exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxpapers.convlstm_attention import config as config_lib
from jaxpapers.convlstm_attention import data, streaming, train

_LABELS = ["Swiping Left", "Swiping Right", "No gesture"]


def _write_jester(root, n_train=10, n_val=5):
  (root / "jester-v1-labels.csv").write_text("".join(f"{x}\n" for x in _LABELS))
  rng = np.random.default_rng(0)
  for split, n, base in (("train", n_train, 100), ("validation", n_val, 500)):
    rows = [(str(base + v), _LABELS[v % 3]) for v in range(n)]
    (root / f"jester-v1-{split}.csv").write_text("".join(f"{v};{lab}\n" for v, lab in rows))
    for vid, _ in rows:
      folder = root / "20bn-jester-v1" / vid
      folder.mkdir(parents=True)
      for t in range(6):
        Image.fromarray(rng.integers(0, 256, (20, 26, 3), dtype=np.uint8)).save(
            folder / f"{t + 1:05d}.jpg")


def _config(root, **kw):
  c = config_lib.get_config("smoke")
  c.dataset, c.data_dir, c.num_classes = "jester", str(root), 3
  c.num_frames, c.size, c.batch_size = 4, 16, 4
  c.seeds, c.variants, c.controls = [0, 1], ["a"], []
  c.num_steps, c.chunk_size = 5, 1
  for k, v in kw.items():
    setattr(c, k, v)
  return c


@pytest.fixture(scope="module")
def jester(tmp_path_factory):
  root = tmp_path_factory.mktemp("jester")
  _write_jester(root)
  return root


def test_stream_eval_equals_full_pass_over_the_loaded_split(jester):
  cfg = _config(jester)
  init, _, _ = train.make_train(cfg)
  state = jax.vmap(init)(jnp.stack([jax.random.key(s) for s in cfg.seeds]))
  with streaming.jester_stream(jester, "validation", batch_size=4, num_frames=4, size=16,
                               dtype="float32") as stream:
    correct, count = train.stream_eval(state.params, state.bn_state, stream, cfg)
  arrays = data.load_jester(jester, "validation", num_frames=4, size=16)
  want = jax.vmap(lambda p, s: train.full_pass_eval(p, jnp.asarray(arrays.clips),
                                                    jnp.asarray(arrays.labels), cfg,
                                                    bn_state=s))(state.params, state.bn_state)
  assert count == 5 == int(want.count[0])  # every clip once, the padded rows masked
  np.testing.assert_array_equal(correct, np.asarray(want.correct))


def test_train_and_evaluate_reads_jester_through_streams(jester, tmp_path):
  out = train.train_and_evaluate(_config(jester), str(tmp_path))
  res = out["a"]
  assert res["eval_clips"] == 5 and len(res["test_accuracy"]) == 2
  assert res["steps"] == 5 and np.isfinite(res["final_train_loss"])


class _Killed(RuntimeError):
  pass


class _KillAfter:
  """A training stream that raises after ``after`` batches (a run killed mid-epoch)."""

  def __init__(self, stream, after):
    self.stream, self.after, self.seen = stream, after, 0

  def __getattr__(self, name):
    return getattr(self.stream, name)

  def __len__(self):
    return len(self.stream)

  def epoch(self, epoch, start=0):
    for batch in self.stream.epoch(epoch, start):
      if self.seen == self.after:
        raise _Killed
      self.seen += 1
      yield batch


def test_a_killed_run_resumes_mid_epoch_with_the_same_batches(jester, tmp_path):
  cfg = _config(jester)

  def streams():
    return (streaming.jester_stream(jester, "train", batch_size=4, num_frames=4, size=16,
                                    train=True, dtype="float32", seed=0),
            streaming.jester_stream(jester, "validation", batch_size=4, num_frames=4, size=16,
                                    dtype="float32"))

  tr, ev = streams()
  full, p_full = train.train_model_stream(cfg, str(tmp_path / "full"), tr, ev, progress=False,
                                          return_params=True)
  tr.close()
  assert len(tr) == 2  # 10 clips in batches of 4, remainder dropped: 5 steps span 3 epochs
  tr, _ = streams()
  with pytest.raises(_Killed):
    train.train_model_stream(cfg, str(tmp_path / "resumed"), _KillAfter(tr, 3), ev,
                             progress=False)
  tr.close()
  tr, _ = streams()
  again, p_again = train.train_model_stream(cfg, str(tmp_path / "resumed"), tr, ev,
                                            progress=False, return_params=True)
  for a, b in zip(jax.tree.leaves(p_full), jax.tree.leaves(p_again)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert again["test_accuracy"] == full["test_accuracy"]


def test_epoch_start_skips_batches_without_decoding_them(jester):
  with streaming.jester_stream(jester, "train", batch_size=4, num_frames=4, size=16,
                               train=True, seed=3) as s:
    whole = list(s.epoch(1))
    decoded = s.decoded_clips
    tail = list(s.epoch(1, start=1))
    assert s.decoded_clips - decoded == 4  # only the second batch was decoded
    np.testing.assert_array_equal(tail[0].clips, whole[1].clips)
    with pytest.raises(ValueError, match="start must be an int in"):
      s.epoch(0, start=3)


def test_stream_arguments_are_checked(jester):
  cfg = _config(jester)
  with streaming.jester_stream(jester, "validation", batch_size=4, num_frames=4, size=16) as ev:
    with pytest.raises(ValueError, match="train_stream must be a training stream"):
      train.train_model_stream(cfg, None, ev, ev, progress=False)
    with streaming.jester_stream(jester, "train", batch_size=2, num_frames=4, size=16,
                                 train=True) as tr:
      with pytest.raises(ValueError, match="train_stream.batch_size"):
        train.train_model_stream(cfg, None, tr, ev, progress=False)
      with pytest.raises(ValueError, match="must be an evaluation stream"):
        train.stream_eval(None, None, tr, cfg)
