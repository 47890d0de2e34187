"""Registered reproductions of the StarCraft defogger (Synnaeve et al. 2018) on the synthetic RTS world.

All claims come from one run of ``train_and_evaluate`` per scale (shared through a cache folder).
"""

from __future__ import annotations

import math
import os

from jaxpapers._src import stats as stats_lib
from jaxpapers._src.registry import Reproduction, register
from jaxpapers.defogger import config, study, train

BASELINES = ("input_only", "memory", "memory_tech", "previously_seen", "map_statistics")


def _results(scale, seeds, workdir):
  cfg = config.get_config(scale)
  cfg.seed = int(seeds[0])
  shared = os.path.join(os.path.dirname(workdir), f"_shared_{scale}_{cfg.seed}")
  path = os.path.join(shared, "results.json")
  if os.path.exists(path):
    import json

    with open(path, encoding="utf-8") as f:
      r = json.load(f)
    if all(m in r["horizons"][str(cfg.horizons[0])] for m in cfg.models) and "bot" in r:
      return r
  # a cache from an incompatible earlier run (other models / an older bot) is recomputed
  if os.path.exists(shared):
    import shutil

    shutil.rmtree(shared)
  return train.train_and_evaluate(cfg, shared)


def _run_beats(scale, seeds, workdir):
  r = _results(scale, seeds, workdir)
  out = {}
  for s, rows in r["horizons"].items():
    best_f1 = max(rows[b]["hid_u"] for b in BASELINES)
    best_l1 = min(rows[b]["l1_hidden"] for b in BASELINES)
    out[f"s{s}_model_hid_u"] = rows["ml"]["hid_u"]
    out[f"s{s}_baseline_hid_u"] = best_f1
    out[f"s{s}_model_l1_hidden"] = rows["ml"]["l1_hidden"]
    out[f"s{s}_baseline_l1_hidden"] = best_l1
    if "ml_no_memory" in rows:  # the reference's inputs: no memory channels, delta from the input
      out[f"s{s}_no_memory_hid_u"] = rows["ml_no_memory"]["hid_u"]
      out[f"s{s}_no_memory_l1_hidden"] = rows["ml_no_memory"]["l1_hidden"]
  out["table"] = train.format_tables(r)
  return out


def _check_beats(m, scale):
  if scale == "smoke":
    return all(0 <= v <= 1 for k, v in m.items() if k.endswith("hid_u"))
  # hid_u only: the count L1 is judged over seeds with intervals in ``count_head_l1``.
  return all(m[f"s{s}_model_hid_u"] > m[f"s{s}_baseline_hid_u"] for s in (0, 1, 3))


def _run_ablation(scale, seeds, workdir):
  r = _results(scale, seeds, workdir)
  h = r["horizons"]
  hs = config.get_config(scale).horizons
  out = {f"s{s}_ml_hid_u": h[str(s)]["ml"]["hid_u"] for s in hs}
  for s in hs:
    for name in ("ml_no_memory", "ml_no_memory_no_recurrence", "ml_no_recurrence"):
      if name in h[str(s)]:
        out[f"s{s}_{name[3:]}_hid_u"] = h[str(s)][name]["hid_u"]
  return out


def _check_ablation(m, scale):
  """Recurrence is judged without memory channels (which carry the history themselves); the
  horizon ordering on the main model."""
  if scale == "smoke":
    return all(0 <= v <= 1 for v in m.values())
  decreasing = m["s0_ml_hid_u"] >= m["s1_ml_hid_u"] >= m["s3_ml_hid_u"]
  recurrence = all(m[f"s{s}_no_memory_hid_u"] > m[f"s{s}_no_memory_no_recurrence_hid_u"]
                   for s in (0, 1, 3))
  return decreasing and recurrence


_NOTE = {"smoke": "4 games of 32 frames, 2 updates (pipeline only)",
         "cpu": "96 train / 16 val / 32 test synthetic games of 160 frames, 8×8 cells, 900 Adam updates "
                "of 4 sequences per model; bot on 128 fresh games",
         "full": "4096 train games, 50k updates"}
_SEEDS = {"smoke": (0,), "cpu": (0,), "full": (0, 1, 2)}

