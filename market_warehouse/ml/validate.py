"""The rules each ML record kind must meet. Pure: given typed rows (coerce.py) and what the registry holds,
say per row why it cannot be loaded ("" = loadable). Several reasons are joined by "; ".

Common to all kinds: a time in the future (more than FUTURE_SKEW ahead of now) is rejected; so is a
key seen twice in one batch with different values (which copy is right cannot be told).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from market_warehouse.loaders.schema import AUDIT_COLUMNS, Table
from market_warehouse.loaders.sources.common import FormatError
from market_warehouse.ml import schema as s
from market_warehouse.ml.coerce import coerce, records_json

FUTURE_SKEW = pd.Timedelta(minutes=5)
CLASSES = ("up", "down", "flat")
SIGNAL_TYPES = ("BUY", "SELL", "HOLD")
SIGNAL_STATUSES = ("ACTIVE", "EXECUTED", "EXPIRED")
RUN_STATUSES = ("running", "completed", "failed")
TASKS = ("classification", "regression")


@dataclass
class Context:
    """What the rules may consult besides the rows: the registry's model ids, and the clock."""

    known_models: frozenset[str] = frozenset()
    now: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))


Rule = Callable[[pd.DataFrame, Context], pd.Series]


@dataclass(frozen=True)
class Kind:
    """One record kind: its table, the defaults of optional fields, its rules and its time columns."""

    name: str
    table: Table
    rules: Rule
    defaults: dict = field(default_factory=dict)
    # Required columns the write path fills from what is stored (the registry's flag and times).
    filled: tuple[str, ...] = ()


class Reasons:
    """Accumulates per-row reasons."""

    def __init__(self, index: pd.Index):
        self.values = pd.Series("", index=index, dtype=object)

    def add(self, mask: pd.Series | np.ndarray, text: str) -> None:
        mask = pd.Series(mask, index=self.values.index).fillna(False).astype(bool)
        if mask.any():
            cur = self.values[mask]
            self.values[mask] = np.where(cur == "", text, cur + "; " + text)


