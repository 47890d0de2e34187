"""Deterministic full-pass evaluation of the ConvLSTM-attention networks (Zhang et al., 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpapers.convlstm_attention import config, data, model, train


@pytest.fixture(scope="module")
def setup():
  cfg = config.get_config("smoke")
  params = model.init_network(jax.random.key(1), cfg)
  n = 11  # not a multiple of the batch sizes below: the last batch is padded
  batch = data.synthetic_batch(jax.random.key(2), n, num_frames=cfg.num_frames, size=cfg.size,
                               num_classes=cfg.num_classes)
  # Labels chosen so that roughly half the clips are "correct" under these random weights.
  pred = np.asarray(jnp.argmax(model.apply_network(params, batch.clips, cfg), -1))
  labels = np.where(np.arange(n) % 2 == 0, pred, (pred + 1) % cfg.num_classes).astype(np.int32)
  return cfg, params, np.asarray(batch.clips), labels, pred


def test_every_clip_exactly_once_and_equals_per_clip_loop(setup):
  cfg, params, clips, labels, _ = setup
  n = len(labels)
  one = jax.jit(lambda c: jnp.argmax(model.apply_network(params, c, cfg), -1)[0])
  per_clip = [int(one(clips[i:i + 1]) == labels[i]) for i in range(n)]
  for bs in (4, 64):  # 3 batches with 1 padded row; one batch clipped to n
    res = train.full_pass_eval(params, jnp.asarray(clips), jnp.asarray(labels), cfg, batch_size=bs)
    assert int(res.count) == n, bs
    assert int(res.correct) == sum(per_clip) == 6, bs  # the even indices 0, 2, ..., 10


def test_make_train_and_train_model_evaluate_deterministically(setup, tmp_path):
  cfg, params, clips, labels, _ = setup
  arrays = data.Clips(jnp.asarray(clips), jnp.asarray(labels))
  _, _, evaluate = train.make_train(cfg, arrays)
  a = float(evaluate(params, jax.random.key(0)))
  b = float(evaluate(params, jax.random.key(123)))  # the key does not matter any more
  assert a == b == pytest.approx(6 / 11)
  c = cfg.copy_and_resolve_references()
  c.num_steps = 0
  res, trained = train.train_model(c, None, arrays=arrays, eval_arrays=arrays, progress=False,
                                   return_params=True)
  assert res["eval_clips"] == 11
  p0 = jax.tree.map(lambda p: p[0], trained)
  want = train.full_pass_eval(p0, arrays.clips, arrays.labels, cfg, batch_size=3)
  assert res["test_accuracy"] == [pytest.approx(int(want.correct) / 11)]
  # jit/vmap over stacked parameters (seeds) gives each seed's full-pass result.
  stacked = jax.tree.map(lambda p: jnp.stack([p, p]), params)
  f = jax.jit(jax.vmap(lambda p: train.full_pass_eval(p, arrays.clips, arrays.labels, cfg,
                                                      batch_size=4)))
  np.testing.assert_array_equal(np.asarray(f(stacked).correct), [6, 6])


def test_full_pass_bad_inputs(setup):
  cfg, params, clips, labels, _ = setup
  with pytest.raises(ValueError, match="labels must have shape"):
    train.full_pass_eval(params, jnp.asarray(clips), jnp.asarray(labels[:3]), cfg)
  with pytest.raises(TypeError, match="labels must be integers"):
    train.full_pass_eval(params, jnp.asarray(clips), jnp.asarray(labels, jnp.float32), cfg)
  with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
    train.full_pass_eval(params, jnp.asarray(clips), jnp.asarray(labels) + 10, cfg)
  with pytest.raises(ValueError, match="clips must be non-empty"):
    train.full_pass_eval(params, jnp.asarray(clips[:0]), jnp.asarray(labels[:0]), cfg)
  with pytest.raises(ValueError, match="batch_size"):
    train.full_pass_eval(params, jnp.asarray(clips), jnp.asarray(labels), cfg, batch_size=0)
  with pytest.raises(ValueError, match="clips must have rank 5"):
    train.full_pass_eval(params, jnp.asarray(clips[0]), jnp.asarray(labels), cfg)
