"""Reader fuzzing on the committed corpus ``tests/data/fuzz`` (``make_fuzz_corpus.py``).

Every truncated, bit-flipped or zeroed real alert file must give a typed
:class:`~astrot2.errors.AlertFormatError` naming it, or light curves that classify into one
valid row per alert: never an untyped exception, a hang or a crash of the interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrot2.classify import classify_batch
from astrot2.errors import AlertFormatError
from astrot2.io import read_file

CORPUS = Path(__file__).resolve().parent / "data" / "fuzz"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text())


def _read_or_refuse(path: Path):
    """The batch read from ``path``, or None when it is refused with an error naming it."""
    try:
        return read_file(path)
    except AlertFormatError as exc:
        assert exc.path == str(path) and path.name in str(exc), exc
        return None


def test_manifest_lists_exactly_the_corpus():
    files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()}
    assert files - {"MANIFEST.json"} == set(MANIFEST)
    assert len(MANIFEST) >= 100
    assert {m["source"] for m in MANIFEST.values()} >= {
        "ztf_transfer_2.avro", "ztf_fink_3.parquet", "elasticc_single.avro.gz",
        "rubin_raw_3.parquet", "plasticc_lc.csv", "plasticc_lc.csv.gz"}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_damaged_file_is_refused_or_read(name):
    """Refused with a typed error naming the file, or one light curve per alert it holds."""
    info = MANIFEST[name]
    batch = _read_or_refuse(CORPUS / name)
    if batch is None:
        return
    assert batch.survey.name == name.split("/")[0]
    if info["source"].endswith((".avro", ".avro.gz", ".parquet")):
        # a binary container is either refused or still holds every alert (a damaged value)
        assert len(batch) == info["source_alerts"], info
    else:  # CSV: a flipped digit of object_id can split an object, a cut can drop one
        assert 1 <= len(batch) <= info["source_alerts"] + 8, info
    assert len(set(batch.alert_id)) == len(batch) or info["source"].startswith("plasticc")


def test_damage_is_noticed():
    """The corpus exercises both outcomes: most files refused, some read despite damage."""
    outcomes = [_read_or_refuse(CORPUS / name) is None for name in sorted(MANIFEST)]
    assert 0.5 * len(outcomes) < sum(outcomes) < len(outcomes)
    for name, info in MANIFEST.items():  # a cut Parquet footer is always noticed
        if info["source"].endswith(".parquet") and "truncated" in info["damage"]:
            assert _read_or_refuse(CORPUS / name) is None, name


@pytest.mark.parametrize("survey", ["lsst", "ztf"])
def test_what_is_read_classifies_one_row_per_alert(survey, request):
    """Light curves read from damaged files classify like any others."""
    from astrot2.runtime import Classifier

    if survey == "lsst":
        clf = request.getfixturevalue("lsst_classifier")
    else:
        clf = Classifier.load(request.getfixturevalue("ztf_model"), threads=1)
    n_read = 0
    for name in sorted(n for n in MANIFEST if n.startswith(survey + "/")):
        batch = _read_or_refuse(CORPUS / name)
        if batch is None:
            continue
        table = classify_batch(clf, batch)
        n_read += 1
        assert table.column("alert_id").to_pylist() == list(batch.alert_id)
        probs = np.column_stack([table.column(c).to_numpy(zero_copy_only=False)
                                 for c in table.column_names if c.startswith("p_")])
        ok = np.array(table.column("status").to_pylist()) == "ok"
        assert np.isfinite(probs).all()
        np.testing.assert_allclose(probs[ok].sum(axis=1), 1.0, atol=1e-5)
    assert n_read >= 3


def _wrong_types(n: int) -> dict[str, pa.Array]:
    """Values of the wrong type for any alert field."""
    return {"text": pa.array(["abc"] * n), "bytes": pa.array([b"\x00\xff"] * n),
            "list": pa.array([["x"]] * n), "struct": pa.array([{"q": 1}] * n)}


def _with_child(arr: pa.StructArray, name: str, new: pa.Array) -> pa.StructArray:
    names = [arr.type.field(i).name for i in range(arr.type.num_fields)]
    children = [new if k == name else arr.field(i) for i, k in enumerate(names)]
    return pa.StructArray.from_arrays(children, names=names, mask=arr.is_null())


@pytest.mark.parametrize("fixture, column, fields", [
    ("ztf/fink_4.02_10.parquet", "candidate", ["jd", "fid", "magpsf", "isdiffpos"]),
    ("ztf/fink_4.02_10.parquet", "prv_candidates", ["jd", "magpsf"]),
    ("ztf/fink_4.02_10.parquet", "objectId", []),
    ("rubin/rubin_raw_5.parquet", "diaSource", ["midpointMjdTai", "band", "psfFlux",
                                                "diaSourceId"]),
    ("rubin/rubin_raw_5.parquet", "diaObject", ["diaObjectId"]),
    ("elasticc/elasticc_snia_20.parquet", "prvDiaSources", ["psFlux", "filterName"]),
    ("elasticc/elasticc_snia_20.parquet", "alertId", []),
])
def test_fields_of_the_wrong_type_name_the_file(fixtures, tmp_path, fixture, column, fields):
    """A well-formed file whose fields have unexpected types (a string where a number is
    due, a struct where a string is...) is a bad file too, not a pyarrow exception."""
    table = pq.read_table(fixtures / fixture)
    index = table.column_names.index(column)
    arr = table.column(column).combine_chunks()
    variants = {}
    for field in fields or [None]:
        if field is None:  # the column itself
            variants.update({f"{column}_{k}": v for k, v in _wrong_types(len(arr)).items()})
        elif pa.types.is_list(arr.type):
            flat = arr.flatten()
            for kind, new in _wrong_types(len(flat)).items():
                variants[f"{column}.{field}_{kind}"] = pa.ListArray.from_arrays(
                    arr.offsets, _with_child(flat, field, new), mask=arr.is_null())
        else:
            for kind, new in _wrong_types(len(arr)).items():
                variants[f"{column}.{field}_{kind}"] = _with_child(arr, field, new)
    refused = 0
    for tag, new in variants.items():
        path = tmp_path / f"{tag}.parquet"
        pq.write_table(table.set_column(index, column, new), path)
        refused += _read_or_refuse(path) is None
    assert refused >= len(variants) // 2  # some (an id as a struct...) may still read


_CHILD = """
import json, sys
from pathlib import Path
from astrot2.errors import AlertFormatError
from astrot2.io import FORMATS, read_file
corpus = Path(sys.argv[1])
out = {"refused": 0, "read": 0}
for name in sorted(json.loads((corpus / "MANIFEST.json").read_text())):
    for fmt in (None, *FORMATS):  # detected, then every reader forced onto the file
        try:
            read_file(corpus / name, fmt)
            out["read"] += 1
        except AlertFormatError:
            out["refused"] += 1