def _not_in(series: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    return series.notna() & ~series.isin(allowed)


def _outside(series: pd.Series, lo: float, hi: float) -> pd.Series:
    return series.notna() & ((series < lo) | (series > hi))


def _future(r: Reasons, frame: pd.DataFrame, ctx: Context, columns: tuple[str, ...]) -> None:
    limit = ctx.now + FUTURE_SKEW
    for col in columns:
        r.add(frame[col] > limit, f"{col} in the future")


def _unknown_model(r: Reasons, ids: pd.Series, ctx: Context) -> None:
    r.add(ids.notna() & ~ids.isin(ctx.known_models), "unknown model version (not in ml_model_registry)")


def prediction_rules(p: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(p.index)
    _unknown_model(r, p["model_id"], ctx)
    r.add(_not_in(p["predicted_class"], CLASSES), f"predicted_class not one of {', '.join(CLASSES)}")
    r.add(_outside(p["probability"], 0.0, 1.0), "probability outside [0, 1]")
    r.add(p["predicted_class"].isna() & p["predicted_value"].isna(),
          "neither predicted_class nor predicted_value")
    r.add(p["predicted_class"].notna() & p["probability"].isna(), "predicted_class without probability")
    r.add(p["horizon_bars"].notna() & (p["horizon_bars"] < 1), "horizon_bars below 1")
    r.add(p["latency_ms"].notna() & (p["latency_ms"] < 0), "negative latency_ms")
    _future(r, p, ctx, ("bar_ts", "predicted_at"))
    return r.values


def signal_rules(g: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(g.index)
    _unknown_model(r, g["model_id"], ctx)
    r.add(_not_in(g["signal_type"], SIGNAL_TYPES), f"signal_type not one of {', '.join(SIGNAL_TYPES)}")
    r.add(_not_in(g["status"], SIGNAL_STATUSES), f"status not one of {', '.join(SIGNAL_STATUSES)}")
    r.add(_outside(g["confidence"], 0.0, 1.0), "confidence outside [0, 1]")
    buy, sell = g["signal_type"] == "BUY", g["signal_type"] == "SELL"
    trade = buy | sell
    entry, target, stop = g["entry_price"], g["target_price"], g["stop_price"]
    r.add(trade & entry.isna(), "BUY/SELL signal without entry_price")
    for name, col in (("entry_price", entry), ("target_price", target), ("stop_price", stop),
                      ("execution_price", g["execution_price"]), ("exit_price", g["exit_price"])):
        r.add(col.notna() & (col <= 0), f"{name} not positive")
    r.add(buy & stop.notna() & (stop >= entry), "BUY stop_price not below entry_price")
    r.add(sell & stop.notna() & (stop <= entry), "SELL stop_price not above entry_price")
    r.add(buy & target.notna() & (target <= entry), "BUY target_price not above entry_price")
    r.add(sell & target.notna() & (target >= entry), "SELL target_price not below entry_price")
    r.add(g["max_holding_bars"].notna() & (g["max_holding_bars"] < 1), "max_holding_bars below 1")
    r.add(g["exit_ts"].notna() & (g["exit_ts"] < g["signal_ts"]), "exit_ts before signal_ts")
    r.add(g["latency_ms"].notna() & (g["latency_ms"] < 0), "negative latency_ms")
    _future(r, g, ctx, ("signal_ts", "exit_ts"))
    return r.values


def decision_rules(d: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(d.index)
    r.add(_outside(d["confidence"], 0.0, 1.0), "confidence outside [0, 1]")
    _future(r, d, ctx, ("decision_ts",))
    return r.values


def episode_rules(e: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(e.index)
    r.add(e["episode_length"].notna() & (e["episode_length"] < 0), "negative episode_length")
    r.add(e["started_at"].notna() & (e["ended_at"] < e["started_at"]), "ended_at before started_at")
    _future(r, e, ctx, ("started_at", "ended_at"))
    return r.values


def training_run_rules(t: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(t.index)
    r.add(_not_in(t["status"], RUN_STATUSES), f"status not one of {', '.join(RUN_STATUSES)}")
    r.add(t["ended_at"].notna() & (t["ended_at"] < t["started_at"]), "ended_at before started_at")
    r.add(t["data_end"].notna() & t["data_start"].notna() & (t["data_end"] < t["data_start"]),
          "data_end before data_start")
    r.add(t["sample_count"].notna() & (t["sample_count"] < 0), "negative sample_count")
    _future(r, t, ctx, ("started_at", "ended_at", "data_end"))
    return r.values


def model_rules(m: pd.DataFrame, ctx: Context) -> pd.Series:
    r = Reasons(m.index)
    r.add(_not_in(m["task"], TASKS), f"task not one of {', '.join(TASKS)}")
    named = m["model_id"].notna() & m["model_name"].notna() & m["model_version"].notna()
    expected = m["model_name"].astype(str) + "@" + m["model_version"].astype(str)
    r.add(named & (m["model_id"] != expected), "model_id is not <model_name>@<model_version>")
    _future(r, m, ctx, ("training_date",))
    return r.values


KINDS: dict[str, Kind] = {
    "predictions": Kind("predictions", s.PREDICTIONS, prediction_rules,
                        defaults={"exchange": "US", "bar_interval": "1d", "horizon_bars": 1}),
    "signals": Kind("signals", s.SIGNALS, signal_rules,
                    defaults={"exchange": "US", "bar_interval": "1d", "status": "ACTIVE"}),
    "agent-decisions": Kind("agent-decisions", s.AGENT_DECISIONS, decision_rules,
                            defaults={"exchange": "US"}),
    "agent-episodes": Kind("agent-episodes", s.AGENT_EPISODES, episode_rules),
    "training-runs": Kind("training-runs", s.TRAINING_RUNS, training_run_rules),
    "models": Kind("models", s.MODEL_REGISTRY, model_rules,
                   filled=("is_active", "created_at", "updated_at")),
}


class HeaderError(FormatError):
    """A record file whose columns are not the kind's: nothing of it is loaded."""


# Columns a file may carry besides the table's: a model named by its parts instead of model_id.
MODEL_ID_PARTS = ("model_name", "model_version")


def check_header(kind: Kind, raw: pd.DataFrame, source: str) -> None:
    """Refuse a file whose columns cannot be the kind's, naming them, as the market loader does with a
    wrong header: a column the table does not have (a typo would otherwise be dropped silently), or a
    required one that no row carries (model_id may come as model_name + model_version). Audit columns
    (source, run_id, loaded_at) are allowed and ignored."""
    table = kind.table
    columns = [str(c) for c in raw.columns if c != "_line"]
    known = set(table.column_names) | set(MODEL_ID_PARTS) | set(AUDIT_COLUMNS)
    unknown = [c for c in columns if c not in known]
    have = set(columns)
    if "model_id" in table.column_names and set(MODEL_ID_PARTS) <= have:
        have.add("model_id")
    missing = [c.name for c in table.columns
               if not c.nullable and c.name not in have and c.name not in AUDIT_COLUMNS
               and c.name not in kind.defaults and c.name not in kind.filled]
    if not (unknown or missing) or not columns:
        return
    what = "; ".join(part for part in (
        f"unknown column(s) {', '.join(unknown)}" if unknown else "",
        f"missing required column(s) {', '.join(missing)}" if missing else "") if part)
    raise HeaderError(f"{source}: not {kind.name} records: {what} (the {kind.name} columns are "
                      f"{', '.join(c for c in table.column_names if c not in AUDIT_COLUMNS)}); nothing loaded")


def prepare_model_ids(raw: pd.DataFrame) -> pd.DataFrame:
    """Rows may name a model by model_id or by model_name + model_version; fill model_id from the pair."""
    if "model_name" in raw.columns and "model_version" in raw.columns:
        raw = raw.copy()
        pair = raw["model_name"].notna() & raw["model_version"].notna()
        derived = raw["model_name"].astype(str).str.strip() + "@" + raw["model_version"].astype(str).str.strip()
        if "model_id" not in raw.columns:
            raw["model_id"] = None
        missing = raw["model_id"].isna() | (raw["model_id"].astype(str).str.strip() == "")
        raw.loc[pair & missing, "model_id"] = derived[pair & missing]
    return raw


@dataclass
class Checked:
    """A batch after coercion and rules: what may be written and what goes to quarantine."""

    valid: pd.DataFrame  # typed data columns of loadable rows (+ _row_number), unique on the table key
    rejected: pd.DataFrame  # row_number, record, reason
    duplicates_in_source: int  # identical repeats of a key dropped before writing
    rows_read: int


def check_records(kind: Kind, raw: pd.DataFrame, row_numbers: pd.Series, ctx: Context,
                  read_errors: pd.Series | None = None) -> Checked:
    """Coerce, apply the kind's rules and the in-batch key rule; pure."""
    raw = prepare_model_ids(raw.reset_index(drop=True))
    row_numbers = pd.Series(list(row_numbers), index=raw.index)
    typed = coerce(raw, kind.table, defaults=kind.defaults, optional=kind.filled)
    frame = typed.frame
    reasons = typed.errors.copy()
    if read_errors is not None:
        read = pd.Series(list(read_errors), index=raw.index)
        reasons = pd.Series(np.where(read != "", read, reasons), index=raw.index)
    # Rules see every row (a field that did not parse is null and passes them), so a row's reasons
    # are all reported at once.
    rules = kind.rules(frame, ctx)
    reasons = pd.Series(np.where(reasons == "", rules, np.where(rules == "", reasons, reasons + "; " + rules)),
                        index=raw.index)

    key = list(kind.table.key)
    ok = reasons == ""
    duplicates = 0
    dup_any = frame[ok].duplicated(subset=key, keep=False)
    if dup_any.any():
        dups = frame[ok][dup_any]
        compare = kind.table.compare_columns
        text = dups[compare].astype(str)
        for _, group in text.groupby([dups[k].astype(str) for k in key], sort=False):
            if len(group.drop_duplicates()) > 1:
                where = ", ".join(str(n) for n in row_numbers.loc[group.index])
                label = ", ".join(str(frame.loc[group.index[0], k]) for k in key)
                reasons.loc[group.index] = f"duplicate key ({label}) with different values on rows {where}"
            else:
                duplicates += len(group) - 1
                reasons.loc[group.index[1:]] = "\0dup"  # dropped, counted, not quarantined
    bad = reasons.index[(reasons != "") & (reasons != "\0dup")]
    rejected = pd.DataFrame({
        "row_number": row_numbers.loc[bad].astype("int64").values,
        "record": records_json(raw, bad),
        "reason": reasons.loc[bad].values,
    })
    valid = frame.assign(_row_number=row_numbers)[reasons == ""].reset_index(drop=True)
    return Checked(valid=valid, rejected=rejected, duplicates_in_source=duplicates, rows_read=len(raw))
