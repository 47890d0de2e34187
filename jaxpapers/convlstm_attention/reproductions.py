"""Registered reproductions of Zhang et al. (2018) on the synthetic gesture task.

All three claims come from one training run of every variant and control (shared between the
reproductions through a cache folder, so the main job trains each model once per scale).
"""

from __future__ import annotations

import os

import jax
import numpy as np

from jaxpapers._src.registry import Reproduction, register
from jaxpapers.convlstm_attention import cells, config, data, train

_CHANCE = 1.0 / len(data.CLASSES)
# Exact, from the reference's layer shapes at C_in = C = 256, k = 3.
PAPER_PARAM_RATIO = 529_920 / 4_719_616


def _results(scale, seeds, workdir):
  cfg = config.get_config(scale)
  cfg.seeds = list(seeds)
  shared = os.path.join(os.path.dirname(workdir), f"_shared_{scale}_{'-'.join(map(str, seeds))}")
  return train.train_and_evaluate(cfg, shared)


def _acc(results, name):
  return float(np.mean(results[name]["test_accuracy"])) if name in results else float("nan")


def _cell_params(variant, c_in, c):
  shapes = jax.eval_shape(lambda k: cells.init_cell(k, variant, c_in, c), jax.random.key(0))
  return cells.count_params(shapes)


def _run_a(scale, seeds, workdir):
  r = _results(scale, seeds, workdir)
  cfg = config.get_config(scale)
  c_in, c = cfg.stem_channels[-1], cfg.lstm_channels
  return {
      "acc_convlstm": _acc(r, "convlstm"), "acc_a": _acc(r, "a"),
      "param_ratio_ours": _cell_params("a", c_in, c) / _cell_params("convlstm", c_in, c),
      "param_ratio_256": _cell_params("a", 256, 256) / _cell_params("convlstm", 256, 256),
      "steps": cfg.num_steps, "table": train.format_table(r),
  }


def _check_a(m, scale):
  if scale == "smoke":  # the pipeline ran and the parameter claim holds; accuracy is untrained
    # (4-channel smoke cells are too narrow for the ratio: FC gates dominate there.)
    return m["param_ratio_256"] <= 0.15 and np.isfinite(m["acc_a"])
  ratio_ok = m["param_ratio_256"] <= 0.15 and m["param_ratio_ours"] <= 0.15
  learned = m["acc_convlstm"] >= 2 * _CHANCE  # a tie at chance level says nothing
  return ratio_ok and learned and m["acc_a"] >= m["acc_convlstm"] - 0.02


def _run_attention(scale, seeds, workdir):
  r = _results(scale, seeds, workdir)
  out = {"acc_a": _acc(r, "a")}
  for v in ("b", "c", "d", "new"):
    out[f"acc_{v}"] = _acc(r, v)
  return out


def _check_attention(m, scale):
  accs = [m[f"acc_{v}"] for v in ("b", "c", "d") if np.isfinite(m[f"acc_{v}"])]
  if scale == "smoke":
    return np.isfinite(m["acc_a"])
  return len(accs) == 3 and m["acc_a"] >= 2 * _CHANCE and max(accs) <= m["acc_a"] + 0.02


def _run_controls(scale, seeds, workdir):
  r = _results(scale, seeds, workdir)
  return {"acc_a": _acc(r, "a"), "acc_order_free": _acc(r, "order_free"),
          "acc_single_frame": _acc(r, "single_frame"), "chance": 1.0 / config.get_config(scale).num_classes}


def _check_controls(m, scale):
  if scale == "smoke":
    return np.isfinite(m["acc_a"])
  return max(m["acc_order_free"], m["acc_single_frame"]) <= m["acc_a"] - 0.2


_NOTE = {"smoke": "variant (a) only, 8×8 clips of 6 frames, 2 steps (pipeline only)",
         "cpu": "synthetic 12×24×24 clips, 16-channel cells, 3000 Adam steps of 8 clips, 3 seeds (mean)",
         "full": "reference network, 16×112×112 clips, 100k SGD steps"}