register(Reproduction(
    paper="defogger", name="beats_rule_based_baselines",
    claim="the conv-LSTM defogger beats the strongest rule-based baseline on hidden-unit F1 on "
          "held-out games (s = 0, 1, 3; one training seed: seeds_and_ood has 3 seeds, ml and str, "
          "and other map sizes and game lengths); count L1 is reported, judged in count_head_l1",
    paper_value="hid_u F1 and L1 better than the best baseline at every horizon (STARDATA)",
    run=_run_beats, check=_check_beats,
    summary=lambda m: "; ".join(
        f"s={s}: hid_u {m[f's{s}_model_hid_u']:.3f} vs {m[f's{s}_baseline_hid_u']:.3f}, "
        f"L1 {m[f's{s}_model_l1_hidden']:.4f} vs {m[f's{s}_baseline_l1_hidden']:.4f}"
        + (f" (no memory channels: hid_u {m[f's{s}_no_memory_hid_u']:.3f}, "
           f"L1 {m[f's{s}_no_memory_l1_hidden']:.4f})" if f"s{s}_no_memory_hid_u" in m else "")
        for s in (0, 1, 3)),
    seeds={**_SEEDS, "quick": (0,)},
    scale_note={**_NOTE, "quick": "48 train / 8 val / 16 test synthetic games of 160 frames, 600 "
                                  "Adam updates of 4 sequences, main model only (cpu: 96/16/32, 900)"},
    budget_s={"smoke": 20, "quick": 120, "cpu": 1600}))

register(Reproduction(
    paper="defogger", name="recurrence_and_horizon",
    claim="removing recurrence loses hidden-unit F1 (models on the reference's inputs, without "
          "memory channels), and F1 decreases with the horizon",
    paper_value=None,
    run=_run_ablation, check=_check_ablation,
    summary=lambda m: ", ".join(f"{k} {v:.3f}" for k, v in m.items()),
    seeds=_SEEDS, scale_note=_NOTE))


def _run_bot(scale, seeds, workdir):
  b = _results(scale, seeds, workdir)["bot"]
  out = {f"win_{k}": v for k, v in b["win_rate"].items()}
  out.update({f"target_error_{k}": v for k, v in b["target_error"].items()})
  out.update({f"composition_error_{k}": v for k, v in b["composition_error"].items()})
  out["num_games"] = b["num_games"]
  return out


def _check_bot(m, scale):
  if scale == "smoke":  # 32-frame games: decisions after the game, nobody attacks (pipeline only)
    return all(0 <= m[f"win_{k}"] <= 1 for k in ("oracle", "memory", "defogger"))
  return m["win_defogger"] > max(m["win_memory"], m["win_memory_scout"])


register(Reproduction(
    paper="defogger", name="defogger_bot_wins_more",
    claim="a rule-based bot that switches production to the counter of the enemy army the defogger "
          "predicts and attacks the start location where it predicts enemy buildings wins more "
          "often against the scripted strategies than the same bot using its memory (most units "
          "seen at once; last-seen enemy building, else an unscouted other start location)",
    paper_value="the defogger-assisted bot wins more often (paper's downstream experiment)",
    run=_run_bot, check=_check_bot,
    summary=lambda m: (f"win rate defogger {m['win_defogger']:.3f} vs memory {m['win_memory']:.3f}, "
                       f"memory+scouted-corner elimination {m['win_memory_scout']:.3f} (always "
                       f"heavy {m['win_fixed_heavy']:.3f}, scripted {m['win_scripted']:.3f}, oracle {m['win_oracle']:.3f}; army-composition L1 "
                       f"defogger {m['composition_error_defogger']:.1f} vs memory "
                       f"{m['composition_error_memory']:.1f}; {m['num_games']} games)"),
    seeds=_SEEDS, scale_note=_NOTE))


# ---------------------------------------------------------------------------------------------
# ml and str over 3 training seeds, in distribution and out of distribution.

STUDY_MARGIN = 0.03  # the acceptance: hid_u F1 above the best baseline by >= 0.03
STUDY_HORIZONS = (0, 1)
_STUDY_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2)}


def _study_config(scale):
  c = config.get_config(scale)
  c.models = {"ml": {"encoder": "ml"}, "str": {"encoder": "str"}}
  return c


def _study_conditions(scale):
  # smoke: in distribution only (each new map size or length compiles the game generator again)
  return {"in_distribution": {}} if scale == "smoke" else study.CONDITIONS


def _study(scale, seeds, workdir):
  shared = os.path.join(os.path.dirname(workdir), f"_study_{scale}")
  return study.run_study(_study_config(scale), shared, seeds,
                         conditions=_study_conditions(scale))


def _cells(summary, key):
  """``[(condition, s, model, interval)]`` of the judged cells (s = 0 and 1)."""
  return [(cond, s, name, d[key]) for cond, by_s in summary.items() for s, models in by_s.items()
          if int(s) in STUDY_HORIZONS for name, d in models.items()]


def _run_seeds_ood(scale, seeds, workdir):
  r = _study(scale, seeds, workdir)
  out = {"summary": r["summary"],
         "train": [p["train"] for p in r["per_seed"]],
         "verdicts": {f"{c}/s{s}/{n}": stats_lib.interval_verdict(iv, STUDY_MARGIN)
                      for c, s, n, iv in _cells(r["summary"], "hid_u_margin")}}
  return out


