"""The reproduction registry: each paper registers its headline claims and how to check them.

A paper's ``jaxpapers/<paper>/reproductions.py`` calls :func:`register` at import time. A
reproduction's ``run(scale, seeds, workdir)`` returns a dict of measured numbers (JSON-able);
``check(measured, scale)`` turns them into pass/fail/inconclusive against the claim at that scale, and
``summary(measured)`` into the short "ours" cell of the report.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PAPERS = (
    "pipe_sgd",
    "robust_mf",
    "volume_sampling",
    "dmgan",
    "defogger",
    "convlstm_attention",
    "ua_attention",
    "spectral_signatures",
    "bbmm",
    "meta_gradient",
)

SCALES = ("smoke", "quick", "cpu", "full")

# What each tier is for and how long all papers take on 2 idle CPU cores (``--help`` prints this).
TIERS = {
    "smoke": "pipeline check only: every row runs tiny and its verdict is 'ran' (~3 min)",
    "quick": "the headline claims that can be tested honestly in ~2 min per paper (<= 20 min)",
    "cpu": "every registered claim at CPU scale, several seeds (hours)",
    "full": "the papers' own scale (accelerator; days on a CPU)",
}

# Scales a reproduction must declare seeds for; ``quick`` is opt-in (rows without it are checked
# only by the ``cpu`` tier, and the quick report says so).
REQUIRED_SCALES = ("smoke", "cpu", "full")

DEFAULT_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}

VERDICTS = ("pass", "fail", "inconclusive", "skipped", "ran", "error", "interrupted", "cpu only")

# Where each real data set comes from (shown when a row is skipped for want of it).
DATA_SOURCES = {
    "movielens-100k": "GroupLens MovieLens-100K (u.data, u1.base, u1.test), grouplens.org",
    "libsvm-regression": "LIBSVM regression data (housing_scale, cpusmall, ...), "
                         "csie.ntu.edu.tw/~cjlin/libsvmtools/datasets",
    "uci-gp-mat": "UCI regression sets as .mat (pol, elevators, kin40k, ...), from the GPyTorch/"
                  "Wilson et al. benchmark copies",
    "physionet2012-raw": "PhysioNet Challenge 2012 set-a.tar.gz + Outcomes-a.txt, physionet.org",
    "physionet2012": "PhysioNet Challenge 2012 per-stay summaries (csv.gz), physionet.org",
    "cifar10-jpeg": "CIFAR-10 train/test as 32x32 JPEGs in one tar.gz, cs.toronto.edu/~kriz",
}


@dataclasses.dataclass(frozen=True)
class Reproduction:
  """One headline claim of a paper and how we measure it.

  Attributes:
    paper: the paper's subpackage name (one of ``PAPERS``).
    name: short identifier, unique within the paper.
    claim: the paper's claim in words.
    paper_value: the paper's number (float, str, or None where the paper gives none).
    run: ``run(scale, seeds, workdir) -> dict`` of measured numbers.
    check: ``check(measured, scale) -> bool | str``: does ``measured`` support the claim at
      ``scale``? ``True``/``False`` or one of ``"pass"``, ``"fail"``, ``"inconclusive"`` (a
      difference inside the noise, or every method at the ceiling or at chance).
    summary: ``summary(measured) -> str``: the report's "ours" cell.
    seeds: seeds per scale. A ``quick`` entry puts the row in the quick tier.
    scale_note: what each scale runs (size, steps), shown in the report.
    budget_s: expected seconds per scale on 2 idle CPU cores (the plan and the progress bar's ETA).
    run_as: the scale passed to ``run``/``check`` for a tier, e.g. ``{"quick": "cpu"}`` for a row
      whose cpu-scale run already fits the quick tier's budget.
    datasets: real data sets the row needs (folders of ``../shared/data``); without them the row's
      verdict is ``skipped``.
  """

  paper: str
  name: str
  claim: str
  paper_value: Any
  run: Callable[[str, Sequence[int], str], Mapping[str, Any]]
  check: Callable[[Mapping[str, Any], str], bool | str]
  summary: Callable[[Mapping[str, Any]], str]
  seeds: Mapping[str, Sequence[int]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SEEDS))
  scale_note: Mapping[str, str] = dataclasses.field(default_factory=dict)
  budget_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
  run_as: Mapping[str, str] = dataclasses.field(default_factory=dict)
  datasets: Sequence[str] = ()

  def __post_init__(self):
    # A tier that runs another scale's setting (run_as) takes that scale's seeds unless it has its own.
    missing = {s: tuple(self.seeds[t]) for s, t in self.run_as.items()
               if s not in self.seeds and t in self.seeds}
    if missing:
      object.__setattr__(self, "seeds", {**self.seeds, **missing})

  def in_tier(self, scale: str) -> bool:
    """Whether this row runs at ``scale`` (every row runs at smoke, cpu and full)."""
    return scale in self.seeds

  def run_scale(self, scale: str) -> str:
    """The scale ``run`` and ``check`` see when the tier ``scale`` runs this row."""
    return self.run_as.get(scale, scale)


_REGISTRY: dict[str, dict[str, Reproduction]] = {}


def register(reproduction: Reproduction) -> Reproduction:
  """Adds ``reproduction`` to the registry (idempotent for the same paper/name)."""
  if reproduction.paper not in PAPERS:
    raise ValueError(f"paper must be one of {PAPERS}, got {reproduction.paper!r}")
  for scale in REQUIRED_SCALES:
    if scale not in reproduction.seeds:
      raise ValueError(f"reproduction {reproduction.name!r} has no seeds for scale {scale!r}")
  for scale, target in reproduction.run_as.items():
    if scale not in SCALES or target not in SCALES:
      raise ValueError(f"reproduction {reproduction.name!r}: run_as must map scales to scales "
                       f"({SCALES}), got {scale!r} -> {target!r}")
  for name in reproduction.datasets:
    if name not in DATA_SOURCES:
      raise ValueError(f"reproduction {reproduction.name!r}: unknown dataset {name!r}; "
                       f"known: {sorted(DATA_SOURCES)}")
  _REGISTRY.setdefault(reproduction.paper, {})[reproduction.name] = reproduction
  return reproduction


def available_papers() -> list[str]:
  """Papers whose subpackage exists and has a ``reproductions`` module."""
  out = []
  for paper in PAPERS:
    if importlib.util.find_spec(f"jaxpapers.{paper}") is None:
      continue
    if importlib.util.find_spec(f"jaxpapers.{paper}.reproductions") is not None:
      out.append(paper)
  return out


def reproductions(paper: str) -> list[Reproduction]:
  """Imports ``jaxpapers.<paper>.reproductions`` and returns what it registered."""
  if paper not in PAPERS:
    raise ValueError(f"paper must be one of {PAPERS}, got {paper!r}")
  importlib.import_module(f"jaxpapers.{paper}.reproductions")
  return list(_REGISTRY.get(paper, {}).values())
