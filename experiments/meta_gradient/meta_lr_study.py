r"""The meta-learning study behind the ``cpu`` config's ``meta_lr`` (issue 19).

At ``meta_lr = 1e-2`` Adam turns the λ meta-gradient's noise into unit-size steps of λ's logit,
and λ wanders far below its start. This binary trains the meta-{γ, λ} learner of the ``cpu``
config at several meta learning rates beside the fixed-(γ, λ) learner, on study seeds the
registered row never uses (its seeds are 0–4), and prints each setting's score, its paired
difference to the fixed learner (same seed: same initial network and environment keys) with the
standard error, and the final γ and λ:

  python experiments/meta_gradient/meta_lr_study.py --meta_lrs=1e-2,1e-3,1e-4 \
      --seeds=100,101,102 --out=results/experiments/meta_gradient_meta_lr_cpu.json

The rule, fixed before the run: the ``cpu`` config takes the meta learning rate with the largest
mean paired difference. ``--settings`` adds named variants of the meta learner beyond the meta
learning rate, each ``key=value`` overrides joined by ``+`` (e.g.
``meta_lr=1e-3+trace_decay=0.9``, ``meta_lr=1e-3+lambda_ref=0.9``). Each finished setting is
written at once under its name; a rerun (with more settings) skips finished ones, and a file
written for another game, seeds, step count or base config is refused.
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from jaxpapers._src import checkpoint, fileio, stats
from jaxpapers.meta_gradient import reproductions, train

_GAME = flags.DEFINE_string("game", "SpaceInvaders-MinAtar", "MinAtar game (gymnax name)")
_META_LRS = flags.DEFINE_list("meta_lrs", ["1e-2", "1e-3", "1e-4"], "meta learning rates")
_SEEDS = flags.DEFINE_list("seeds", ["100", "101", "102"], "study seeds (not the row's 0–4)")
_STEPS = flags.DEFINE_integer("total_env_steps", 10_000_000, "env steps per run")
_SETTINGS = flags.DEFINE_list("settings", [], "more meta-learner settings, e.g. "
                              "meta_lr=1e-3+trace_decay=0.9 (keys of the meta_gradient config)")
_OUT = flags.DEFINE_string("out", "", "JSON record (resumed per setting)")

_SETTING_KEYS = ("meta_lr", "trace_decay", "lambda_ref", "gamma_ref")


def parse_setting(text: str) -> dict[str, float]:
  """``"meta_lr=1e-3+trace_decay=0.9"`` → ``{"meta_lr": 1e-3, "trace_decay": 0.9}``."""
  out = {}
  for part in text.split("+"):
    key, sep, value = part.partition("=")
    if not sep or key not in _SETTING_KEYS:
      raise ValueError(f"--settings entry {text!r}: expected key=value pairs joined by '+' with "
                       f"keys in {list(_SETTING_KEYS)}, got {part!r}")
    try:
      out[key] = float(value)
    except ValueError:
      raise ValueError(f"--settings entry {text!r}: {key} must be a number, got {value!r}") from None
  return out


def paired(meta: list[float], fixed: list[float]) -> tuple[float, float]:
  """Mean and standard error of the per-seed differences ``meta − fixed``."""
  d = stats.mean_interval(np.asarray(meta, np.float64) - np.asarray(fixed, np.float64))
  return d["mean"], d["se"]


def main(argv):
  del argv
  seeds = [int(s) for s in _SEEDS.value]
  lrs = [float(x) for x in _META_LRS.value]
  if not lrs or any(not x > 0 for x in lrs):
    raise ValueError(f"--meta_lrs must be positive numbers, got {_META_LRS.value}")
  extra = {text: parse_setting(text) for text in _SETTINGS.value}
  base = reproductions.minatar_config("cpu", _GAME.value)
  base.total_env_steps = _STEPS.value
  base.meta_lr = 1e-3  # the paper's β, for --settings entries that do not name a meta_lr
  flags_hash = checkpoint.config_hash({"game": _GAME.value, "seeds": seeds,
                                       "steps": _STEPS.value, "config": base.to_dict()})
  rec = (fileio.read_json_for_config(_OUT.value, flags_hash) if _OUT.value
         and os.path.exists(_OUT.value) else None) or {"config_hash": flags_hash, "runs": {}}
  runs = rec["runs"]

  def save():
    if _OUT.value:
      fileio.write_json_atomic(_OUT.value, rec)

  if "fixed" not in runs:
    r = train.run_variants(base, ("fixed",), seeds)["fixed"]
    runs["fixed"] = {"score": r["score"], "seconds": r["seconds"]}
    save()
  settings = {f"meta_lr={lr:g}": {"meta_lr": lr} for lr in lrs} | extra
  for name, overrides in settings.items():
    if name in runs:
      continue
    cfg = base.copy_and_resolve_references()
    cfg.update(overrides)
    r = train.run_variants(cfg, ("meta_gamma_lambda",), seeds)["meta_gamma_lambda"]
    runs[name] = {**overrides, "score": r["score"], "gamma": r["gamma"], "lambda": r["lambda"],
                  "seconds": r["seconds"]}
    save()
  fixed = runs["fixed"]["score"]
  print(f"{_GAME.value}, seeds {seeds}, {_STEPS.value:.0e} env steps per run; fixed (γ = "
        f"{base.gamma_init}, λ = {base.lambda_init}): {np.mean(fixed):.1f} "
        f"({', '.join(f'{s:.1f}' for s in fixed)})")
  print(f"{'setting':32s} {'score':>7s} {'meta − fixed':>16s} {'γ final':>18s} {'λ final':>18s}")
  best = None
  for name in settings:
    r = runs[name]
    d, se = paired(r["score"], fixed)
    r["diff_mean"], r["diff_sem"] = d, se
    print(f"{name:32s} {np.mean(r['score']):7.1f} {d:+8.1f} ± {se:5.1f}  "
          f"{min(r['gamma']):.4f}–{max(r['gamma']):.4f}  "
          f"{min(r['lambda']):.3f}–{max(r['lambda']):.3f}")
    if name in extra:
      continue
    if best is None or d > best[1]:
      best = (r["meta_lr"], d)
  rec["chosen_meta_lr"] = best[0]
  save()
  print(f"largest mean paired difference among --meta_lrs: meta_lr = {best[0]:g}")


if __name__ == "__main__":
  app.run(main)
