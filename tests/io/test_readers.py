"""Survey readers on real fixtures: every point checked against an independent conversion.

The expected light curves are rebuilt here from the raw records (fastavro / pyarrow
``to_pylist``) with plain-Python formulas, so a reader bug cannot hide in shared code.
"""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrot2.io import detect_format, expand_inputs, read_file
from astrot2.io.containers import read_alert_table
from astrot2.io.rubin import AVRO_SPEC as RUBIN_SPEC
from astrot2.io.rubin import rubin_from_table
from astrot2.io.ztf import AVRO_SPEC as ZTF_SPEC
from astrot2.io.ztf import ztf_from_table
from astrot2.lightcurves import LightCurveBatch
from astrot2.surveys import LSST, ZTF

JD_MJD = 2400000.5
#: nJy -> FLUXCAL, written out: 10 ** (-(31.4 - 27.5) / 2.5).
NJY = 0.027542287033381664


# ---------------------------------------------------------------- independent reference
def records(path: Path) -> list[dict]:
    """Every alert of a fixture as a Python dict (fastavro or pyarrow, no astrot2 code)."""
    if path.name.endswith(".parquet"):
        return pq.read_table(path).to_pylist()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return list(fastavro.reader(fh))


def ztf_points(rec: dict) -> list[tuple]:
    """(mjd, band, flux, flux_err, detected) of a ZTF alert: history + candidate."""
    out = []
    for p in [*(rec["prv_candidates"] or []), rec["candidate"]]:
        mjd, band = p["jd"] - JD_MJD, p["fid"] - 1
        if p["magpsf"] is None:  # upper limit: 0 +/- flux(diffmaglim) / 5
            out.append((mjd, band, 0.0, 10 ** (-0.4 * (p["diffmaglim"] - 27.5)) / 5, False))
        else:
            sign = -1.0 if p["isdiffpos"] in ("f", "0") else 1.0
            flux = sign * 10 ** (-0.4 * (p["magpsf"] - 27.5))
            err = 9.21034e10 * math.exp(-0.921034 * p["magpsf"]) * p["sigmapsf"]
            out.append((mjd, band, flux, err, True))
    return out


def uncontradicted(points: list[tuple]) -> list[tuple]:
    """``points`` less the upper limits a same-band detection within half a day outshines
    (brighter than the limit, 5 x its error): the reader drops those."""
    def contradicted(lim: tuple) -> bool:
        return not lim[4] and any(d[4] and d[1] == lim[1] and abs(d[0] - lim[0]) <= 0.5
                                  and abs(d[2]) > 5 * lim[3] for d in points)
    return [p for p in points if not contradicted(p)]


def lsst_points(rec: dict, forced: bool = False) -> list[tuple]:
    """(mjd, band, flux, flux_err, detected) of a Rubin or ELAsTiCC alert."""
    def one(s: dict, detected: bool) -> tuple:
        mjd = s.get("midpointMjdTai", s.get("midPointTai"))
        band = "ugrizy".index(s.get("band", s.get("filterName")).lower())
        flux = s.get("psfFlux", s.get("psFlux"))
        err = s.get("psfFluxErr", s.get("psFluxErr"))
        return (mjd, band, flux * NJY, err * NJY, detected)

    out = [one(s, True) for s in [*(rec["prvDiaSources"] or []), rec["diaSource"]]]
    if forced:
        out += [one(s, False) for s in rec["prvDiaForcedSources"] or []]
    return out


def canonical(rows) -> np.ndarray:
    """Points as an (n, 5) array sorted by (time, band, flux, err): order-free comparison."""
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return arr[np.lexsort((arr[:, 3], arr[:, 2], arr[:, 1], arr[:, 0]))]


def batch_points(batch: LightCurveBatch, i: int) -> np.ndarray:
    lc = batch[i]
    return canonical(np.column_stack([lc.time, lc.band, lc.flux, lc.flux_err, lc.detected]))


def assert_same_light_curve(batch: LightCurveBatch, i: int, expected: list[tuple]) -> None:
    got, want = batch_points(batch, i), canonical(expected)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[:, [0, 1, 4]], want[:, [0, 1, 4]])  # time, band, det
    np.testing.assert_allclose(got[:, 2:4], want[:, 2:4], rtol=1e-12, atol=0)
    assert np.all(np.diff(batch[i].time) >= 0)


def fixture_files(fixtures: Path, folder: str) -> list[Path]:
    return expand_inputs(fixtures / folder)


