"""Out of distribution, is the defogger's loss a calibration problem? Thresholds tuned per condition.

The registered ``seeds_and_ood`` row applies the existence thresholds tuned on validation games of
the training distribution to every condition. This diagnostic re-tunes them on validation games
*of each condition* (16 fresh games, never the test games) and reports the hid_u F1 margin over
the best baseline with both choices, for the models that ``seeds_and_ood`` trained (their
checkpoints in the study folder are restored, not retrained; the test games are regenerated from
the same keys, so the in-distribution-threshold figures equal the registered row's).

  python experiments/defogger/ood_thresholds.py --study_dir=results/work/cpu/defogger/_study_cpu
"""

import json

import jax
from absl import app, flags

from jaxpapers._src import stats
from jaxpapers.defogger import baselines, dataset, loop, predict, study, thresholds
from jaxpapers.defogger import reproductions as reps

_STUDY_DIR = flags.DEFINE_string("study_dir", "results/work/cpu/defogger/_study_cpu",
                                 "Folder of a finished seeds_and_ood study (cpu scale).")
_SCALE = flags.DEFINE_string("study_scale", "cpu", "Scale whose study configuration was run.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the study to evaluate.")
_VAL_GAMES = flags.DEFINE_integer("val_games", 16, "Validation games per condition.")
_OUT = flags.DEFINE_string("out", "/tmp/defogger_ood_thresholds.json", "JSON record.")


def margins(seed: int, config, conditions, val_games: int) -> dict:
  key = jax.random.key(seed)
  n_tr, n_te = config.train_games, config.test_games
  data = dataset.build_dataset(jax.random.fold_in(key, 0),
                               n_tr + config.val_games + n_te, config)
  train_set, val_set, test_set = dataset.split_dataset(data, n_tr, config.val_games, n_te)
  map_thr = thresholds.tune_map_threshold(baselines.map_statistics(train_set), val_set)
  models = {}
  for name in ("ml", "str"):
    c = study._model_config(config, name, seed)  # noqa: SLF001 (the study's own overrides)
    module, params, _ = loop.train(c, train_set, f"{_STUDY_DIR.value}/seed{seed}_{name}",
                                   progress=False)
    models[name] = (module, params, c,
                    thresholds.tune_model_thresholds(module, params, c, val_set))
  out = {}
  for i, (cond, overrides) in enumerate(conditions.items()):
    if not overrides:
      continue
    cc = study._condition_config(config, overrides)  # noqa: SLF001
    extra = dataset.build_dataset(jax.random.fold_in(key, 1000 + i), n_tr + n_te, cc)
    stats_train, test = dataset.split_dataset(extra, n_tr, n_te)
    ood_val = dataset.build_dataset(jax.random.fold_in(key, 5000 + i), val_games, cc)
    base = baselines.baseline_predictions(test, baselines.map_statistics(stats_train), map_thr)
    out[cond] = {}
    for s_idx, s in enumerate(config.horizons):
      best = max(predict.evaluate_predictions(*p, test, s)["hid_u"] for p in base.values())
      for name, (module, params, c, (thr_u, thr_bt)) in models.items():
        tuned_u, tuned_bt = thresholds.tune_model_thresholds(module, params, c, ood_val)
        in_dist = thresholds.evaluate_with_thresholds(module, params, c, test, thr_u, thr_bt)
        retuned = thresholds.evaluate_with_thresholds(module, params, c, test, tuned_u, tuned_bt)
        out[cond][f"{name}/s{s}"] = {
            "in_dist_threshold": thr_u[s_idx], "retuned_threshold": tuned_u[s_idx],
            "margin_in_dist_threshold": in_dist[s]["hid_u"] - best,
            "margin_retuned": retuned[s]["hid_u"] - best}
  return out


def main(argv):
  del argv
  config = reps._study_config(_SCALE.value)  # noqa: SLF001 (the registered study's config)
  per_seed = [margins(int(s), config, study.CONDITIONS, _VAL_GAMES.value) for s in _SEEDS.value]
  print("| condition | model/s | margin (in-dist. threshold) | margin (re-tuned) | thresholds |")
  print("|---|---|---|---|---|")
  summary = {}
  for cond in per_seed[0]:
    for cell in per_seed[0][cond]:
      a = stats.mean_interval([p[cond][cell]["margin_in_dist_threshold"] for p in per_seed])
      b = stats.mean_interval([p[cond][cell]["margin_retuned"] for p in per_seed])
      thr = "/".join(f"{p[cond][cell]['in_dist_threshold']:.1f}→"
                     f"{p[cond][cell]['retuned_threshold']:.1f}" for p in per_seed)
      summary[f"{cond}/{cell}"] = {"in_dist": a, "retuned": b}
      print(f"| {cond} | {cell} | {a['mean']:+.3f} ± {a['se']:.3f} | {b['mean']:+.3f} ± "
            f"{b['se']:.3f} | {thr} |")
  with open(_OUT.value, "w", encoding="utf-8") as f:
    json.dump({"per_seed": per_seed, "summary": summary}, f, indent=1)
  print(f"JSON record: {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