_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2)}

register(Reproduction(
    paper="convlstm_attention", name="gates_without_convolutions",
    claim="(a) (no convolutions in the gates) is within 2 points of ConvLSTM with ≤15% of its cell parameters",
    paper_value=f"param ratio {PAPER_PARAM_RATIO:.3f}; accuracy on par (Jester, IsoGD)",
    run=_run_a, check=_check_a,
    summary=lambda m: (f"acc (a) {100 * m['acc_a']:.1f}% vs ConvLSTM {100 * m['acc_convlstm']:.1f}%; "
                       f"params {m['param_ratio_ours']:.3f} (ours), {m['param_ratio_256']:.3f} (256 ch)"),
    seeds=_SEEDS, scale_note=_NOTE))

register(Reproduction(
    paper="convlstm_attention", name="attention_does_not_help",
    claim="attention on the input (b) or in the input/output gates (c)/(d) is no better than (a)",
    paper_value="(b)/(c)/(d) ≤ (a)",
    run=_run_attention, check=_check_attention,
    summary=lambda m: ", ".join(f"{v} {100 * m[f'acc_{v}']:.1f}%" for v in ("a", "b", "c", "d")
                                + ("new",) * ("acc_new" in m)),
    seeds=_SEEDS, scale_note=_NOTE))

register(Reproduction(
    paper="convlstm_attention", name="order_matters",
    claim="ConvLSTM fuses over time: order-free and single-frame controls fall far below (≥20 points)",
    paper_value=None,
    run=_run_controls, check=_check_controls,
    summary=lambda m: (f"(a) {100 * m['acc_a']:.1f}%, order-free {100 * m['acc_order_free']:.1f}%, "
                       f"single-frame {100 * m['acc_single_frame']:.1f}% (chance {100 * m['chance']:.0f}%)"),
    seeds=_SEEDS, scale_note=_NOTE))

# Cell parameter counts at C_in = C = 256, k = 3, from the reference implementation's layer shapes
# (ConvLSTM and variants (a)-(d)); (c) and (d) share their count.
REFERENCE_CELL_PARAMS = {"convlstm": 4_719_616, "a": 529_920, "b": 668_160, "c": 602_368,
                         "d": 602_368}


def _run_cell_params(scale, seeds, workdir):
  del scale, seeds, workdir
  return {f"params_{v}": int(_cell_params(v, 256, 256)) for v in REFERENCE_CELL_PARAMS}


def _check_cell_params(m, scale):
  del scale
  return all(m[f"params_{v}"] == n for v, n in REFERENCE_CELL_PARAMS.items())


register(Reproduction(
    paper="convlstm_attention", name="gate_parameters",
    claim="removing the convolutions from the gates (a) cuts the cell to ~11% of ConvLSTM's "
          "parameters; the attention variants (b)-(d) add little on top (cell counts equal the "
          "reference architecture's at 256 channels)",
    paper_value="ConvLSTM 4,719,616; (a) 529,920; (b) 668,160; (c)/(d) 602,368 (reference shapes)",
    run=_run_cell_params, check=_check_cell_params,
    summary=lambda m: (f"ConvLSTM {m['params_convlstm']:,}; (a) {m['params_a']:,} "
                       f"({m['params_a'] / m['params_convlstm']:.3f}×); (b) {m['params_b']:,}; "
                       f"(c) {m['params_c']:,}; (d) {m['params_d']:,}"),
    seeds={"smoke": (0,), "quick": (0,), "cpu": (0,), "full": (0,)},
    scale_note={s: "cell parameter counts at C_in = C = 256, k = 3 (no training); the accuracy "
                   "claims are checked by the cpu tier" for s in ("smoke", "quick", "cpu", "full")},
    budget_s={"smoke": 5, "quick": 5, "cpu": 5}))