# ---------------------------------------------------------------- formats
def test_formats_are_detected(fixtures):
    for folder in ("ztf", "rubin", "elasticc"):
        files = fixture_files(fixtures, folder)
        assert len(files) >= 2
        assert {detect_format(p) for p in files} == {folder}


# ---------------------------------------------------------------- ZTF
def test_ztf_every_point_matches_the_raw_alert(fixtures):
    """History + candidate, upper limits kept as 0 +/- flux(diffmaglim)/5; only limits a
    same-night detection contradicts are dropped, and counted."""
    n_alerts = n_limits = n_contradicted = 0
    for path in fixture_files(fixtures, "ztf"):
        recs, batch = records(path), read_file(path)
        assert len(batch) == len(recs)
        assert list(batch.alert_id) == [str(r["candid"]) for r in recs]
        assert list(batch.object_id) == [r["objectId"] for r in recs]
        for i, rec in enumerate(recs):
            history = rec["prv_candidates"] or []
            kept = uncontradicted(ztf_points(rec))
            dropped = len(history) + 1 - len(kept)
            assert batch.n_points[i] == len(kept)
            assert batch.n_dropped[i] == dropped and batch.reject[i] == ""
            assert_same_light_curve(batch, i, kept)
            n_limits += sum(p["magpsf"] is None for p in history)
            n_contradicted += dropped
        n_alerts += len(recs)
    assert n_alerts == 1 + 1 + 3 + 11 + 10 + 4
    assert n_limits > 100  # the fixtures do exercise upper limits
    assert 0 < n_contradicted < n_limits / 10  # real fixtures with both fields' points


def test_ztf_upper_limit_by_hand(fixtures):
    path = fixtures / "ztf" / "ztf_3.3_single.avro"
    (rec,) = records(path)
    lc = read_file(path)[0]
    limits = [p for p in rec["prv_candidates"] if p["magpsf"] is None]
    assert (~lc.detected).sum() == len(limits) > 0
    lim = limits[0]
    j = np.flatnonzero(np.isclose(lc.time, lim["jd"] - JD_MJD, rtol=0, atol=1e-9))[0]
    assert lc.flux[j] == 0.0 and not lc.detected[j]
    assert lc.flux_err[j] == pytest.approx(10 ** (-0.4 * (lim["diffmaglim"] - 27.5)) / 5,
                                           rel=1e-12)


def test_negative_difference_gives_negative_flux(fixtures):
    """Real alerts with isdiffpos 'f' (fink_4.02_10 holds both signs)."""
    path = fixtures / "ztf" / "fink_4.02_10.parquet"
    batch = read_file(path)
    seen = set()
    for i, rec in enumerate(records(path)):
        for p in [*(rec["prv_candidates"] or []), rec["candidate"]]:
            if p["magpsf"] is None:
                continue
            j = np.flatnonzero((batch[i].time == p["jd"] - JD_MJD) & batch[i].detected)
            expected = -1.0 if p["isdiffpos"] in ("f", "0") else 1.0
            assert np.all(np.sign(batch[i].flux[j]) == expected)
            seen.add(expected)
    assert seen == {-1.0, 1.0}


def test_flipping_isdiffpos_flips_the_sign(fixtures):
    """The same real alert with its candidate's isdiffpos set to 'f': only that flux flips."""
    table = read_alert_table(fixtures / "ztf" / "ztf_3.3_single.avro", ZTF_SPEC)
    rows = table.to_pylist()
    assert rows[0]["candidate"]["isdiffpos"] == "t"
    rows[0]["candidate"]["isdiffpos"] = "f"
    before = ztf_from_table(table)
    after = ztf_from_table(pa.Table.from_pylist(rows, schema=table.schema))
    mjd = rows[0]["candidate"]["jd"] - JD_MJD
    at = before.time == mjd
    assert at.sum() == 1
    np.testing.assert_array_equal(after.flux[at], -before.flux[at])
    np.testing.assert_array_equal(after.flux[~at], before.flux[~at])
    np.testing.assert_array_equal(after.flux_err, before.flux_err)


def test_fid_maps_to_the_fixed_band_order(fixtures):
    """fid 1, 2, 3 -> g, r, i (0, 1, 2); an unknown fid is dropped and counted."""
    table = read_alert_table(fixtures / "ztf" / "ztf_3.3_single.avro", ZTF_SPEC)
    rows = table.to_pylist()
    history = rows[0]["prv_candidates"]
    for k, p in enumerate(history):
        p["fid"] = (1, 2, 3, 4)[k % 4]
    batch = ztf_from_table(pa.Table.from_pylist(rows, schema=table.schema))
    n_bad = sum(p["fid"] == 4 for p in history)
    assert batch.n_dropped[0] == n_bad > 0
    assert batch.n_points[0] == len(history) + 1 - n_bad
    fids = [p["fid"] for p in history if p["fid"] != 4] + [rows[0]["candidate"]["fid"]]
    assert sorted(batch.band.tolist()) == sorted(f - 1 for f in fids)
    assert [ZTF.bands[b] for b in (0, 1, 2)] == ["g", "r", "i"]


