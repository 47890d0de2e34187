"""PhysioNet-2012 loader and synthetic EHR generator of uncertainty-aware attention (Heo et al.)."""

import gzip
import math
import tarfile

import jax
import numpy as np
import pytest

from jaxpapers._src.data import has_dataset
from jaxpapers.ua_attention import data as d

DESC = {"Age": 54, "Gender": 0, "Height": -1, "ICUType": 4, "Weight": 80.0}


def _write_outcomes(path, rows):
  lines = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
  lines += [f"{r},10,3,{los},-1,{death}" for r, los, death in rows]
  path.write_text("\n".join(lines) + "\n")


def _write_set(folder):
  folder.mkdir()
  # Record 1: duplicate timestamps (HR twice at 00:30), two values in one 2-h bin, an unknown
  # parameter, a late measurement, a missing descriptor (Height = -1), a repeated Age line.
  d.write_record(folder / "1.txt", 1, {"Age": 54, "Age ": 0, "Gender": 0, "Height": -1,
                                       "ICUType": 4, "Weight": 80.0},
                 [("00:30", "HR", 80), ("00:30", "HR", 90), ("01:10", "HR", 100),
                  ("03:00", "Temp", 37.5), ("05:00", "Foo", 1), ("47:59", "GCS", 15),
                  ("49:00", "HR", 70), ("00:45", "Weight", 81.0)])
  # Record 2: no outcome row.
  d.write_record(folder / "2.txt", 2, DESC, [("00:10", "HR", 60)])
  # Record 3: ICUType missing in the file (recovered from the summary csv), died, short stay.
  d.write_record(folder / "3.txt", 3, {"Age": 80, "Gender": 1, "Height": 170, "Weight": -1},
                 [("10:00", "Lactate", 4.0)])
  (folder / "4.txt").write_text("")  # empty file
  (folder / "5.txt").write_text("Time,Parameter,Value\n")  # header only
  return folder


@pytest.fixture()
def small_set(tmp_path):
  folder = _write_set(tmp_path / "set-x")
  _write_outcomes(tmp_path / "Outcomes-x.txt", [(1, 5, 0), (3, 2, 1), (9, 4, 0)])
  with gzip.open(tmp_path / "summary.csv.gz", "wt") as f:
    f.write("recordid,In-hospital_death,CCU,CSRU,SICU\n1,0,0,0,1\n3,1,1,0,0\n")
  return folder, tmp_path / "Outcomes-x.txt", tmp_path / "summary.csv.gz"


def test_parse_record_header_duplicates_and_unknowns(tmp_path):
  folder = _write_set(tmp_path / "s")
  text = (folder / "1.txt").read_text().replace("Age ,", "Age,")
  rec = d.parse_record(text, "1.txt")
  assert rec.record_id == 1 and rec.descriptors["Age"] == 54  # first Age wins
  assert math.isnan(rec.descriptors["Height"]) and rec.descriptors["ICUType"] == 4
  assert rec.counts == {"unknown_parameters": 1, "duplicate_descriptors": 1,
                        "missing_descriptors": 1}
  names = [d.PARAMETERS[i] for i in rec.params]
  assert names == ["HR", "HR", "HR", "Temp", "GCS", "HR", "Weight"]
  assert rec.minutes.tolist() == [30, 30, 70, 180, 2879, 2940, 45]
  assert d.parse_record("", "e.txt") is None
  assert d.parse_record("Time,Parameter,Value\n", "h.txt") is None


def test_parse_record_errors_name_file_and_line():
  with pytest.raises(ValueError, match=r"bad.txt line 3: .*hh:mm"):
    d.parse_record("Time,Parameter,Value\n00:00,RecordID,5\n1:2:3,HR,4\n", "bad.txt")
  with pytest.raises(ValueError, match=r"bad.txt line 2: value 'x'"):
    d.parse_record("Time,Parameter,Value\n00:00,RecordID,x\n", "bad.txt")
  with pytest.raises(ValueError, match=r"bad.txt line 2: expected"):
    d.parse_record("Time,Parameter,Value\n00:00,HR\n", "bad.txt")
  with pytest.raises(ValueError, match="no RecordID"):
    d.parse_record("Time,Parameter,Value\n00:00,HR,5\n", "bad.txt")