print(json.dumps(out))
"""


def test_corpus_in_a_child_process_never_crashes_nor_hangs():
    """Every file with every reader, in a separate interpreter under a time limit: a
    segfault or an untyped exception fails the child, a hang the timeout."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(CORPUS)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout)
    assert seen["refused"] + seen["read"] == 5 * len(MANIFEST)
    assert seen["refused"] > seen["read"] > 0


def test_classify_cli_skips_the_damaged_files(tmp_path):
    """``astrot2 classify --on-error skip`` over the lsst corpus: every file classified or
    listed, one row per alert read and one ``bad_file`` row per unreadable file, exit
    status 0; ``fail`` stops and writes nothing."""
    folder = CORPUS / "lsst"
    out = tmp_path / "out.parquet"
    cmd = [sys.executable, "-m", "astrot2.cli", "classify", str(folder), "-o", str(out),
           "--model", "lsst", "--threads", "1", "--quiet"]
    proc = subprocess.run([*cmd, "--on-error", "skip"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    skipped = {Path(s["path"]).name for s in summary["skipped_files"]}
    readable = {}
    for name in sorted(n for n in MANIFEST if n.startswith("lsst/")):
        batch = _read_or_refuse(CORPUS / name)
        if batch is not None:
            readable[Path(name).name] = list(batch.alert_id)
    assert skipped == {Path(n).name for n in MANIFEST if n.startswith("lsst/")} - set(readable)
    assert json.loads((tmp_path / "out.parquet.errors.json").read_text()) == \
        summary["skipped_files"]
    names = sorted(Path(n).name for n in MANIFEST if n.startswith("lsst/"))
    expected = [a for name in names for a in readable.get(name, [""])]
    table = pq.read_table(out)
    assert table.column("alert_id").to_pylist() == expected
    bad = [s for s in table.column("status").to_pylist() if s.startswith("bad_file")]
    assert bad == [f"bad_file: {s['error']}" for s in summary["skipped_files"]]
    proc = subprocess.run([*cmd, "-o", str(tmp_path / "fail.parquet")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "astrot2: error: file " in proc.stderr
    assert not (tmp_path / "fail.parquet").exists()