def _check_seeds_ood(m, scale):
  if scale == "smoke":
    return all(0.0 <= iv["mean"] + 1.0 <= 2.0 for *_, iv in _cells(m["summary"], "hid_u_margin"))
  v = list(m["verdicts"].values())
  if "fail" in v:
    return "fail"
  return "pass" if all(x == "pass" for x in v) else "inconclusive"


def _summary_seeds_ood(m):
  parts = []
  for cond, by_s in m["summary"].items():
    cells = []
    for s, models in by_s.items():
      if int(s) not in STUDY_HORIZONS:
        continue
      for name, d in models.items():
        iv = d["hid_u_margin"]
        cells.append(f"{name} s{s} {iv['mean']:+.3f}±{iv['se']:.3f}")
    parts.append(f"{cond}: " + ", ".join(cells))
  bad = [k for k, v in m.get("verdicts", {}).items() if v != "pass"]
  return ("hid_u F1 − best baseline, mean±se over seeds; " + "; ".join(parts)
          + (f"; not passing: {', '.join(bad)}" if bad else ""))


register(Reproduction(
    paper="defogger", name="seeds_and_ood",
    claim=f"ml and str each exceed the best rule-based baseline's hid_u F1 by >= {STUDY_MARGIN} at "
          "s = 0 and 1 (mean over 3 training seeds, paired per seed, 95 % t-interval of the margin "
          "above 0), in distribution (64² maps, 160 frames), on 48² and 96² maps and on 320-frame "
          "games (thresholds tuned in distribution; per-map statistics refitted per condition)",
    paper_value="the defogger models beat the baselines (STARDATA, one training run per model)",
    run=_run_seeds_ood, check=_check_seeds_ood, summary=_summary_seeds_ood,
    seeds=_STUDY_SEEDS,
    scale_note={"smoke": "4 games of 32 frames, 2 updates, in distribution only (pipeline only)",
                "cpu": "per seed: 96 train / 16 val / 32 test games of 160 frames on 64² maps, "
                       "900 Adam updates of 4 sequences per model; 32 test games (+96 for the map "
                       "statistics) per other condition; 3 seeds",
                "full": "4096 train games, 50k updates per model, 3 seeds"},
    budget_s={"smoke": 90}))


def _run_count_head(scale, seeds, workdir):
  r = _study(scale, seeds, workdir)
  out = {"summary": r["summary"]}
  out["verdicts"] = {f"{c}/s{s}/{n}": stats_lib.interval_verdict(iv, 0.0, higher_is_better=False)
                     for c, by_s in r["summary"].items() for s, models in by_s.items()
                     for n, d in models.items() for iv in (d["l1_hidden_diff"],)}
  return out


def _check_count_head(m, scale):
  if scale == "smoke":
    return all(math.isfinite(v["l1_hidden_diff"]["mean"]) for by_s in m["summary"].values()
               for models in by_s.values() for v in models.values())
  v = [x for k, x in m["verdicts"].items() if k.startswith("in_distribution/")]
  if "fail" in v:
    return "fail"
  return "pass" if all(x == "pass" for x in v) else "inconclusive"


def _summary_count_head(m):
  d = m["summary"]["in_distribution"]
  cells = [f"{n} s{s} {v['l1_hidden_diff']['mean']:+.5f} [{v['l1_hidden_diff']['low']:+.5f}, "
           f"{v['l1_hidden_diff']['high']:+.5f}]" for s, models in d.items()
           for n, v in models.items()]
  counts = {}
  for v in m["verdicts"].values():
    counts[v] = counts.get(v, 0) + 1
  return ("hidden-cell count L1, model − best baseline (95 % t-interval over seeds), in "
          f"distribution: {', '.join(cells)}; all conditions: "
          + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))


register(Reproduction(
    paper="defogger", name="count_head_l1",
    claim="the count head earns its place: in distribution, at s = 0, 1 and 3, ml's and str's "
          "hidden-cell count L1 is below the best rule-based baseline's with the 95 % t-interval "
          "over 3 training seeds below 0 (fail: interval above 0; a tie is inconclusive); other "
          "conditions are reported",
    paper_value="count L1 better than the baselines (STARDATA)",
    run=_run_count_head, check=_check_count_head, summary=_summary_count_head,
    seeds=_STUDY_SEEDS,
    scale_note={"smoke": "as seeds_and_ood (shares its runs)",
                "cpu": "as seeds_and_ood (shares its runs)",
                "full": "as seeds_and_ood (shares its runs)"},
    budget_s={"smoke": 10}))
