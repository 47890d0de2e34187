"""Data for uncertainty-aware attention: PhysioNet-2012 records and a synthetic EHR generator.

Heo et al. (NeurIPS 2018) evaluate on the PhysioNet/CinC Challenge 2012 ICU records (4000 stays,
first 48 hours) with four binary tasks:

* ``mortality`` — in-hospital death (``In-hospital_death`` of ``Outcomes-*.txt``);
* ``stay_lt_3`` — length of stay below 3 days (``Length_of_stay < 3``);
* ``cardiac`` — the patient is in a cardiac unit (ICUType 1 = coronary care or 2 = cardiac surgery
  recovery);
* ``recovery`` — the patient is recovering from surgery (ICUType 2 = cardiac surgery recovery or
  4 = surgical ICU).

ICUType defines two of the tasks, so it is never an input. The copy of set-a in ``shared/data``
lacks the ICUType descriptor line; :func:`read_icu_types` recovers it from the per-stay summary
csv (``CCU``/``CSRU``/``SICU`` one-hot, MICU = all zero).

Record format (PhysioNet): a header ``Time,Parameter,Value``, then ``hh:mm,Name,value`` lines. The
00:00 lines naming a descriptor (RecordID, Age, Gender, Height, ICUType, Weight) come first and
``-1`` marks a missing descriptor; the rest are measurements of up to 37 variables. Handling of
irregular input (each counted in :class:`LoadSummary`):

* empty file or header only — record skipped (``empty_records``);
* record without a row in the outcomes file — skipped (``missing_outcome``);
* unknown parameter name — line dropped (``unknown_parameters``);
* a descriptor repeated in the header — the first value is kept (``duplicate_descriptors``);
* descriptor ``-1`` — stored as NaN (``missing_descriptors``);
* several values of a variable in one time bin (duplicate timestamps included) — averaged
  (``merged_values``);
* measurements after ``hours`` — dropped (``late_measurements``);
* a malformed line (not three fields, bad ``hh:mm``, non-numeric value) or no RecordID — a
  ``ValueError`` naming the file and line.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import math
import os
import pathlib
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpapers._src.data import find_dataset
from jaxpapers._src.validation import check_in, check_positive
from jaxpapers.ua_attention import _compile

# The 37 time-series variables of PhysioNet 2012 (Weight is also a descriptor at 00:00).
PARAMETERS = (
    "Albumin", "ALP", "ALT", "AST", "Bilirubin", "BUN", "Cholesterol", "Creatinine", "DiasABP",
    "FiO2", "GCS", "Glucose", "HCO3", "HCT", "HR", "K", "Lactate", "Mg", "MAP", "MechVent", "Na",
    "NIDiasABP", "NIMAP", "NISysABP", "PaCO2", "PaO2", "pH", "Platelets", "RespRate", "SaO2",
    "SysABP", "Temp", "TroponinI", "TroponinT", "Urine", "WBC", "Weight",
)
DESCRIPTORS = ("RecordID", "Age", "Gender", "Height", "ICUType", "Weight")
STATIC_FEATURES = ("Age", "Gender", "Height")  # inputs; ICUType defines tasks, never an input.
ICU_TYPES = {1: "CCU", 2: "CSRU", 3: "MICU", 4: "SICU"}
TASKS = ("mortality", "stay_lt_3", "cardiac", "recovery")
RAW_DATASET = "physionet2012-raw"
SUMMARY_DATASET = "physionet2012"
_PARAM_INDEX = {p: i for i, p in enumerate(PARAMETERS)}


# ----------------------------------------------------------------------------- synthetic EHR


class SyntheticEHR(NamedTuple):
  """A synthetic EHR set whose label is caused by one variable at one visit.

  Attributes:
    x: ``(N, T, D)`` visits (zero on padding).
    mask: ``(N, T)`` bool, a prefix of ``lengths[n]`` valid visits per patient.
    y: ``(N,)`` int32 labels.
    lengths: ``(N,)`` number of visits.
    causal_visit: ``(N,)`` index of the visit that causes the label (``lengths - 1 - offset``).
    causal_feature: index of the variable that causes the label.
    prob: ``(N,)`` the true ``P(y = 1 | x)``.
  """

  x: jax.Array
  mask: jax.Array
  y: jax.Array
  lengths: jax.Array
  causal_visit: jax.Array
  causal_feature: int
  prob: jax.Array


def make_synthetic_ehr(key: jax.Array, num_patients: int = 1000, max_visits: int = 10,
                       num_features: int = 8, *, min_visits: int = 3, causal_feature: int = 0,
                       causal_offset: int = 1, signal_scale: float = 4.0) -> SyntheticEHR:
  """Patients with ``N(0, 1)`` visits whose label depends on one variable of one visit.

  ``P(y = 1) = sigmoid(signal_scale · x[t*, k*])`` with ``t* = length − 1 − causal_offset`` (counted
  back from the last visit, the direction RETAIN reads) and ``k* = causal_feature``. Patients with
  ``x[t*, k*] ≈ 0`` are ambiguous (``P ≈ ½``): a model that knows what it does not know should
  abstain on them first.

  Args:
    key: a ``jax.random.key``.
    num_patients: N.
    max_visits: T, the padded sequence length.
    num_features: D.
    min_visits: the fewest visits a patient has (must exceed ``causal_offset``).
    causal_feature: k*.
    causal_offset: visits between the causal one and the last one.
    signal_scale: how sharply the causal value decides the label.
  """
  for name, val in (("num_patients", num_patients), ("max_visits", max_visits),
                    ("num_features", num_features), ("min_visits", min_visits)):
    if not isinstance(val, int) or val < 1:
      raise ValueError(f"{name} must be a positive int, got {val!r}")
  if not 0 <= causal_offset < min_visits <= max_visits:
    raise ValueError(f"need 0 <= causal_offset < min_visits <= max_visits, got causal_offset="
                     f"{causal_offset}, min_visits={min_visits}, max_visits={max_visits}")
  if not 0 <= causal_feature < num_features:
    raise ValueError(f"causal_feature must be in [0, {num_features}), got {causal_feature}")
  check_positive(signal_scale, "signal_scale")
  if not math.isfinite(signal_scale):
    raise ValueError(f"signal_scale must be finite, got {signal_scale}")
  return _synthetic_jit(key, num_patients, max_visits, num_features, min_visits, causal_feature,
                        causal_offset, float(signal_scale))


@_compile.jit(static_argnums=(1, 2, 3, 4, 5, 6))
def _synthetic_jit(key, num_patients, max_visits, num_features, min_visits, causal_feature,
                   causal_offset, signal_scale):
  k_len, k_x, k_y = jax.random.split(key, 3)
  lengths = jax.random.randint(k_len, (num_patients,), min_visits, max_visits + 1)
  mask = jnp.arange(max_visits)[None, :] < lengths[:, None]
  x = jax.random.normal(k_x, (num_patients, max_visits, num_features)) * mask[..., None]
  causal_visit = lengths - 1 - causal_offset
  driver = x[jnp.arange(num_patients), causal_visit, causal_feature]
  prob = jax.nn.sigmoid(signal_scale * driver)
  y = jax.random.bernoulli(k_y, prob).astype(jnp.int32)
  return SyntheticEHR(x=x, mask=mask, y=y, lengths=lengths, causal_visit=causal_visit,
                      causal_feature=causal_feature, prob=prob)


# ----------------------------------------------------------------------------- PhysioNet records


class ParsedRecord(NamedTuple):
  """One ``<RecordID>.txt`` file.

  Attributes:
    record_id: the RecordID descriptor.
    descriptors: name → value for Age, Gender, Height, ICUType, Weight (NaN where missing).
    minutes: ``(M,)`` measurement times in minutes since admission.
    params: ``(M,)`` indices into ``PARAMETERS``.
    values: ``(M,)`` measured values.
    counts: irregularities seen in this file (keys of :class:`LoadSummary`).
  """

  record_id: int
  descriptors: dict
  minutes: np.ndarray
  params: np.ndarray
  values: np.ndarray
  counts: dict


def _parse_time(text: str, where: str) -> int:
  parts = text.split(":")
  if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
    raise ValueError(f"{where}: bad time {text!r}, expected hh:mm")
  return int(parts[0]) * 60 + int(parts[1])


def parse_record(text: str, name: str = "<record>") -> ParsedRecord | None:
  """Parses one PhysioNet record; returns ``None`` for an empty file or a header-only file.

  Args:
    text: the file's contents.
    name: the file name, used in error messages.

  Raises:
    ValueError: a malformed line or a record without RecordID (naming ``name`` and the line).
  """
  if not isinstance(text, str):
    raise TypeError(f"text must be str, got {type(text).__name__}")
  lines = [ln.strip() for ln in text.splitlines()]
  lines = [ln for ln in lines if ln]
  if lines and lines[0].replace(" ", "").lower() == "time,parameter,value":
    lines = lines[1:]
  if not lines:
    return None
  counts = {"unknown_parameters": 0, "duplicate_descriptors": 0, "missing_descriptors": 0}
  descriptors: dict[str, float] = {}
  minutes, params, values = [], [], []
  in_header = True
  for lineno, line in enumerate(lines, start=2):
    where = f"{name} line {lineno}"
    fields = line.split(",")
    if len(fields) != 3:
      raise ValueError(f"{where}: expected 'Time,Parameter,Value', got {line!r}")
    t = _parse_time(fields[0], where)
    param = fields[1].strip()
    try:
      value = float(fields[2])
    except ValueError:
      raise ValueError(f"{where}: value {fields[2]!r} is not a number") from None
    if not math.isfinite(value):
      raise ValueError(f"{where}: value {fields[2]!r} is not finite")
    if in_header and t == 0 and param in DESCRIPTORS:
      if param in descriptors:
        # A Weight line repeated at 00:00 after the header's Weight is a measurement.
        if param == "Weight":
          in_header = False
        else:
          counts["duplicate_descriptors"] += 1
          continue
      else:
        if value == -1 and param != "RecordID":
          counts["missing_descriptors"] += 1
          value = math.nan
        descriptors[param] = value
        continue
    in_header = False
    idx = _PARAM_INDEX.get(param)
    if idx is None:
      counts["unknown_parameters"] += 1
      continue
    minutes.append(t)
    params.append(idx)
    values.append(value)
  if "RecordID" not in descriptors:
    raise ValueError(f"{name}: no RecordID descriptor line")
  record_id = int(descriptors.pop("RecordID"))
  for d in DESCRIPTORS[1:]:
    descriptors.setdefault(d, math.nan)
  return ParsedRecord(record_id=record_id, descriptors=descriptors,
                      minutes=np.asarray(minutes, np.int32), params=np.asarray(params, np.int32),
                      values=np.asarray(values, np.float64), counts=counts)


def read_outcomes(path: str | os.PathLike) -> dict[int, dict[str, float]]:
  """Reads ``Outcomes-*.txt``: RecordID → {SAPS-I, SOFA, Length_of_stay, Survival, In-hospital_death}.

  Raises:
    ValueError: a missing column or a non-numeric entry (naming the line).
  """
  required = ("RecordID", "Length_of_stay", "In-hospital_death")
  with open(path, encoding="utf-8") as f:
    reader = csv.DictReader(f)
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
      raise ValueError(f"{path}: outcomes file lacks columns {missing}")
    out = {}
    for lineno, row in enumerate(reader, start=2):
      try:
        rec = {k: float(v) for k, v in row.items() if k != "RecordID" and v not in (None, "")}
        out[int(row["RecordID"])] = rec
      except ValueError:
        raise ValueError(f"{path} line {lineno}: non-numeric entry in {row}") from None
  return out


def read_icu_types(summary_csv: str | os.PathLike) -> dict[int, int]:
  """RecordID → ICUType (1 CCU, 2 CSRU, 3 MICU, 4 SICU) from the per-stay summary csv(.gz).

  The summary has one-hot ``CCU``, ``CSRU``, ``SICU`` columns; all zero means MICU.
  """
  opener = gzip.open if os.fspath(summary_csv).endswith(".gz") else open
  with opener(summary_csv, "rt", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    need = ("recordid", "CCU", "CSRU", "SICU")
    if any(c not in (reader.fieldnames or ()) for c in need):
      raise ValueError(f"{summary_csv}: summary csv lacks one of the columns {need}")
    out = {}
    for row in reader:
      flags = [row[c] not in ("", "0", "0.0") for c in ("CCU", "CSRU", "SICU")]
      if sum(flags) > 1:
        raise ValueError(f"{summary_csv}: record {row['recordid']} has several ICU types")
      out[int(float(row["recordid"]))] = (1 if flags[0] else 2 if flags[1] else 4 if flags[2]
                                          else 3)
  return out


def _decode_utf8(raw: bytes, where: str) -> str:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError as e:
    line = raw[: e.start].count(b"\n") + 1
    raise ValueError(f"{where}, line {line}: byte {raw[e.start:e.start + 1]!r} at offset "
                     f"{e.start} is not valid UTF-8") from None


def iter_record_texts(path: str | os.PathLike) -> Iterable[tuple[str, str]]:
  """Yields ``(file name, text)`` for every ``*.txt`` record in a ``.tar.gz`` or a folder (sorted).

  Raises:
    ValueError: a record that is not UTF-8 (naming the file or archive member and the line), or
      a truncated/corrupt archive (naming the archive and the last member read).
  """
  path = pathlib.Path(path)
  if path.is_dir():
    for p in sorted(path.glob("*.txt")):
      if not p.name.lower().startswith("outcomes"):
        yield p.name, _decode_utf8(p.read_bytes(), f"record file {p}")
  elif path.name.endswith((".tar.gz", ".tgz", ".tar")):
    # Read members in archive order (a gzip stream cannot seek backwards cheaply), then sort.
    texts, last = {}, None
    try:
      with tarfile.open(path, "r:*") as tar:
        for m in tar:
          last = m.name
          name = os.path.basename(m.name)
          if m.isfile() and name.endswith(".txt") and not name.lower().startswith("outcomes"):
            raw = tar.extractfile(m).read()
            texts[m.name] = (name, _decode_utf8(raw, f"member {m.name!r} of archive {path}"))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
      where = f"at or after member {last!r}" if last else "at its start"
      raise ValueError(f"cannot read archive {path} ({where}; truncated or corrupt?): "
                       f"{type(e).__name__}: {e}") from None
    for key in sorted(texts):
      yield texts[key]
  else:
    raise ValueError(f"path must be a folder of <RecordID>.txt files or a .tar.gz, got {path}")


class LoadSummary(NamedTuple):
  """What :func:`load_physionet` kept, skipped and repaired (see the module docstring)."""

  files: int
  loaded: int
  empty_records: int
  missing_outcome: int
  unknown_parameters: int
  duplicate_descriptors: int
  missing_descriptors: int
  merged_values: int
  late_measurements: int
  missing_icu_type: int


class PhysioNetSet(NamedTuple):
  """PhysioNet-2012 records resampled onto a regular grid of ``T = hours / resolution`` bins.

  Attributes:
    record_ids: ``(N,)`` int64.
    values: ``(N, T, V)`` float32 bin means of the ``V = 37`` ``PARAMETERS`` (NaN if unobserved).
    observed: ``(N, T, V)`` bool, whether the bin holds a measurement.
    static: ``(N, 3)`` float32 ``STATIC_FEATURES`` (NaN where missing).
    icu_type: ``(N,)`` int32 ICUType (``-1`` unknown).
    in_hospital_death: ``(N,)`` int32.
    length_of_stay: ``(N,)`` float32 days (NaN unknown).
    resolution_hours: bin width in hours.
    summary: a :class:`LoadSummary`.
  """

  record_ids: np.ndarray
  values: np.ndarray
  observed: np.ndarray
  static: np.ndarray
  icu_type: np.ndarray
  in_hospital_death: np.ndarray
  length_of_stay: np.ndarray
  resolution_hours: float
  summary: LoadSummary


def find_physionet(data_dir: str | os.PathLike | None = None) -> tuple[pathlib.Path, pathlib.Path,
                                                                       pathlib.Path | None]:
  """Locates ``(set-a.tar.gz, Outcomes-a.txt, summary csv or None)`` in ``shared/data``.

  Raises:
    jaxpapers._src.data.DatasetNotFoundError: when the raw records are absent.
  """
  raw = find_dataset(RAW_DATASET, ("set-a.tar.gz", "Outcomes-a.txt"), data_dir)
  try:
    summary = find_dataset(SUMMARY_DATASET, ("PhysionetChallenge2012-set-a.csv.gz",))
    summary_csv = summary / "PhysionetChallenge2012-set-a.csv.gz"
  except FileNotFoundError:
    summary_csv = None
  return raw / "set-a.tar.gz", raw / "Outcomes-a.txt", summary_csv


def load_physionet(records: str | os.PathLike, outcomes: str | os.PathLike, *,
                   summary_csv: str | os.PathLike | None = None, hours: int = 48,
                   resolution_hours: float = 1.0, max_records: int | None = None) -> PhysioNetSet:
  """Loads PhysioNet-2012 records into regular ``hours / resolution_hours``-bin tensors.

  Args:
    records: a folder of ``<RecordID>.txt`` files or ``set-*.tar.gz``.
    outcomes: ``Outcomes-*.txt``.
    summary_csv: optional per-stay summary csv(.gz) supplying ICUType where the record lacks it.
    hours: observation window (48 in the challenge and the paper).
    resolution_hours: bin width, 1 (hourly) or 2 (2-hourly); must divide ``hours``.
    max_records: read only the first ``max_records`` files (sorted by name), for quick runs.

  Returns:
    A :class:`PhysioNetSet`; its ``summary`` counts what was skipped or repaired.
  """
  check_positive(hours, "hours")
  check_positive(resolution_hours, "resolution_hours")
  num_bins = hours / resolution_hours
  if abs(num_bins - round(num_bins)) > 1e-9:
    raise ValueError(f"resolution_hours={resolution_hours} must divide hours={hours}")
  num_bins = int(round(num_bins))
  if max_records is not None and (not isinstance(max_records, int) or max_records < 1):
    raise ValueError(f"max_records must be a positive int or None, got {max_records!r}")
  outcome_table = read_outcomes(outcomes)
  icu_table = read_icu_types(summary_csv) if summary_csv is not None else {}
  totals = dict.fromkeys(LoadSummary._fields, 0)
  ids, vals, obs, static, icu, death, los = [], [], [], [], [], [], []
  bin_minutes = resolution_hours * 60.0
  num_params = len(PARAMETERS)
  for name, text in iter_record_texts(records):
    if max_records is not None and totals["files"] >= max_records:
      break
    totals["files"] += 1
    rec = parse_record(text, name)
    if rec is None:
      totals["empty_records"] += 1
      continue
    if rec.record_id not in outcome_table:
      totals["missing_outcome"] += 1
      continue
    for k, v in rec.counts.items():
      totals[k] += v
    keep = rec.minutes <= hours * 60
    totals["late_measurements"] += int(np.sum(~keep))
    bins = np.minimum((rec.minutes[keep] / bin_minutes).astype(np.int64), num_bins - 1)
    flat = bins * num_params + rec.params[keep]
    size = num_bins * num_params
    total = np.bincount(flat, weights=rec.values[keep], minlength=size)
    count = np.bincount(flat, minlength=size)
    totals["merged_values"] += int(np.sum(np.maximum(count - 1, 0)))
    with np.errstate(invalid="ignore", divide="ignore"):
      mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    ids.append(rec.record_id)
    vals.append(mean.reshape(num_bins, num_params).astype(np.float32))
    obs.append((count > 0).reshape(num_bins, num_params))
    static.append([rec.descriptors[s] for s in STATIC_FEATURES])
    icu_type = rec.descriptors["ICUType"]
    if math.isnan(icu_type):
      icu_type = icu_table.get(rec.record_id, -1)
    if icu_type == -1:
      totals["missing_icu_type"] += 1
    icu.append(int(icu_type))
    out = outcome_table[rec.record_id]
    death.append(int(out.get("In-hospital_death", 0)))
    stay = out.get("Length_of_stay", math.nan)
    los.append(math.nan if stay < 0 else stay)
  totals["loaded"] = len(ids)
  if not ids:
    raise ValueError(f"no usable records in {records} (summary: {LoadSummary(**totals)})")
  return PhysioNetSet(
      record_ids=np.asarray(ids, np.int64), values=np.stack(vals), observed=np.stack(obs),
      static=np.asarray(static, np.float32), icu_type=np.asarray(icu, np.int32),
      in_hospital_death=np.asarray(death, np.int32), length_of_stay=np.asarray(los, np.float32),
      resolution_hours=float(resolution_hours), summary=LoadSummary(**totals))


_CACHE_FORMAT = 2  # bump when the parsing or the stored layout changes.


def default_cache_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/jaxpapers/ua_attention`` (default ``~/.cache/jaxpapers/ua_attention``)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "jaxpapers" / "ua_attention"


def _payload_digest(arrays: dict) -> str:
  h = hashlib.sha256()
  for k in sorted(arrays):
    a = np.ascontiguousarray(arrays[k])
    h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def save_physionet(data: PhysioNetSet, path: str | os.PathLike, *, key: str = "") -> None:
  """Caches a loaded :class:`PhysioNetSet` as ``.npz`` (parsing 4000 text files takes seconds).

  Written atomically (a unique temporary file in the same folder, then ``os.replace``), with the
  cache ``key`` and a SHA-256 digest of the arrays that :func:`restore_physionet` verifies.
  """
  arrays = {k: np.asarray(getattr(data, k)) for k in PhysioNetSet._fields if k != "summary"}
  arrays["summary"] = np.asarray(data.summary, np.int64)
  meta = {"cache_key": np.asarray(key), "digest": np.asarray(_payload_digest(arrays))}
  path = pathlib.Path(path)
  fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez_compressed(f, **arrays, **meta)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(tmp)
    raise


class CacheError(ValueError):
  """A cache file that is unreadable, for other inputs, or whose contents fail verification."""


def restore_physionet(path: str | os.PathLike, *, key: str | None = None) -> PhysioNetSet:
  """Reads and verifies a cache written by :func:`save_physionet`.

  Args:
    path: the ``.npz`` file.
    key: if given, the cache key it must have been written with.

  Raises:
    CacheError: unreadable file, missing fields, another key, or a digest mismatch.
  """
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: z[k] for k in z.files if k not in ("cache_key", "digest")}
      stored_key, digest = str(z["cache_key"]), str(z["digest"])
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise CacheError(f"unreadable cache {path}: {type(e).__name__}: {e}") from None
  if key is not None and stored_key != key:
    raise CacheError(f"cache {path} was written for other inputs")
  if _payload_digest(arrays) != digest:
    raise CacheError(f"cache {path} fails its SHA-256 check (corrupt or modified)")
  missing = set(PhysioNetSet._fields) - set(arrays)
  if missing:
    raise CacheError(f"cache {path} lacks fields {sorted(missing)}")
  fields = {k: arrays[k] for k in PhysioNetSet._fields if k not in ("summary", "resolution_hours")}
  return PhysioNetSet(**fields, resolution_hours=float(arrays["resolution_hours"]),
                      summary=LoadSummary(*[int(v) for v in arrays["summary"]]))


def _hash_path(h, path) -> None:
  path = pathlib.Path(path)
  files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
  for p in files:
    h.update(f"{p.relative_to(path) if path.is_dir() else p.name}|{p.stat().st_size}|".encode())
    with open(p, "rb") as f:
      for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)


def physionet_cache_key(records, outcomes, summary_csv, hours, resolution_hours,
                        max_records) -> str:
  """SHA-256 of the inputs' contents and the loading options (the cache file's name)."""
  h = hashlib.sha256(f"v{_CACHE_FORMAT}|{hours}|{float(resolution_hours)!r}|{max_records}|"
                     .encode())
  for part in (records, outcomes, summary_csv):
    h.update(b"|none|" if part is None else b"|file|")
    if part is not None:
      _hash_path(h, part)
  return h.hexdigest()


def load_physionet_cached(records: str | os.PathLike, outcomes: str | os.PathLike, *,
                          cache_dir: str | os.PathLike | None, summary_csv=None, hours: int = 48,
                          resolution_hours: float = 1.0, max_records: int | None = None
                          ) -> PhysioNetSet:
  """:func:`load_physionet` through an ``.npz`` cache in ``cache_dir`` (``None``: no cache).

  The cache file is named by :func:`physionet_cache_key`, a SHA-256 of the contents of the
  records, outcomes and summary files and of the loading options, so changed inputs are re-read.
  It is written atomically and verified on load (key and SHA-256 of the arrays); a cache that
  fails verification is ignored (with a warning) and rewritten. Use a private folder such as
  :func:`default_cache_dir`, never a shared temporary one.
  """
  kwargs = dict(summary_csv=summary_csv, hours=hours, resolution_hours=resolution_hours,
                max_records=max_records)
  if cache_dir is None:
    return load_physionet(records, outcomes, **kwargs)
  os.makedirs(cache_dir, mode=0o700, exist_ok=True)
  key = physionet_cache_key(records, outcomes, summary_csv, hours, resolution_hours, max_records)
  path = pathlib.Path(cache_dir) / f"physionet_{key[:32]}.npz"
  if path.exists():
    try:
      return restore_physionet(path, key=key)
    except CacheError as e:
      warnings.warn(f"{e}; re-reading the records", RuntimeWarning, stacklevel=2)
  data = load_physionet(records, outcomes, **kwargs)
  save_physionet(data, path, key=key)
  return data


def task_labels(data: PhysioNetSet, task: str) -> tuple[np.ndarray, np.ndarray]:
  """``(labels, valid)`` for one of ``TASKS`` (see the module docstring for the definitions).

  ``valid`` is false where the label is undefined (unknown ICUType or length of stay).
  """
  check_in(task, "task", TASKS)
  if task == "mortality":
    return data.in_hospital_death.astype(np.int32), np.ones(len(data.record_ids), bool)
  if task == "stay_lt_3":
    valid = np.isfinite(data.length_of_stay)
    return (np.nan_to_num(data.length_of_stay, nan=99.0) < 3).astype(np.int32), valid
  valid = data.icu_type > 0
  members = (1, 2) if task == "cardiac" else (2, 4)
  return np.isin(data.icu_type, members).astype(np.int32), valid


class Normalizer(NamedTuple):
  """Per-variable standardisation fitted on the training split (observed entries only)."""

  mean: np.ndarray
  std: np.ndarray
  static_mean: np.ndarray
  static_std: np.ndarray


def _moments(x, axis):
  with warnings.catch_warnings():  # a variable never observed in training: mean 0, std 1
    warnings.simplefilter("ignore", RuntimeWarning)
    mean = np.nanmean(x, axis=axis)
    std = np.nanstd(x, axis=axis)
  mean = np.where(np.isfinite(mean), mean, 0.0)
  std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
  return mean.astype(np.float32), std.astype(np.float32)


def fit_normalizer(data: PhysioNetSet, train_index: Sequence[int]) -> Normalizer:
  """Means/stds of every variable over the observed training entries only (no test leakage)."""
  idx = np.asarray(train_index)
  if idx.ndim != 1 or idx.size == 0:
    raise ValueError("train_index must be a non-empty 1-D index array")
  vals = data.values[idx].reshape(-1, data.values.shape[-1])
  mean, std = _moments(vals, axis=0)
  smean, sstd = _moments(data.static[idx], axis=0)
  return Normalizer(mean=mean, std=std, static_mean=smean, static_std=sstd)


def make_features(data: PhysioNetSet, normalizer: Normalizer) -> np.ndarray:
  """``(N, T, 2V + 3)`` inputs: standardised values (0 = train mean where unobserved), the
  observation mask, and the standardised static descriptors repeated at each step."""
  z = (data.values - normalizer.mean) / normalizer.std
  z = np.where(data.observed, z, 0.0)
  s = np.nan_to_num((data.static - normalizer.static_mean) / normalizer.static_std, nan=0.0)
  s = np.broadcast_to(s[:, None, :], (*data.values.shape[:2], s.shape[-1]))
  return np.concatenate([z, data.observed.astype(np.float32), s], axis=-1).astype(np.float32)


def feature_names() -> tuple[str, ...]:
  """Names of the columns of :func:`make_features`."""
  return PARAMETERS + tuple(f"{p}_observed" for p in PARAMETERS) + STATIC_FEATURES


class EHRArrays(NamedTuple):
  """One split of a binary EHR task: ``x (N, T, D)``, ``mask (N, T)``, ``y (N,)``."""

  x: np.ndarray
  mask: np.ndarray
  y: np.ndarray


def split_indices(key: jax.Array, n: int, fractions: Sequence[float] = (0.7, 0.1, 0.2)
                  ) -> tuple[np.ndarray, ...]:
  """A random partition of ``range(n)`` into parts of the given fractions (last part takes the rest)."""
  if n < len(fractions):
    raise ValueError(f"n={n} is smaller than the number of parts {len(fractions)}")
  if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
    raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
  perm = np.asarray(jax.random.permutation(key, n))
  bounds = np.cumsum([int(round(f * n)) for f in fractions[:-1]])
  return tuple(np.sort(p) for p in np.split(perm, bounds))


def prepare_physionet_task(key: jax.Array, data: PhysioNetSet, task: str = "mortality",
                           fractions: Sequence[float] = (0.7, 0.1, 0.2)
                           ) -> tuple[EHRArrays, EHRArrays, EHRArrays, Normalizer]:
  """Train/validation/test splits of ``task`` with a normaliser fitted on the training split."""
  labels, valid = task_labels(data, task)
  keep = np.flatnonzero(valid)
  parts = split_indices(key, len(keep), fractions)
  parts = [keep[p] for p in parts]
  norm = fit_normalizer(data, parts[0])
  x = make_features(data, norm)
  mask = np.ones(x.shape[:2], bool)
  splits = [EHRArrays(x=x[p], mask=mask[p], y=labels[p]) for p in parts]
  return splits[0], splits[1], splits[2], norm


def write_record(path: str | os.PathLike, record_id: int, descriptors: dict,
                 measurements: Iterable[tuple[str, str, float]]) -> None:
  """Writes one record in the PhysioNet text format (for tests and examples).

  Args:
    path: output ``.txt`` path.
    record_id: RecordID.
    descriptors: name → value (``-1`` for missing), written at 00:00 after RecordID.
    measurements: ``(hh:mm, parameter, value)`` triples.
  """
  buf = io.StringIO()
  buf.write("Time,Parameter,Value\n")
  buf.write(f"00:00,RecordID,{record_id}\n")
  for k, v in descriptors.items():
    buf.write(f"00:00,{k},{v}\n")
  for t, p, v in measurements:
    buf.write(f"{t},{p},{v}\n")
  pathlib.Path(path).write_text(buf.getvalue(), encoding="utf-8")