@pytest.mark.parametrize("as_tar", [False, True])
def test_load_physionet_resamples_and_counts(small_set, tmp_path, as_tar):
  folder, outcomes, summary = small_set
  (folder / "1.txt").write_text((folder / "1.txt").read_text().replace("Age ,", "Age,"))
  source = folder
  if as_tar:
    source = tmp_path / "set-x.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
      tar.add(folder, arcname="set-x")
  ds = d.load_physionet(source, outcomes, summary_csv=summary, resolution_hours=2)
  s = ds.summary
  assert (s.files, s.loaded, s.empty_records, s.missing_outcome) == (5, 2, 2, 1)
  assert (s.unknown_parameters, s.duplicate_descriptors, s.late_measurements) == (1, 1, 1)
  assert s.missing_descriptors == 2 and s.missing_icu_type == 0
  assert s.merged_values == 2  # three HR values in bin 0 -> 2 merged
  assert ds.values.shape == (2, 24, 37) and ds.observed.shape == (2, 24, 37)
  assert ds.record_ids.tolist() == [1, 3]
  hr, temp, gcs = (d.PARAMETERS.index(p) for p in ("HR", "Temp", "GCS"))
  np.testing.assert_allclose(ds.values[0, 0, hr], 90.0)  # mean of 80, 90, 100
  assert ds.values[0, 1, temp] == np.float32(37.5) and ds.values[0, 23, gcs] == 15
  assert ds.observed[0].sum() == 4 and np.isnan(ds.values[0, 1, hr])
  np.testing.assert_allclose(ds.static[0], [54, 0, np.nan])
  assert ds.icu_type.tolist() == [4, 1]  # record 3's from the summary csv
  hourly = d.load_physionet(source, outcomes, summary_csv=summary, resolution_hours=1)
  assert hourly.values.shape == (2, 48, 37)
  np.testing.assert_allclose(hourly.values[0, 0, hr], 85.0)
  np.testing.assert_allclose(hourly.values[0, 1, hr], 100.0)


def test_tasks_normaliser_and_features(small_set, tmp_path):
  folder, outcomes, summary = small_set
  ds = d.load_physionet(folder, outcomes, summary_csv=summary)
  assert d.task_labels(ds, "mortality")[0].tolist() == [0, 1]
  assert d.task_labels(ds, "stay_lt_3")[0].tolist() == [0, 1]
  assert d.task_labels(ds, "cardiac")[0].tolist() == [0, 1]  # SICU, CCU
  assert d.task_labels(ds, "recovery")[0].tolist() == [1, 0]
  no_icu = d.load_physionet(folder, outcomes)
  labels, valid = d.task_labels(no_icu, "cardiac")
  assert valid.tolist() == [True, False] and no_icu.summary.missing_icu_type == 1
  with pytest.raises(ValueError, match="task"):
    d.task_labels(ds, "sepsis")
  norm = d.fit_normalizer(ds, [0])
  hr = d.PARAMETERS.index("HR")
  np.testing.assert_allclose(norm.mean[hr], np.mean([85.0, 100.0]))  # train record only
  x = d.make_features(ds, norm)
  assert x.shape == (2, 48, 2 * 37 + 3)
  assert x[1, 0, hr] == 0.0 and x[1, 0, 37 + hr] == 0.0  # unobserved: mean-imputed, mask 0
  np.testing.assert_allclose(x[0, 0, hr], (85.0 - 92.5) / 7.5, rtol=1e-6)
  assert len(d.feature_names()) == x.shape[-1]


def test_cache_round_trip(small_set, tmp_path):
  folder, outcomes, summary = small_set
  a = d.load_physionet_cached(folder, outcomes, cache_dir=tmp_path / "c", summary_csv=summary)
  b = d.load_physionet_cached(folder, outcomes, cache_dir=tmp_path / "c", summary_csv=summary)
  assert len(list((tmp_path / "c").glob("*.npz"))) == 1
  for f in d.PhysioNetSet._fields:
    np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))


def test_cache_is_content_keyed_atomic_and_verified(small_set, tmp_path, monkeypatch):
  folder, outcomes, summary = small_set
  cache = tmp_path / "c"
  a = d.load_physionet_cached(folder, outcomes, cache_dir=cache, summary_csv=summary)
  (path,) = cache.glob("*.npz")
  key = d.physionet_cache_key(folder, outcomes, summary, 48, 1.0, None)
  assert key[:32] in path.name and not list(cache.glob("*.tmp"))
  # The name depends on the contents, not on names/mtimes: changing a value changes the key.
  text = (folder / "1.txt").read_text()
  (folder / "1.txt").write_text(text.replace("HR,100", "HR,101"))
  assert d.physionet_cache_key(folder, outcomes, summary, 48, 1.0, None) != key
  (folder / "1.txt").write_text(text)
  assert d.physionet_cache_key(folder, outcomes, summary, 48, 1.0, None) == key
  # A tampered cache fails verification, is ignored with a warning and rewritten.
  with np.load(path) as z:
    arrays = dict(z)
  arrays["in_hospital_death"] = 1 - arrays["in_hospital_death"]
  np.savez_compressed(path, **arrays)
  with pytest.raises(d.CacheError, match="SHA-256"):
    d.restore_physionet(path)
  with pytest.warns(RuntimeWarning, match="SHA-256"):
    b = d.load_physionet_cached(folder, outcomes, cache_dir=cache, summary_csv=summary)
  np.testing.assert_array_equal(b.in_hospital_death, a.in_hospital_death)
  d.restore_physionet(path, key=key)  # rewritten and valid again
  with pytest.raises(d.CacheError, match="other inputs"):
    d.restore_physionet(path, key="0" * 64)
  path.write_bytes(b"garbage")
  with pytest.raises(d.CacheError, match="unreadable"):
    d.restore_physionet(path)
  # The default cache folder is per user, not the shared temp folder.
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert d.default_cache_dir() == tmp_path / "xdg" / "jaxpapers" / "ua_attention"