def check_flat_layout(path: Path) -> list[int]:
    """Fink Avro with both layouts: the c* arrays alone give the same detections.

    The c* arrays carry no diffmaglim, so their upper limits cannot be converted: they
    are dropped and counted in ``n_dropped`` (one per null ``cmagpsf``).  Returns the
    number of upper limits per alert.
    """
    recs = records(path)
    table = read_alert_table(path, ZTF_SPEC)
    flat = table.drop_columns(["candidate", "prv_candidates"])
    assert {"cjd", "cfid", "cmagpsf", "csigmapsf", "cisdiffpos"} <= set(flat.column_names)
    structs, arrays = ztf_from_table(table), ztf_from_table(flat)
    assert len(arrays) == len(structs) == len(recs)
    assert list(arrays.alert_id) == list(structs.alert_id) == [str(r["candid"]) for r in recs]
    null_mags = [sum(m is None for m in r["cmagpsf"]) for r in recs]
    assert list(arrays.n_dropped) == null_mags
    assert list(arrays.n_points) == [len(r["cjd"]) - k for r, k in zip(recs, null_mags,
                                                                       strict=True)]
    assert arrays.detected.all() and (arrays.reject == "").all()
    for i in range(len(recs)):
        det = structs[i].detected
        assert det.sum() == arrays.n_points[i]
        for name in ("time", "flux", "flux_err", "band"):
            np.testing.assert_array_equal(getattr(arrays[i], name),
                                          getattr(structs[i], name)[det])
    return null_mags


def test_flat_c_columns_of_a_real_fink_alert(fixtures):
    null_mags = check_flat_layout(fixtures / "ztf" / "fink_multi_flat_11.avro")
    assert len(null_mags) == 11 and sum(null_mags) == 115


@pytest.mark.shared
def test_flat_c_columns_of_the_original_fink_file(shared_data, fixtures):
    """The same check on the untouched file (cutouts included) the fixture was cut from."""
    original = check_flat_layout(shared_data / "ztf" / "fink-client" / "avro_multi_alerts.avro")
    assert original == check_flat_layout(fixtures / "ztf" / "fink_multi_flat_11.avro")


def test_flat_c_columns_built_from_structs_match_exactly(fixtures):
    """With cdiffmaglim present too, the flat layout keeps the upper limits: identical."""
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    rows = table.to_pylist()
    keys = ("jd", "fid", "magpsf", "sigmapsf", "isdiffpos", "diffmaglim")
    flat: dict[str, list] = {"objectId": [], "candid": [], **{"c" + k: [] for k in keys}}
    for r in rows:
        pts = [*(r["prv_candidates"] or []), r["candidate"]]  # Fink: history, then current
        flat["objectId"].append(r["objectId"])
        flat["candid"].append(r["candid"])
        for key in keys:
            flat["c" + key].append([p[key] for p in pts])
    from_flat, from_structs = ztf_from_table(pa.table(flat)), ztf_from_table(table)
    for name in ("alert_id", "time", "flux", "flux_err", "band", "detected", "offsets",
                 "n_dropped"):
        np.testing.assert_array_equal(getattr(from_flat, name), getattr(from_structs, name))


def test_ragged_c_columns_reject_that_alert_only(fixtures):
    path = fixtures / "ztf" / "fink_multi_flat_11.avro"
    flat = read_alert_table(path, ZTF_SPEC).drop_columns(["candidate", "prv_candidates"])
    good = ztf_from_table(flat)
    cfid = flat.column("cfid").to_pylist()
    cfid[3] = cfid[3][:-1]
    ragged = ztf_from_table(flat.set_column(flat.schema.get_field_index("cfid"), "cfid",
                                            pa.array(cfid, flat.schema.field("cfid").type)))
    assert len(ragged) == len(good) == 11
    assert ragged.reject[3] == "bad_record: cfid length differs from cjd"
    assert ragged.n_points[3] == 0
    others = np.arange(11) != 3
    assert (ragged.reject[others] == "").all()
    kept = good.take(np.flatnonzero(others))
    np.testing.assert_array_equal(ragged.take(np.flatnonzero(others)).flux, kept.flux)


