"""Alert readers on real fixtures: counts, photometry, layouts, bad input."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrot2.cli import main as cli
from astrot2.errors import AlertFormatError
from astrot2.io import detect_format, expand_inputs, read_alerts, read_file
from astrot2.io.rubin import rubin_from_table
from astrot2.io.ztf import ztf_from_table
from astrot2.photometry import NJY_TO_FLUXCAL, limit_to_fluxcal_err, mag_to_fluxcal


def _records(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return list(fastavro.reader(fh))


def test_formats_are_detected(fixtures):
    expected = {"ztf": "ztf", "rubin": "rubin", "elasticc": "elasticc"}
    for folder, fmt in expected.items():
        for path in expand_inputs(fixtures / folder):
            assert detect_format(path) == fmt, path
    assert detect_format(fixtures / "plasticc" / "plasticc_lc_sample.csv.gz") == "plasticc"


def test_ztf_avro_alert_is_history_plus_current(fixtures):
    path = fixtures / "ztf" / "ztf_3.3_single.avro"
    (rec,) = _records(path)
    batch = read_file(path)
    assert len(batch) == 1
    assert batch.alert_id[0] == str(rec["candid"]) and batch.object_id[0] == rec["objectId"]
    prv = rec["prv_candidates"] or []
    assert batch.n_points[0] == len(prv) + 1  # upper limits kept, nothing dropped
    n_limits = sum(p["magpsf"] is None for p in prv)
    lc = batch[0]
    assert (~lc.detected).sum() == n_limits
    assert np.all(np.diff(lc.time) >= 0)
    # the current candidate, converted by hand
    cand = rec["candidate"]
    i = np.flatnonzero(np.isclose(lc.time, cand["jd"] - 2400000.5))[0]
    flux, err = mag_to_fluxcal([cand["magpsf"]], [cand["sigmapsf"]], [cand["isdiffpos"]])
    assert lc.flux[i] == pytest.approx(flux[0]) and lc.flux_err[i] == pytest.approx(err[0])
    assert lc.band[i] == cand["fid"] - 1
    # an upper limit: 0 +/- flux(diffmaglim) / 5
    lim = next(p for p in prv if p["magpsf"] is None)
    j = np.flatnonzero(np.isclose(lc.time, lim["jd"] - 2400000.5) & ~lc.detected)[0]
    assert lc.flux[j] == 0.0
    assert lc.flux_err[j] == pytest.approx(limit_to_fluxcal_err([lim["diffmaglim"]])[0])


def test_negative_difference_gives_negative_flux(fixtures):
    batch = read_alerts(fixtures / "ztf")
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    recs = table.column("candidate").to_pylist()
    negative = [r for r in recs if r["isdiffpos"] in ("f", "0")]
    positive = [r for r in recs if r["isdiffpos"] in ("t", "1")]
    assert negative and positive, "fixture should hold both signs"
    for rec in negative + positive:
        i = int(np.flatnonzero(batch.alert_id == str(rec["candid"]))[0])
        lc = batch[i]
        j = np.flatnonzero(np.isclose(lc.time, rec["jd"] - 2400000.5) & lc.detected)[0]
        assert np.sign(lc.flux[j]) == (-1 if rec in negative else 1)


def test_flat_c_columns_match_the_structs(fixtures):
    """Fink's flat cjd/cfid/cmagpsf/... layout, built from a real alert, reads the same."""
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    rows = table.to_pylist()
    flat = {"objectId": [], "candid": [], "cjd": [], "cfid": [], "cmagpsf": [], "csigmapsf": [],
            "cisdiffpos": [], "cdiffmaglim": []}
    for r in rows:
        pts = (r["prv_candidates"] or []) + [r["candidate"]]
        flat["objectId"].append(r["objectId"])
        flat["candid"].append(r["candid"])
        for key in ("jd", "fid", "magpsf", "sigmapsf", "isdiffpos", "diffmaglim"):
            flat["c" + key].append([p[key] for p in pts])
    from_flat = ztf_from_table(pa.table(flat))
    from_structs = ztf_from_table(table)
    for name in ("time", "flux", "flux_err", "band", "detected", "offsets"):
        np.testing.assert_array_equal(getattr(from_flat, name), getattr(from_structs, name))
    # a ragged row is rejected alone
    flat["cfid"][3] = flat["cfid"][3][:-1]
    ragged = ztf_from_table(pa.table(flat))
    assert ragged.reject[3].startswith("bad_record") and (ragged.reject != "").sum() == 1
    assert len(ragged) == len(rows)


def test_null_candidate_rejects_that_alert_only(fixtures):
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    cand = table.column("candidate").combine_chunks()
    mask = np.zeros(len(cand), bool)
    mask[2] = True
    nulled = pa.StructArray.from_arrays(cand.flatten(), fields=list(cand.type),
                                        mask=pa.array(mask))
    batch = ztf_from_table(table.set_column(table.schema.get_field_index("candidate"),
                                            "candidate", nulled))
    assert len(batch) == len(table)
    assert batch.reject[2] == "bad_record: candidate is null"
    assert (batch.reject == "").sum() == len(table) - 1


def test_empty_history_still_one_light_curve(fixtures):
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    empty = pa.nulls(len(table), table.schema.field("prv_candidates").type)
    batch = ztf_from_table(table.set_column(table.schema.get_field_index("prv_candidates"),
                                            "prv_candidates", empty))
    assert len(batch) == len(table) and list(batch.n_points) == [1] * len(table)


