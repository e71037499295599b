"""PLAsTiCC reader: counts, labels, no truth columns, bad files."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pyarrow.csv as pacsv
import pytest

from astrot2.errors import AlertFormatError
from astrot2.io import read_file
from astrot2.io.plasticc import METADATA_WHITELIST, read_plasticc

CLASSES = [6, 15, 16, 42, 52, 53, 62, 64, 65, 67, 88, 90, 92, 95]


@pytest.fixture(scope="module")
def sample(fixtures):
    folder = fixtures / "plasticc"
    return read_plasticc(folder / "plasticc_lc_sample.csv.gz", folder / "plasticc_meta_sample.csv")


def test_fixture_counts_and_labels(fixtures, sample):
    raw = pacsv.read_csv(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz")
    meta = pacsv.read_csv(fixtures / "plasticc" / "plasticc_meta_sample.csv")
    assert len(sample) == len(np.unique(raw.column("object_id").to_numpy())) == meta.num_rows
    assert len(sample.time) == raw.num_rows
    assert sorted(np.unique(sample.extra["target"])) == CLASSES
    assert np.all(np.bincount(np.searchsorted(CLASSES, sample.extra["target"])) == 7)
    for lc in sample:
        assert np.all(np.diff(lc.time) >= 0)
        assert set(np.unique(lc.band)) <= set(range(6))
    # labels and host redshift follow their objects
    ids = meta.column("object_id").to_numpy().astype(str)
    i = int(np.flatnonzero(sample.object_id == ids[5])[0])
    assert sample.extra["target"][i] == meta.column("target")[5].as_py()
    assert sample.metadata["hostgal_photoz"][i] == pytest.approx(
        meta.column("hostgal_photoz")[5].as_py())


def test_truth_columns_are_never_read(fixtures, sample):
    header = (fixtures / "plasticc" / "plasticc_meta_sample.csv").read_text().splitlines()[0]
    assert "true_target" in header and "true_z" in header  # the fixture does carry them
    names = set(sample.metadata) | set(sample.extra)
    assert not any(n.startswith(("true_", "tflux_")) for n in names)
    assert not any(n.startswith(("true_", "tflux_")) or n == "libid_cadence"
                   for n in METADATA_WHITELIST)


def test_source_never_reads_truth_columns():
    """No module of astrot2 names a PLAsTiCC truth column outside documentation."""
    from pathlib import Path

    import astrot2

    pattern = ("true_target", "true_z", "true_peakmjd", "true_distmod", "true_submodel")
    for path in Path(astrot2.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert not any(p in text for p in pattern), path


def test_row_order_does_not_matter(fixtures, sample, tmp_path):
    lines = gzip.open(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz", "rt").read().splitlines()
    rng = np.random.default_rng(0)
    body = [lines[i] for i in rng.permutation(np.arange(1, len(lines)))]
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    again = read_plasticc(shuffled, fixtures / "plasticc" / "plasticc_meta_sample.csv")
    # duplicated times within an object may swap, so compare sorted values per object
    for a, b in zip(sample, again, strict=True):
        assert a.object_id == b.object_id
        np.testing.assert_array_equal(a.time, b.time)
        np.testing.assert_array_equal(np.sort(a.flux), np.sort(b.flux))


def test_missing_column_and_truncated_file(fixtures, tmp_path):
    bad = tmp_path / "no_flux_err.csv"
    bad.write_text("object_id,mjd,passband,flux,detected_bool\n1,60000,1,3.0,1\n")
    with pytest.raises(AlertFormatError, match="flux_err"):
        read_file(bad, format="plasticc")
    data = (fixtures / "plasticc" / "plasticc_lc_sample.csv.gz").read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlertFormatError, match=re.escape("cut.csv.gz")):
        read_file(cut, format="plasticc")


@pytest.mark.shared
def test_full_training_set(shared_data):
    b = read_plasticc(shared_data / "plasticc" / "training_set.csv.gz",
                      shared_data / "plasticc" / "training_set_metadata.csv")
    assert len(b) == 7848 and len(b.time) == 1421705
    counts = dict(zip(*np.unique(b.extra["target"], return_counts=True), strict=True))
    assert counts == {90: 2313, 42: 1193, 65: 981, 16: 924, 15: 495, 62: 484, 88: 370,
                      92: 239, 67: 208, 52: 183, 95: 175, 6: 151, 64: 102, 53: 30}
