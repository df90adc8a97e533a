"""The model registry: content-addressed artifacts, re-registration, atomic activation."""

from __future__ import annotations

import hashlib
import threading

import psycopg
import pytest

from market_warehouse.cli import main as mwh
from market_warehouse.ml import registry
from market_warehouse.ml.artifacts import ArtifactError, ArtifactStore
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.records import RecordsRejected


@pytest.fixture(autouse=True)
def _no_registry_history(monkeypatch):
    """These tests are about the registry's own rows. Capturing each change into the registry history
    runs a dbt snapshot per change (25 in the concurrent test: 172 s of its 176 s); the history has its
    own test, tests/python/ml/test_ml_asof.py::test_every_registry_change_reaches_the_history."""
    monkeypatch.setenv("MWH_REGISTRY_HISTORY", "off")



def _register(sink, version: str, activate: bool = False, **kw):
    return registry.register_model(sink, "m", version, "lightgbm", "classification", "2024-01-01T00:00:00Z",
                                   metrics={"accuracy": 0.6}, activate=activate, **kw)


def _state(sink) -> dict[str, tuple]:
    return {m: (a, u) for m, a, u in sink.query(
        "select model_id, is_active, updated_at from raw.ml_model_registry order by model_id")}


def test_artifact_store_is_content_addressed(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    a = tmp_path / "model.pkl"
    a.write_bytes(b"weights v1")
    b = tmp_path / "copy_of_model.pkl"
    b.write_bytes(b"weights v1")
    first, second = store.put(a), store.put(b)
    digest = hashlib.sha256(b"weights v1").hexdigest()
    assert first.checksum == second.checksum == f"sha256:{digest}"
    assert first.uri == second.uri and first.uri.endswith(f"sha256/{digest[:2]}/{digest}.pkl")
    store.verify(first.uri, first.checksum)
    with open(first.uri, "wb") as f:
        f.write(b"tampered")
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        store.verify(first.uri, first.checksum)
    with pytest.raises(ArtifactError, match="not found"):
        store.put(tmp_path / "missing.pkl")
    with pytest.raises(ArtifactError, match="needs fsspec|No such|not"):
        # A remote store needs fsspec (optional); without it the error says so.
        ArtifactStore("s3://bucket/models").put(a)


def test_register_activate_and_history_times(ml_any, tmp_path):
    art = tmp_path / "m1.bin"
    art.write_bytes(b"\x00\x01model")
    v1 = _register(ml_any, "1", activate=True, artifact=art, store=tmp_path / "store")
    assert v1.is_active and v1.artifact_checksum == "sha256:" + hashlib.sha256(b"\x00\x01model").hexdigest()
    _register(ml_any, "2")
    before = _state(ml_any)
    assert before["m@1"][0] is True and before["m@2"][0] is False

    # Registering v2 again unchanged: a duplicate; nothing moves, v1 stays active.
    _register(ml_any, "2")
    assert _state(ml_any) == before

    registry.activate(ml_any, "m", "2")
    after = _state(ml_any)
    assert after["m@1"][0] is False and after["m@2"][0] is True
    # Both flags changed in one transaction, at one time: v1's period ends where v2's begins.
    assert after["m@1"][1] == after["m@2"][1] > before["m@2"][1]

    with pytest.raises(registry.RegistryError, match="unknown model version m@9 .registered: 1, 2."):
        registry.activate(ml_any, "m", "9")
    registry.update_metrics(ml_any, "m@1", {"accuracy": 0.4})
    assert ml_any.query("select metrics from raw.ml_model_registry where model_id = 'm@1'")[0][0] in (
        '{"accuracy": 0.4}', {"accuracy": 0.4})
    with pytest.raises(RecordsRejected, match="task not one of classification, regression"):
        registry.register_model(ml_any, "m", "3", "x", "ranking", "2024-01-01")


def test_one_active_version_is_enforced_by_postgres(ml_timescale):
    _register(ml_timescale, "1", activate=True)
    _register(ml_timescale, "2")
    with pytest.raises(psycopg.errors.UniqueViolation):
        ml_timescale.query("update raw.ml_model_registry set is_active = true where model_id = 'm@2'")


def test_concurrent_activations_leave_one_active(timescale_target):
    with open_ml_sink(timescale_target) as sink:
        for v in "12345":
            _register(sink, v)
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def worker(version: str) -> None:
        try:
            with open_ml_sink(timescale_target) as sink:
                barrier.wait()
                for _ in range(5):
                    registry.activate(sink, "m", version)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(v,)) for v in "12345"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with open_ml_sink(timescale_target) as sink:
        assert sink.query("select count(*) from raw.ml_model_registry where is_active") == [(1,)]


def test_mwh_ml_register_and_activate(duckdb_target, tmp_path, capsys):
    art = tmp_path / "model.onnx"
    art.write_bytes(b"onnx")
    store = tmp_path / "store"
    args = ["ml", "register", "--name", "cli_model", "--type", "xgboost", "--task", "regression",
            "--training-date", "2024-01-01", "--metrics", '{"rmse": 0.1}', "--features", "a,b",
            "--artifact", str(art), "--artifact-store", str(store)]
    assert mwh([*args, "--version", "1", "--activate"]) == 0
    assert mwh([*args, "--version", "2"]) == 0
    assert mwh(["ml", "activate", "cli_model", "2"]) == 0
    assert mwh(["ml", "activate", "cli_model", "3"]) == 1
    assert mwh(["ml", "models", "cli_model"]) == 0
    out = capsys.readouterr()
    assert "active: cli_model@2" in out.out and "unknown model version cli_model@3" in out.err
    assert "* cli_model@2" in out.out and "  cli_model@1" in out.out
    assert len(list(store.rglob("*.onnx"))) == 1  # one artifact content, stored once