def test_non_utf8_record_and_truncated_archive_name_the_source(small_set, tmp_path):
  folder, outcomes, _ = small_set
  raw = (folder / "1.txt").read_bytes()
  lines = raw.split(b"\n")
  lines[3] = lines[3] + b"\xff"
  (folder / "1.txt").write_bytes(b"\n".join(lines))
  with pytest.raises(ValueError, match=r"1\.txt, line 4: byte b'\\xff'"):
    d.load_physionet(folder, outcomes)
  tar_path = tmp_path / "set.tar.gz"
  with tarfile.open(tar_path, "w:gz") as tar:
    tar.add(folder, arcname="set-x")
  with pytest.raises(ValueError, match=r"member 'set-x/1\.txt' of archive .*set\.tar\.gz, line 4"):
    list(d.iter_record_texts(tar_path))
  (folder / "1.txt").write_bytes(raw)
  big = tmp_path / "big"
  big.mkdir()
  rng = np.random.default_rng(0)
  for i in range(20):  # incompressible members so that half the archive loses members
    (big / f"{i}.txt").write_text("Time,Parameter,Value\n" + "".join(
        f"00:{j % 60:02d},HR,{v:.6f}\n" for j, v in enumerate(rng.normal(size=200))))
  full = tmp_path / "full.tar.gz"
  with tarfile.open(full, "w:gz") as tar:
    tar.add(big, arcname="big")
  cut = tmp_path / "cut.tar.gz"
  cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
  with pytest.raises(ValueError, match=r"cannot read archive .*cut\.tar\.gz \(at or after member"):
    list(d.iter_record_texts(cut))


def test_loader_bad_arguments(small_set, tmp_path):
  folder, outcomes, _ = small_set
  with pytest.raises(ValueError, match="resolution_hours"):
    d.load_physionet(folder, outcomes, resolution_hours=5)
  with pytest.raises(ValueError, match="path must be"):
    list(d.iter_record_texts(tmp_path / "x.zip"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(ValueError, match="no usable records"):
    d.load_physionet(empty, outcomes)
  (tmp_path / "bad_out.txt").write_text("RecordID,SOFA\n1,2\n")
  with pytest.raises(ValueError, match="lacks columns"):
    d.read_outcomes(tmp_path / "bad_out.txt")


def test_synthetic_ehr_structure_and_signal():
  s = d.make_synthetic_ehr(jax.random.key(0), 2000, 7, 5, min_visits=3, causal_feature=2,
                           causal_offset=1, signal_scale=4.0)
  x, mask, y = map(np.asarray, (s.x, s.mask, s.y))
  lengths = np.asarray(s.lengths)
  assert x.shape == (2000, 7, 5) and lengths.min() >= 3 and lengths.max() <= 7
  np.testing.assert_array_equal(mask, np.arange(7)[None] < lengths[:, None])
  assert np.all(x[~mask] == 0)
  np.testing.assert_array_equal(np.asarray(s.causal_visit), lengths - 2)
  driver = x[np.arange(2000), lengths - 2, 2]
  np.testing.assert_allclose(np.asarray(s.prob), 1 / (1 + np.exp(-4 * driver)), rtol=1e-5)
  assert np.corrcoef(driver, y)[0, 1] > 0.6
  assert abs(np.corrcoef(x[np.arange(2000), lengths - 1, 2], y)[0, 1]) < 0.1  # wrong visit
  with pytest.raises(ValueError, match="causal_offset"):
    d.make_synthetic_ehr(jax.random.key(0), 10, 5, 3, min_visits=2, causal_offset=2)
  with pytest.raises(ValueError, match="causal_feature"):
    d.make_synthetic_ehr(jax.random.key(0), 10, 5, 3, causal_feature=3)


def test_split_indices_partition():
  parts = d.split_indices(jax.random.key(0), 103, (0.7, 0.1, 0.2))
  assert [len(p) for p in parts] == [72, 10, 21]
  np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(103))
  with pytest.raises(ValueError, match="fractions"):
    d.split_indices(jax.random.key(0), 10, (0.5, 0.6))


@pytest.mark.skipif(not has_dataset(d.RAW_DATASET, ("set-a.tar.gz", "Outcomes-a.txt")),
                    reason="PhysioNet-2012 raw set-a not found in ../shared/data")
def test_real_physionet_set_a_first_records():
  records, outcomes, summary = d.find_physionet()
  ds = d.load_physionet(records, outcomes, summary_csv=summary, max_records=30)
  assert ds.values.shape == (30, 48, 37) and ds.summary.loaded == 30
  assert ds.record_ids[0] == 132539 and np.all(np.diff(ds.record_ids) > 0)
  hr = d.PARAMETERS.index("HR")
  assert ds.observed[:, :, hr].mean() > 0.5
  observed_hr = ds.values[:, :, hr][ds.observed[:, :, hr]]
  assert 20 < observed_hr.mean() < 200
  if summary is not None:
    assert np.all(np.isin(ds.icu_type, [1, 2, 3, 4]))