def test_rubin_flux_is_njy_converted(fixtures):
    path = fixtures / "rubin" / "rubin_transfer_2.avro"
    recs = _records(path)
    batch = read_file(path)
    assert len(batch) == len(recs)
    for k, rec in enumerate(recs):
        src = rec["diaSource"]
        lc = batch[k]
        assert batch.alert_id[k] == str(rec["diaSourceId"])
        assert batch.n_points[k] == len(rec["prvDiaSources"] or []) + 1
        j = np.flatnonzero(lc.time == src["midpointMjdTai"])[0]
        assert lc.flux[j] == pytest.approx(src["psfFlux"] * NJY_TO_FLUXCAL)
        assert lc.flux_err[j] == pytest.approx(src["psfFluxErr"] * NJY_TO_FLUXCAL)
        assert batch.survey.bands[lc.band[j]] == src["band"]
    forced = read_file(path, include_forced=True)
    assert (forced.n_points > batch.n_points).all() and (~forced.detected).any()


def test_elasticc_uppercase_y_and_host_redshift(fixtures):
    path = fixtures / "elasticc" / "elasticc_single.avro.gz"
    (rec,) = _records(path)
    batch = read_file(path)
    bands = [s["filterName"] for s in rec["prvDiaSources"]] + [rec["diaSource"]["filterName"]]
    assert "Y" in bands
    assert sorted(batch.band.tolist()) == sorted("ugrizY".index(b) for b in bands)
    assert batch.metadata["hostgal_photoz"][0] == pytest.approx(
        rec["diaObject"]["hostgal_zphot_q50"])


def test_missing_field_is_named(fixtures, tmp_path):
    table = pq.read_table(fixtures / "rubin" / "rubin_raw_5.parquet")
    src = table.column("diaSource").combine_chunks()
    keep = [f.name for f in src.type if f.name != "psfFlux"]
    pruned = pa.StructArray.from_arrays([src.field(k) for k in keep], names=keep)
    bad = table.set_column(table.schema.get_field_index("diaSource"), "diaSource", pruned)
    with pytest.raises(AlertFormatError, match="psfFlux"):
        rubin_from_table(bad, source="x.parquet")


def test_bad_points_are_dropped_and_counted(fixtures):
    table = pq.read_table(fixtures / "elasticc" / "elasticc_snia_20.parquet")
    rows = table.to_pylist()
    rows[0]["diaSource"]["psFluxErr"] = float("nan")
    rows[1]["diaSource"]["psFluxErr"] = -3.0
    for src in [rows[2]["diaSource"], *(rows[2]["prvDiaSources"] or [])]:
        src["psFluxErr"] = 0.0
    batch = rubin_from_table(pa.Table.from_pylist(rows, schema=table.schema))
    assert len(batch) == len(rows)
    assert batch.n_dropped[0] == 1 and batch.n_dropped[1] == 1
    assert batch.reject[2] == "no_valid_points"
    assert (batch.reject == "").sum() == len(rows) - 1


@pytest.mark.parametrize("content", [b"\x00\x01garbage" * 10, b"a,b,c\n1,2,3\n"])
def test_unknown_format_names_the_file(tmp_path, content):
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    with pytest.raises(AlertFormatError, match=re.escape("mystery.bin")):
        read_file(path)


def test_unrelated_parquet_is_refused(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(AlertFormatError, match=re.escape("other.parquet")):
        read_file(path)


@pytest.mark.parametrize("name", ["ztf/fink_multi_3.avro", "rubin/rubin_transfer_2.avro",
                                  "ztf/fink_4.02_10.parquet"])
def test_truncated_files_name_the_file(fixtures, tmp_path, name):
    data = (fixtures / name).read_bytes()
    path = tmp_path / Path(name).name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlertFormatError, match=re.escape(path.name)):
        read_file(path)


def test_bit_flipped_parquet_names_the_file(fixtures, tmp_path):
    data = bytearray((fixtures / "ztf" / "fink_4.02_10.parquet").read_bytes())
    for pos in range(100, len(data) - 100, 997):
        data[pos] ^= 0xFF
    path = tmp_path / "flipped.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(AlertFormatError, match=re.escape("flipped.parquet")):
        read_file(path)


def test_cli_read_summary_and_output(fixtures, tmp_path, capsys):
    out = tmp_path / "lc.parquet"
    assert cli(["read", str(fixtures / "ztf"), "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    expected = sum(len(read_file(p)) for p in expand_inputs(fixtures / "ztf"))
    assert summary["light_curves"] == expected == 1 + 1 + 3 + 10 + 4
    assert pq.read_table(out).num_rows == expected


def test_cli_wrong_format_is_a_clear_error(fixtures, capsys):
    assert cli(["read", str(fixtures / "ztf" / "ztf_3.3_single.avro"), "--format", "rubin"]) == 2
    assert "diaSource" in capsys.readouterr().err


@pytest.mark.shared
def test_every_real_alert_is_read(shared_data):
    """Light curves out == alerts in, for every alert file of the real data folder."""
    import pyarrow.parquet as pq

    files = [p for sub in ("ztf", "rubin", "elasticc") for p in expand_inputs(shared_data / sub)
             if p.name.endswith((".avro", ".avro.gz", ".parquet"))]
    assert len(files) > 50
    total = 0
    for path in files:
        if path.name.endswith(".parquet"):
            n_in = pq.ParquetFile(path).metadata.num_rows
        else:
            n_in = len(_records(path))
        batch = read_file(path)
        assert len(batch) == n_in, path
        assert np.all(np.diff(batch.time)[np.diff(batch.owner) == 0] >= 0), path
        total += n_in
    assert total >= 4000
