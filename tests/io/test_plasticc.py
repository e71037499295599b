"""PLAsTiCC reader: counts, labels, metadata join, no truth columns, bad files.

The committed fixture holds 98 real PLAsTiCC training objects (7 per class, see
``tests/data/README.md``); the full training set is used only by ``shared`` tests.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from astrot2.errors import AlertFormatError
from astrot2.io.plasticc import (
    METADATA_WHITELIST,
    is_plasticc_csv,
    read_plasticc,
    read_plasticc_metadata,
)
from astrot2.surveys import LSST

CLASSES = [6, 15, 16, 42, 52, 53, 62, 64, 65, 67, 88, 90, 92, 95]
N_OBJECTS, N_OBS = 98, 30428  # what the fixture holds (checked against the raw lines below)
LC_HEADER = "object_id,mjd,passband,flux,flux_err,detected_bool"


@pytest.fixture(scope="module")
def lc_path(fixtures) -> Path:
    return fixtures / "plasticc" / "plasticc_lc_sample.csv.gz"


@pytest.fixture(scope="module")
def meta_path(fixtures) -> Path:
    return fixtures / "plasticc" / "plasticc_meta_sample.csv"


@pytest.fixture(scope="module")
def sample(lc_path, meta_path):
    return read_plasticc(lc_path, meta_path)


@pytest.fixture(scope="module")
def raw_rows(lc_path) -> np.ndarray:
    """The fixture's light-curve rows parsed independently: shape (n_obs, 6)."""
    lines = gzip.decompress(lc_path.read_bytes()).decode().splitlines()
    assert lines[0] == LC_HEADER
    return np.array([[float(v) for v in line.split(",")] for line in lines[1:]])


@pytest.fixture(scope="module")
def raw_meta(meta_path) -> dict[str, np.ndarray]:
    """The fixture's metadata parsed independently, every column as text."""
    lines = meta_path.read_text().splitlines()
    header = lines[0].split(",")
    cells = np.array([line.split(",") for line in lines[1:]], dtype=object)
    return {name: np.array([c.strip() for c in cells[:, j]]) for j, name in enumerate(header)}


