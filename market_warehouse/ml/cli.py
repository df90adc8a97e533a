"""`mwh ml ...` and `mwh retrain ...`: the ML lifecycle from the command line (thin; the work is in
records.py, registry.py and queue.py).

    mwh ml load predictions|signals|agent-decisions|agent-episodes|training-runs|models PATH... [--strict]
    mwh ml register --name N --version V --type T --task classification --training-date D
                    [--metrics JSON] [--hyperparameters JSON] [--features a,b] [--feature-set-version S]
                    [--artifact PATH] [--artifact-store URL] [--training-run-id ID] [--activate]
    mwh ml activate NAME VERSION          mwh ml models [NAME]
    mwh retrain enqueue [--model NAME --reason TEXT --priority 1..5]   (no --model: the drift candidates)
    mwh retrain claim --worker ID [--lease SECONDS]
    mwh retrain complete REQUEST_ID --worker ID      mwh retrain fail REQUEST_ID --worker ID --error TEXT
    mwh retrain release-expired                      mwh retrain list [--status pending]
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from market_warehouse.config import load_target
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.queue import (
    QueueError,
    RetrainRequest,
    candidates,
    claim,
    complete,
    duckdb_file_lock,
    enqueue,
    fail,
    list_requests,
    release_expired,
)
from market_warehouse.ml.records import RecordsRejected, load_record_files
from market_warehouse.ml.registry import RegistryError, activate, register_model
from market_warehouse.ml.validate import KINDS


def _sink(args):
    return open_ml_sink(args.target)


@contextmanager
def _queue_sink(args) -> Iterator:
    """The queue's sink. DuckDB admits one process per file: take the queue's writer lock before
    opening it, so concurrent `mwh retrain` processes wait their turn instead of failing."""
    target = load_target(args.target)
    if target.type == "duckdb":
        with duckdb_file_lock(str(target.path)), open_ml_sink(target) as sink:
            yield sink
    else:
        with open_ml_sink(target) as sink:
            yield sink


def _json_arg(value: str | None, name: str) -> dict | None:
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"mwh: --{name}: not valid JSON ({exc.msg})") from exc
    if not isinstance(out, dict):
        raise SystemExit(f"mwh: --{name}: expected a JSON object")
    return out


def cmd_load(args) -> int:
    paths: list[str] = []
    for p in args.paths:
        paths.extend(sorted(glob.glob(p)) or [p])
    with _sink(args) as sink:
        reports = load_record_files(sink, args.kind, paths, strict=args.strict, file_format=args.file_format)
    failed = 0
    for r in reports:
        print(r.line())
        for ex in r.examples:
            print(f"        quarantined {ex}")
        failed += r.status != "success"
    print(f"{len(reports) - failed}/{len(reports)} files loaded, {sum(r.loaded for r in reports):,} new, "
          f"{sum(r.replaced for r in reports):,} replaced, {sum(r.quarantined for r in reports):,} quarantined")
    return 1 if failed else 0


def cmd_register(args) -> int:
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    with _sink(args) as sink:
        try:
            v = register_model(
                sink, args.name, args.version, args.type, args.task, args.training_date,
                metrics=_json_arg(args.metrics, "metrics"),
                hyperparameters=_json_arg(args.hyperparameters, "hyperparameters"),
                feature_columns=features, feature_set_version=args.feature_set_version,
                training_run_id=args.training_run_id, artifact=args.artifact, store=args.artifact_store,
                activate=args.activate, source="cli")
        except RecordsRejected as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 1
    print(f"registered {v.model_id}{' (active)' if v.is_active else ''}"
          + (f" artifact {v.artifact_uri} {v.artifact_checksum}" if v.artifact_uri else ""))
    return 0


def cmd_activate(args) -> int:
    with _sink(args) as sink:
        try:
            v = activate(sink, args.name, args.version)
        except RegistryError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 1
    print(f"active: {v.model_id}")
    return 0


def cmd_models(args) -> int:
    where = " where model_name = ?" if args.name else ""
    with _sink(args) as sink:
        rows = sink.query("select model_id, is_active, task, training_date, artifact_checksum "
                          f"from raw.ml_model_registry{where} order by model_name, model_version",
                          [args.name] if args.name else None)
    for mid, active, task, trained, checksum in rows:
        print(f"{'*' if active else ' '} {mid:<40} {task:<15} trained {trained:%Y-%m-%d}  {checksum or ''}")
    if not rows:
        print(f"no versions of model {args.name!r} registered" if args.name else
              "no models registered yet (register one with `mwh ml register`)")
    return 0


def cmd_enqueue(args) -> int:
    with _queue_sink(args) as sink:
        try:
            if args.model:
                reqs = [RetrainRequest(args.model, args.reason or "requested", args.priority,
                                       requested_by=args.requested_by)]
            else:
                reqs = candidates(sink)
            done = enqueue(sink, reqs)
        except QueueError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 1
    for model, rid in done:
        print(f"enqueued {model}: {rid}" if rid else f"skipped  {model}: a request is already pending")
    print(f"{sum(1 for _, r in done if r)} enqueued, {sum(1 for _, r in done if not r)} already pending")
    return 0


def cmd_claim(args) -> int:
    with _queue_sink(args) as sink:
        c = claim(sink, args.worker, args.lease)
    if c is None:
        print("nothing to claim")
        return 3
    print(json.dumps({"request_id": c.request_id, "model_name": c.model_name, "model_id": c.model_id,
                      "reason": c.reason, "priority": c.priority, "attempts": c.attempts,
                      "lease_expires_at": c.lease_expires_at.isoformat()}))
    return 0


def cmd_finish(args) -> int:
    with _queue_sink(args) as sink:
        try:
            if args.retrain_command == "complete":
                complete(sink, args.request_id, args.worker)
            else:
                fail(sink, args.request_id, args.worker, args.error, retry=args.retry)
        except QueueError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 1
    print(f"{args.retrain_command}: {args.request_id}")
    return 0


def cmd_release(args) -> int:
    with _queue_sink(args) as sink:
        print(f"{release_expired(sink)} expired claim(s) returned to pending")
    return 0


def cmd_list(args) -> int:
    with _queue_sink(args) as sink:
        for rid, model, prio, status, worker, attempts, at, reason in list_requests(sink, args.status):
            print(f"{rid}  {model:<24} p{prio} {status:<10} {worker or '-':<12} x{attempts} "
                  f"{at:%Y-%m-%d %H:%M}  {reason}")
    return 0


def register(sub) -> None:
    """Add `mwh ml` and `mwh retrain` to the mwh parser (called by market_warehouse.cli)."""
    ml = sub.add_parser("ml", help="ML lifecycle: load records, register and activate models")
    msub = ml.add_subparsers(dest="ml_command", required=True)

    load = msub.add_parser("load", help="load ML records from JSONL or CSV files")
    load.add_argument("kind", choices=sorted(KINDS), help="what the files hold")
    load.add_argument("paths", nargs="+", help="files or glob patterns (.jsonl, .csv, optionally .gz)")
    load.add_argument("--file-format", choices=["jsonl", "csv"], help="default: from the file name")
    load.add_argument("--strict", action="store_true", help="fail a file with any invalid row "
                                                            "(default: quarantine those rows, load the rest)")
    load.set_defaults(func=cmd_load)

    reg = msub.add_parser("register", help="register a model version (copies the artifact to the store)")
    reg.add_argument("--name", required=True, help="model name, e.g. aapl_direction")
    reg.add_argument("--version", required=True, help="version label, unique per model, e.g. 3")
    reg.add_argument("--type", required=True, help="algorithm, e.g. lightgbm")
    reg.add_argument("--task", required=True, choices=["classification", "regression"],
                     help="what it predicts: a class (direction) or a value (return)")
    reg.add_argument("--training-date", required=True, help="date (UTC) of the training data's end, YYYY-MM-DD")
    reg.add_argument("--metrics", help="JSON object, or @file")
    reg.add_argument("--hyperparameters", help="JSON object, or @file")
    reg.add_argument("--features", help="comma-separated feature column names")
    reg.add_argument("--feature-set-version", help="feature version trained on (e.g. v2 of fct_features_daily)")
    reg.add_argument("--training-run-id", help="the training run (mwh ml load training-runs) it came from")
    reg.add_argument("--artifact", help="model file to copy into the artifact store")
    reg.add_argument("--artifact-store", help="directory or fsspec URL (default MWH_ARTIFACT_STORE or ./artifacts)")
    reg.add_argument("--activate", action="store_true", help="make this the model's active version")
    reg.set_defaults(func=cmd_register)

    act = msub.add_parser("activate", help="make one version active (the others inactive), atomically")
    act.add_argument("name", help="model name")
    act.add_argument("version", help="the version to make active")
    act.set_defaults(func=cmd_activate)

    models = msub.add_parser("models", help="list registered versions (* = active)")
    models.add_argument("name", nargs="?", help="only this model (default: every model)")
    models.set_defaults(func=cmd_models)

    rt = sub.add_parser("retrain", help="the retrain queue: enqueue, claim, complete, fail")
    rsub = rt.add_subparsers(dest="retrain_command", required=True)
    enq = rsub.add_parser("enqueue", help="enqueue drift candidates (or one --model); never twice while pending")
    enq.add_argument("--model", help="a model name (default: every row of marts.fct_model_retrain_candidates)")
    enq.add_argument("--reason", help="why (with --model; default: requested)")
    enq.add_argument("--priority", type=int, default=3, choices=range(1, 6), metavar="1..5",
                     help="1 most urgent .. 5 (default 3)")
    enq.add_argument("--requested-by", help="who asks (recorded with the request)")
    enq.set_defaults(func=cmd_enqueue)
    cl = rsub.add_parser("claim", help="claim the most urgent request (prints it as JSON; exit 3 if none)")
    cl.add_argument("--worker", required=True, help="this worker's name (recorded as the claimant)")
    cl.add_argument("--lease", type=int, default=15 * 60, help="seconds before an unfinished claim expires")
    cl.set_defaults(func=cmd_claim)
    for name in ("complete", "fail"):
        p = rsub.add_parser(name, help=f"mark a claimed request {'completed' if name == 'complete' else 'failed'}")
        p.add_argument("request_id", help="the request's id, as claim printed it")
        p.add_argument("--worker", required=True, help="the worker that claimed it")
        if name == "fail":
            p.add_argument("--error", required=True, help="what went wrong (recorded)")
            p.add_argument("--retry", action="store_true", help="back to pending instead of failed")
        p.set_defaults(func=cmd_finish)
    rel = rsub.add_parser("release-expired", help="return expired claims to pending")
    rel.set_defaults(func=cmd_release)
    ls = rsub.add_parser("list", help="requests, oldest first")
    ls.add_argument("--status", choices=["pending", "processing", "completed", "failed"],
                    help="only requests in this state")
    ls.set_defaults(func=cmd_list)