def test_null_candidate_rejects_that_alert_only(fixtures):
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    cand = table.column("candidate").combine_chunks()
    mask = np.zeros(len(cand), bool)
    mask[2] = True
    nulled = pa.StructArray.from_arrays(cand.flatten(), fields=list(cand.type),
                                        mask=pa.array(mask))
    good = ztf_from_table(table)
    batch = ztf_from_table(table.set_column(table.schema.get_field_index("candidate"),
                                            "candidate", nulled))
    assert len(batch) == len(table) == 10
    assert batch.reject[2] == "bad_record: candidate is null"
    assert (batch.reject == "").sum() == 9
    others = np.flatnonzero(np.arange(10) != 2)
    np.testing.assert_array_equal(batch.take(others).flux, good.take(others).flux)
    np.testing.assert_array_equal(batch.take(others).offsets, good.take(others).offsets)


def test_empty_history_still_one_light_curve(fixtures):
    table = pq.read_table(fixtures / "ztf" / "fink_4.02_10.parquet")
    empty = pa.nulls(len(table), table.schema.field("prv_candidates").type)
    batch = ztf_from_table(table.set_column(table.schema.get_field_index("prv_candidates"),
                                            "prv_candidates", empty))
    assert len(batch) == len(table) and list(batch.n_points) == [1] * len(table)
    assert (batch.reject == "").all() and batch.detected.all()


# ---------------------------------------------------------------- Rubin / ELAsTiCC
def test_njy_factor_and_one_real_point_by_hand(fixtures):
    assert 10 ** (-(31.4 - 27.5) / 2.5) == pytest.approx(NJY, rel=1e-15)
    path = fixtures / "rubin" / "rubin_transfer_2.avro"
    src = records(path)[0]["diaSource"]
    lc = read_file(path)[0]
    j = np.flatnonzero(lc.time == src["midpointMjdTai"])
    assert len(j) == 1
    assert lc.flux[j[0]] == pytest.approx(src["psfFlux"] * 0.027542287033381664, rel=1e-12)
    assert lc.flux_err[j[0]] == pytest.approx(src["psfFluxErr"] * 0.027542287033381664,
                                              rel=1e-12)
    assert LSST.bands[lc.band[j[0]]] == src["band"]


@pytest.mark.parametrize("folder", ["rubin", "elasticc"])
def test_lsst_every_point_matches_the_raw_alert(fixtures, folder):
    total = 0
    for path in fixture_files(fixtures, folder):
        recs, batch = records(path), read_file(path)
        assert len(batch) == len(recs)
        id_key = "diaSourceId" if folder == "rubin" else "alertId"
        assert list(batch.alert_id) == [str(r[id_key]) for r in recs]
        for i, rec in enumerate(recs):
            assert batch.n_points[i] == len(rec["prvDiaSources"] or []) + 1
            assert batch.n_dropped[i] == 0 and batch.reject[i] == ""
            assert_same_light_curve(batch, i, lsst_points(rec))
        total += len(recs)
    assert total == {"rubin": 3 + 5 + 2, "elasticc": 1 + 20}[folder]


def test_rubin_empty_history_is_one_point(fixtures):
    """Real alerts without history (null prvDiaSources), in Parquet and in Avro."""
    parquet = records(fixtures / "rubin" / "rubin_fink_3.parquet")
    assert parquet[0]["prvDiaSources"] is None
    assert read_file(fixtures / "rubin" / "rubin_fink_3.parquet").n_points[0] == 1
    avro = records(fixtures / "rubin" / "rubin_transfer_2.avro")
    assert avro[1]["prvDiaSources"] is None
    assert read_file(fixtures / "rubin" / "rubin_transfer_2.avro").n_points[1] == 1


def test_forced_photometry_as_non_detections(fixtures):
    path = fixtures / "rubin" / "rubin_transfer_2.avro"
    recs = records(path)
    plain, forced = read_file(path), read_file(path, include_forced=True)
    assert len(forced) == len(recs)
    for i, rec in enumerate(recs):
        n_forced = len(rec["prvDiaForcedSources"] or [])
        assert forced.n_points[i] + forced.n_dropped[i] == plain.n_points[i] + n_forced
        assert (~forced[i].detected).sum() == n_forced - forced.n_dropped[i]
        assert_same_light_curve(forced, i, [p for p in lsst_points(rec, forced=True)
                                            if all(np.isfinite(p[:4]))])
    assert forced.n_points[0] > plain.n_points[0] + 300