def write_csv(path: Path, header: str, rows: list[str], gz: bool = False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# ------------------------------------------------------------------ the fixture
def test_fixture_counts(sample, raw_rows, raw_meta):
    assert len(sample) == N_OBJECTS == len(np.unique(raw_rows[:, 0])) == len(raw_meta["target"])
    assert len(sample.time) == N_OBS == len(raw_rows)
    assert sample.survey == LSST
    assert list(sample.alert_id) == list(sample.object_id)
    assert list(sample.object_id) == [str(i) for i in np.unique(raw_rows[:, 0].astype(int))]
    assert np.all(sample.n_dropped == 0) and np.all(sample.ok)


def test_observations_match_the_raw_rows(sample, raw_rows):
    for lc in sample:
        rows = raw_rows[raw_rows[:, 0] == int(lc.object_id)]
        order = np.lexsort((rows[:, 1],))  # stable sort by time, as the batch is
        np.testing.assert_array_equal(lc.time, rows[order, 1])
        np.testing.assert_array_equal(lc.band, rows[order, 2])
        np.testing.assert_array_equal(lc.flux, rows[order, 3])
        np.testing.assert_array_equal(lc.flux_err, rows[order, 4])
        np.testing.assert_array_equal(lc.detected, rows[order, 5] == 1)


def test_time_ascending_and_bands_in_range(sample):
    owner = sample.owner
    same = owner[1:] == owner[:-1]
    assert np.all(np.diff(sample.time)[same] >= 0)
    assert sample.band.dtype == np.int8
    assert set(np.unique(sample.band)) == set(range(6))


def test_targets_and_metadata_follow_their_objects(sample, raw_meta):
    assert sorted(np.unique(sample.extra["target"])) == CLASSES
    assert np.all(np.bincount(np.searchsorted(CLASSES, sample.extra["target"])) == 7)
    row = {oid: i for i, oid in enumerate(raw_meta["object_id"])}
    idx = np.array([row[o] for o in sample.object_id])
    np.testing.assert_array_equal(sample.extra["target"], raw_meta["target"][idx].astype(int))
    for name in ("hostgal_photoz", "hostgal_photoz_err", "mwebv"):
        np.testing.assert_array_equal(sample.metadata[name], raw_meta[name][idx].astype(float))
    for name in ("ra", "decl", "ddf_bool", "hostgal_specz"):
        np.testing.assert_array_equal(sample.extra[name], raw_meta[name][idx].astype(float))


def test_galactic_conventions(sample, raw_meta):
    """Photo-z 0 (galactic) stays 0; distmod -9 (unknown) becomes NaN, nothing else does."""
    galactic = sample.metadata["hostgal_photoz"] == 0
    assert galactic.sum() == (raw_meta["hostgal_photoz"].astype(float) == 0).sum() > 0
    assert np.all(np.isnan(sample.extra["distmod"][galactic]))
    assert np.all(np.isfinite(sample.extra["distmod"][~galactic]))
    assert np.isnan(sample.extra["distmod"]).sum() == (raw_meta["distmod"] == "-9.000").sum()


def test_truth_columns_are_never_read(sample, meta_path):
    header = meta_path.read_text().splitlines()[0].split(",")
    assert {"true_target", "true_z", "libid_cadence", "tflux_u"} <= set(header)
    names = set(sample.metadata) | set(sample.extra) | set(read_plasticc_metadata(meta_path))
    leaked = [n for n in names if n.startswith(("true_", "tflux_")) or n == "libid_cadence"]
    assert not leaked
    assert set(METADATA_WHITELIST) >= names - {"hostgal_photoz", "hostgal_photoz_err", "mwebv"}


def test_truth_columns_are_not_even_parsed(sample, lc_path, meta_path, tmp_path):
    """Garbage in every non-whitelisted column changes nothing: they are never converted."""
    lines = meta_path.read_text().splitlines()
    header = lines[0].split(",")
    poisoned = []
    for line in lines[1:]:
        cells = line.split(",")
        poisoned.append(",".join(c if h in METADATA_WHITELIST else "LEAK"
                                 for h, c in zip(header, cells, strict=True)))
    path = write_csv(tmp_path / "meta.csv", lines[0], poisoned)
    again = read_plasticc(lc_path, path)
    for name in sample.extra:
        np.testing.assert_array_equal(again.extra[name], sample.extra[name])
    for name in sample.metadata:
        np.testing.assert_array_equal(again.metadata[name], sample.metadata[name])


def test_source_never_names_truth_columns():
    """No module of astrot2 names a PLAsTiCC truth column."""
    import astrot2

    pattern = ("true_target", "true_z", "true_peakmjd", "true_distmod", "true_submodel")
    for path in Path(astrot2.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert not any(p in text for p in pattern), path


# ------------------------------------------------------------------ joins and order
def test_row_order_does_not_matter(sample, lc_path, meta_path, tmp_path):
    lines = gzip.decompress(lc_path.read_bytes()).decode().splitlines()
    rng = np.random.default_rng(0)
    body = [lines[i] for i in rng.permutation(np.arange(1, len(lines)))]
    shuffled = write_csv(tmp_path / "shuffled.csv", lines[0], body)
    again = read_plasticc(shuffled, meta_path)
    np.testing.assert_array_equal(again.offsets, sample.offsets)
    np.testing.assert_array_equal(again.time, sample.time)
    np.testing.assert_array_equal(again.extra["target"], sample.extra["target"])
    # equal times within an object may come out swapped: compare sorted values per object
    for a, b in zip(sample, again, strict=True):
        assert a.object_id == b.object_id
        np.testing.assert_array_equal(np.sort(a.flux), np.sort(b.flux))


def test_objects_without_metadata_and_metadata_without_objects(lc_path, meta_path, tmp_path):
    lines = meta_path.read_text().splitlines()
    kept = lines[1:][10:]  # the first 10 objects lose their metadata row
    stranger = "99999999," + lines[1].split(",", 1)[1]  # a metadata row without light curve
    path = write_csv(tmp_path / "meta.csv", lines[0], [*kept, stranger])
    batch = read_plasticc(lc_path, path)
    assert len(batch) == N_OBJECTS and "99999999" not in set(batch.object_id)
    dropped = {line.split(",", 1)[0].strip() for line in lines[1:][:10]}
    lost = np.isin(batch.object_id.astype(str), list(dropped))
    assert lost.sum() == 10
    assert np.all(batch.extra["target"][lost] == -1) and np.all(batch.extra["target"][~lost] > 0)
    for values in (*batch.metadata.values(), batch.extra["ra"], batch.extra["distmod"]):
        assert np.all(np.isnan(values[lost]))
    assert np.all(np.isfinite(batch.metadata["mwebv"][~lost]))


def test_no_metadata_gives_nan_and_no_label(lc_path):
    batch = read_plasticc(lc_path)
    assert np.all(batch.extra["target"] == -1)
    assert all(np.all(np.isnan(v)) for v in batch.metadata.values())


def test_metadata_without_target_column(lc_path, tmp_path):
    path = write_csv(tmp_path / "meta.csv", "object_id,hostgal_photoz", ["615,0.0", "713,1.627"])
    batch = read_plasticc(lc_path, path)
    assert np.all(batch.extra["target"] == -1)
    i = list(batch.object_id).index("713")
    assert batch.metadata["hostgal_photoz"][i] == 1.627


def test_unknown_passband_and_bad_values_are_dropped_and_counted(tmp_path):
    rows = ["1,60000.0,2,10.0,1.0,1", "1,60001.0,6,10.0,1.0,1", "1,60002.0,-1,10.0,1.0,0",
            "1,60003.0,3,nan,1.0,0", "2,60000.0,0,5.0,0.0,0", "2,60001.0,5,5.0,2.0,0"]
    batch = read_plasticc(write_csv(tmp_path / "lc.csv", LC_HEADER, rows))
    assert list(batch.object_id) == ["1", "2"]
    assert list(batch.n_dropped) == [3, 1]
    assert list(batch.band) == [2, 5]
    assert list(batch.detected) == [True, False]


def test_gzip_is_detected_from_content_not_name(lc_path, tmp_path):
    renamed = tmp_path / "lightcurves.csv"  # gzipped bytes under a plain name
    renamed.write_bytes(lc_path.read_bytes())
    assert is_plasticc_csv(renamed)
    assert len(read_plasticc(renamed)) == N_OBJECTS


# ------------------------------------------------------------------ sniffing and errors
def test_is_plasticc_csv(lc_path, meta_path, fixtures, tmp_path):
    assert is_plasticc_csv(lc_path)
    assert not is_plasticc_csv(meta_path)  # object_id but no passband
    assert not is_plasticc_csv(fixtures / "ztf" / "ztf_3.3_single.avro")
    assert not is_plasticc_csv(tmp_path / "does_not_exist.csv")
    quoted = write_csv(tmp_path / "q.csv", '"object_id","mjd","passband"', ['1,2,3'])
    assert is_plasticc_csv(quoted)


@pytest.mark.parametrize("missing", ["object_id", "mjd", "passband", "flux", "flux_err",
                                     "detected_bool"])
def test_missing_column_names_the_field(tmp_path, missing):
    names = [c for c in LC_HEADER.split(",") if c != missing]
    row = ",".join("1" for _ in names)
    path = write_csv(tmp_path / "lc.csv.gz", ",".join(names), [row], gz=True)
    with pytest.raises(AlertFormatError, match=re.escape(repr(missing))) as info:
        read_plasticc(path)
    assert info.value.field == missing and info.value.path == str(path)


def test_metadata_without_object_id(lc_path, tmp_path):
    path = write_csv(tmp_path / "meta.csv", "target,hostgal_photoz", ["90,0.5"])
    with pytest.raises(AlertFormatError) as info:
        read_plasticc(lc_path, path)
    assert info.value.field == "object_id" and info.value.path == str(path)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_gzip_names_the_file(lc_path, tmp_path, keep):
    data = lc_path.read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AlertFormatError, match=re.escape("cut.csv.gz")) as info:
        read_plasticc(cut)
    assert info.value.path == str(cut)


def test_unreadable_files_raise_alert_format_errors(lc_path, meta_path, tmp_path):
    with pytest.raises(AlertFormatError, match=re.escape("nothing.csv")):
        read_plasticc(tmp_path / "nothing.csv")
    garbage = tmp_path / "garbage.csv.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    with pytest.raises(AlertFormatError, match=re.escape("garbage.csv.gz")):
        read_plasticc(garbage)
    text = write_csv(tmp_path / "text.csv", LC_HEADER, ["1,60000.0,2,ten,1.0,1"])
    with pytest.raises(AlertFormatError, match=re.escape("text.csv")):
        read_plasticc(text)
    empty_id = write_csv(tmp_path / "empty_id.csv", LC_HEADER, [",60000.0,2,1.0,1.0,1"])
    with pytest.raises(AlertFormatError, match="object_id"):
        read_plasticc(empty_id)
    packed = gzip.compress(meta_path.read_bytes())
    cut_meta = tmp_path / "meta.csv.gz"
    cut_meta.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(AlertFormatError, match=re.escape("meta.csv.gz")):
        read_plasticc(lc_path, cut_meta)


# ------------------------------------------------------------------ the full training set
@pytest.mark.shared
def test_full_training_set(shared_data):
    b = read_plasticc(shared_data / "plasticc" / "training_set.csv.gz",
                      shared_data / "plasticc" / "training_set_metadata.csv")
    assert len(b) == 7848 and len(b.time) == 1421705
    assert int(b.n_dropped.sum()) == 0 and np.all(b.ok)
    npts = b.n_points
    assert (npts.min(), int(np.median(npts)), npts.max()) == (47, 136, 352)
    counts = dict(zip(*np.unique(b.extra["target"], return_counts=True), strict=True))
    assert counts == {90: 2313, 42: 1193, 65: 981, 16: 924, 15: 495, 62: 484, 88: 370,
                      92: 239, 67: 208, 52: 183, 95: 175, 6: 151, 64: 102, 53: 30}
    assert not np.isnan(b.metadata["hostgal_photoz"]).any()
    assert not np.isnan(b.metadata["mwebv"]).any()
    galactic = b.metadata["hostgal_photoz"] == 0
    assert np.array_equal(np.isnan(b.extra["distmod"]), galactic)
