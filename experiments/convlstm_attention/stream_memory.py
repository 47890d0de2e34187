"""Peak memory of streaming a Jester-layout split of full-scale clips (16×112×112×3).

Writes ``--num_clips`` synthetic videos as folders of small JPEG frames (176×100, like Jester's)
in the real Jester layout, streams them once with :func:`jester_stream` (batch 16, prefetch 4,
float32 batches on the consumer side, as training would use them) and reports the peak RSS
(``resource.getrusage``) next to the analytic bound on the stream's clip memory. The bound does
not depend on the number of clips, so peak RSS at 1000 clips should match that at 200.

  python experiments/convlstm_attention/stream_memory.py --num_clips=200
  python experiments/convlstm_attention/stream_memory.py --num_clips=10000
"""

import io
import pathlib
import resource
import shutil
import tempfile
import time

import numpy as np
from absl import app, flags
from PIL import Image

from jaxpapers.convlstm_attention import streaming

_NUM_CLIPS = flags.DEFINE_integer("num_clips", 200, "Videos to write and stream.")
_FRAMES_PER_VIDEO = flags.DEFINE_integer("frames_per_video", 16, "JPEG frames written per video.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Clips per batch.")
_PREFETCH = flags.DEFINE_integer("prefetch", 4, "Batches decoded ahead of the consumer.")
_WORKERS = flags.DEFINE_integer("num_workers", 4, "Decode threads.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", 16, "Frames sampled per clip (T).")
_SIZE = flags.DEFINE_integer("size", 112, "Frame side (H = W).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["uint8", "float32"], "Batch dtype delivered.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where to write the clips (default: a temp dir, "
                               "removed afterwards).")

_MIB = 2**20


def _peak_rss() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _rss() -> int:
  for line in pathlib.Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmRSS:"):
      return int(line.split()[1]) * 1024
  return 0


def _write_split(root: pathlib.Path, num_clips: int, frames_per_video: int) -> None:
  labels = ("Swiping Left", "Swiping Right", "No gesture")
  (root / "jester-v1-labels.csv").write_text("".join(f"{x}\n" for x in labels))
  rng = np.random.default_rng(0)
  pool = []  # a few distinct encoded frames, reused, so writing stays fast
  for _ in range(64):
    img = rng.integers(0, 256, (100, 176, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    pool.append(buf.getvalue())
  lines = []
  for v in range(num_clips):
    vid = str(v + 1)
    folder = root / "20bn-jester-v1" / vid
    folder.mkdir(parents=True)
    for t in range(frames_per_video):
      (folder / f"{t + 1:05d}.jpg").write_bytes(pool[(v * 7 + t) % len(pool)])
    lines.append(f"{vid};{labels[v % 3]}\n")
  (root / "jester-v1-train.csv").write_text("".join(lines))


def main(argv):
  del argv
  n = _NUM_CLIPS.value
  root = pathlib.Path(_WORKDIR.value or tempfile.mkdtemp(prefix="stream_memory_"))
  try:
    start = time.perf_counter()
    _write_split(root, n, _FRAMES_PER_VIDEO.value)
    print(f"wrote {n} videos × {_FRAMES_PER_VIDEO.value} JPEG frames to {root} in "
          f"{time.perf_counter() - start:.1f}s")
    rss_before, peak_before = _rss(), _peak_rss()
    seen = 0
    start = time.perf_counter()
    with streaming.jester_stream(root, "train", batch_size=_BATCH.value,
                                 num_frames=_NUM_FRAMES.value, size=_SIZE.value,
                                 prefetch=_PREFETCH.value, num_workers=_WORKERS.value,
                                 dtype=_DTYPE.value) as stream:
      for batch in stream:
        seen += int(batch.mask.sum())
        checksum = float(batch.clips.mean())  # touch the data like a consumer would
      bound = stream.bound_bytes
      max_ready = stream.max_ready_clips
    elapsed = time.perf_counter() - start
    peak = _peak_rss()
    clip_bytes = _NUM_FRAMES.value * _SIZE.value**2 * 3
    print(f"streamed {seen} clips of {_NUM_FRAMES.value}×{_SIZE.value}×{_SIZE.value}×3 in "
          f"{len(stream)} batches of {_BATCH.value} ({_DTYPE.value}), prefetch {_PREFETCH.value}, "
          f"{_WORKERS.value} workers: {elapsed:.1f}s, {seen / elapsed:.0f} clips/s "
          f"(last batch mean {checksum:.3f})")
    print(f"most decoded clips waiting: {max_ready} (bound prefetch × batch = "
          f"{_PREFETCH.value * _BATCH.value})")
    print(f"RSS before streaming: {rss_before / _MIB:.0f} MiB (peak so far {peak_before / _MIB:.0f} "
          f"MiB, mostly the jax import)")
    print(f"peak RSS: {peak / _MIB:.0f} MiB; growth while streaming: "
          f"{(peak - max(rss_before, 0)) / _MIB:.0f} MiB")
    print(f"analytic bound on the stream's clip memory: {bound / _MIB:.1f} MiB "
          f"({'(prefetch + 1) uint8 + 2 float32 batches' if _DTYPE.value == 'float32' else '(prefetch + 2) uint8 batches'})")
    print(f"whole split as one float32 array (load_jester): {n * clip_bytes * 4 / _MIB:.0f} MiB")
  finally:
    if _WORKDIR.value is None:
      shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
