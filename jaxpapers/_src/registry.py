"""The reproduction registry: each paper registers its headline claims and how to check them.

A paper's ``jaxpapers/<paper>/reproductions.py`` calls :func:`register` at import time. A
reproduction's ``run(scale, seeds, workdir)`` returns a dict of measured numbers (JSON-able);
``check(measured, scale)`` turns them into pass/fail against the claim at that scale, and
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

SCALES = ("smoke", "cpu", "full")

DEFAULT_SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "full": (0, 1, 2, 3, 4)}


@dataclasses.dataclass(frozen=True)
class Reproduction:
  """One headline claim of a paper and how we measure it.

  Attributes:
    paper: the paper's subpackage name (one of ``PAPERS``).
    name: short identifier, unique within the paper.
    claim: the paper's claim in words.
    paper_value: the paper's number (float, str, or None where the paper gives none).
    run: ``run(scale, seeds, workdir) -> dict`` of measured numbers.
    check: ``check(measured, scale) -> bool``: does ``measured`` support the claim at ``scale``?
    summary: ``summary(measured) -> str``: the report's "ours" cell.
    seeds: seeds per scale.
    scale_note: what each scale runs (size, steps), shown in the report.
  """

  paper: str
  name: str
  claim: str
  paper_value: Any
  run: Callable[[str, Sequence[int], str], Mapping[str, Any]]
  check: Callable[[Mapping[str, Any], str], bool]
  summary: Callable[[Mapping[str, Any]], str]
  seeds: Mapping[str, Sequence[int]] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SEEDS))
  scale_note: Mapping[str, str] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, dict[str, Reproduction]] = {}


def register(reproduction: Reproduction) -> Reproduction:
  """Adds ``reproduction`` to the registry (idempotent for the same paper/name)."""
  if reproduction.paper not in PAPERS:
    raise ValueError(f"paper must be one of {PAPERS}, got {reproduction.paper!r}")
  for scale in SCALES:
    if scale not in reproduction.seeds:
      raise ValueError(f"reproduction {reproduction.name!r} has no seeds for scale {scale!r}")
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