def test_elasticc_uppercase_y_and_host_redshift(fixtures):
    path = fixtures / "elasticc" / "elasticc_single.avro.gz"
    (rec,) = records(path)
    batch = read_file(path)
    bands = [s["filterName"] for s in rec["prvDiaSources"]] + [rec["diaSource"]["filterName"]]
    assert "Y" in bands
    assert sorted(batch.band.tolist()) == sorted("ugrizY".index(b) for b in bands)
    assert batch.metadata["hostgal_photoz"][0] == pytest.approx(
        rec["diaObject"]["hostgal_zphot_q50"])
    assert batch.metadata["mwebv"][0] == pytest.approx(rec["diaObject"]["mwebv"])


def test_bad_points_are_dropped_and_counted(fixtures):
    table = pq.read_table(fixtures / "elasticc" / "elasticc_snia_20.parquet")
    rows = table.to_pylist()
    rows[0]["diaSource"]["psFluxErr"] = float("nan")
    rows[1]["diaSource"]["psFluxErr"] = -3.0
    rows[3]["prvDiaSources"][0]["psFlux"] = float("nan")
    rows[3]["prvDiaSources"][1]["psFluxErr"] = float("inf")
    for src in [rows[2]["diaSource"], *(rows[2]["prvDiaSources"] or [])]:
        src["psFluxErr"] = 0.0
    good = rubin_from_table(table)
    batch = rubin_from_table(pa.Table.from_pylist(rows, schema=table.schema))
    assert len(batch) == len(rows) == 20
    assert list(batch.n_dropped[:4]) == [1, 1, good.n_points[2], 2]
    assert (batch.n_dropped[4:] == 0).all()
    assert list(batch.n_points[[0, 1, 3]]) == list(good.n_points[[0, 1, 3]] - [1, 1, 2])
    assert batch.reject[2] == "no_valid_points" and batch.n_points[2] == 0
    assert (batch.reject == "").sum() == 19


# ---------------------------------------------------------------- invariances
def _shuffled(table: pa.Table, history: str, seed: int) -> tuple[pa.Table, np.ndarray]:
    """The alerts in a random order, each one's history list shuffled too."""
    rng = np.random.default_rng(seed)
    rows = table.to_pylist()
    for row in rows:
        if row[history]:
            rng.shuffle(row[history])
    perm = rng.permutation(len(rows))
    return pa.Table.from_pylist([rows[k] for k in perm], schema=table.schema), perm


@pytest.mark.parametrize("name, history, build", [
    ("ztf/fink_4.02_10.parquet", "prv_candidates", ztf_from_table),
    ("ztf/fink_multi_flat_11.avro", "prv_candidates", ztf_from_table),
    ("rubin/rubin_fink_3.parquet", "prvDiaSources", rubin_from_table),
    ("elasticc/elasticc_snia_20.parquet", "prvDiaSources", rubin_from_table),
])
def test_input_order_does_not_change_the_batch(fixtures, name, history, build):
    spec = ZTF_SPEC if build is ztf_from_table else RUBIN_SPEC
    table = read_alert_table(fixtures / name, spec)
    reference = build(table)
    for seed in (0, 1):
        shuffled, perm = _shuffled(table, history, seed)
        got, want = build(shuffled), reference.take(perm)
        for attr in ("alert_id", "object_id", "offsets", "time", "n_dropped", "reject"):
            np.testing.assert_array_equal(getattr(got, attr), getattr(want, attr))
        for i in range(len(got)):  # equal times may come in either order: compare as sets
            np.testing.assert_array_equal(batch_points(got, i), batch_points(want, i))
        ties = np.diff(want.time)[np.diff(want.owner) == 0] == 0
        if not ties.any():
            np.testing.assert_array_equal(got.flux, want.flux)


_DIGEST = """
import hashlib, sys
from astrot2.io import expand_inputs, read_file
h = hashlib.sha256()
for path in expand_inputs(sys.argv[1:]):
    b = read_file(path)
    for arr in (b.band, b.time, b.flux, b.flux_err, b.offsets):
        h.update(arr.tobytes())
    h.update("|".join(b.alert_id).encode())
print(h.hexdigest())
"""


def test_reading_does_not_depend_on_hash_seed(fixtures):
    """Band codes (and everything else) are identical whatever PYTHONHASHSEED is."""
    folders = [str(fixtures / f) for f in ("ztf", "rubin", "elasticc")]
    digests = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", _DIGEST, *folders], env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        digests.add(out.stdout.strip())
    assert len(digests) == 1 and len(digests.pop()) == 64
