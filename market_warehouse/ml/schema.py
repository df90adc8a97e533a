"""The ML lifecycle's raw tables, declared once with market_warehouse.loaders.schema.Table (DDL on every target comes from
here, and `mwh schema --write` generates models/staging/ml/_ml__sources.yml from it).

Conventions: times are UTC timestamptz; JSON columns hold objects (metrics, hyperparameters, feature
vectors, agent states) or arrays (feature columns, symbols), serialised with sorted keys so that equal
values compare equal; `bar_interval` is the bars' `interval` (1m, 1h, 1d, ...).
"""

from __future__ import annotations

from market_warehouse.loaders.schema import AUDIT_COLUMNS, BARS, Column, Table

# The audit columns every loaded row carries (source, run_id, loaded_at), as the market tables declare them.
_AUDIT = tuple(c for c in BARS.columns if c.name in AUDIT_COLUMNS)
# Predictions and signals arrive daily at least: warn after 4 days without one, fail after a week.
_DAILY_FRESHNESS = {"warn_after": {"count": 4, "period": "day"}, "error_after": {"count": 7, "period": "day"}}

MODEL_REGISTRY = Table(
    name="ml_model_registry",
    description="Model versions: one row per (model_name, model_version), with training metrics, the "
                "artifact's checksum, and whether it is the model's active version.",
    columns=(
        Column("model_id", "text", False, "`<model_name>@<model_version>`: the key predictions refer to."),
        Column("model_name", "text", False, "The model (a family of versions), e.g. `aapl_direction`."),
        Column("model_version", "text", False, "Version label, e.g. `1`, `2024-05-01`, `v3.2`."),
        Column("model_type", "text", False, "Algorithm: lightgbm, xgboost, logistic, lstm, ppo, ..."),
        Column("task", "text", False, "`classification` (predicts up/down/flat) or `regression` (a return)."),
        Column("training_date", "timestamp", False, "When the version was trained (UTC)."),
        Column("metrics", "json", True,
               "Training/validation metrics, JSON object. `accuracy` and `accuracy_std` set the "
               "performance-drift baseline."),
        Column("hyperparameters", "json", True, "Hyperparameters, JSON object."),
        Column("feature_columns", "json", True, "Names of the features the model reads, JSON array."),
        Column("feature_set_version", "text", True, "Version of the feature set, e.g. `features_daily_v1`."),
        Column("training_run_id", "text", True, "The training run (ml_training_runs) that produced it."),
        Column("artifact_uri", "text", True, "Where the artifact is in the content-addressed store."),
        Column("artifact_checksum", "text", True, "`sha256:<hex>` of the artifact's bytes."),
        Column("is_active", "boolean", False, "The model's active version; at most one per model_name."),
        Column("created_at", "timestamp", False, "First registration (UTC)."),
        Column("updated_at", "timestamp", False,
               "Last change of metrics or active flag (UTC); the snapshot's change timestamp."),
        *_AUDIT,
    ),
    key=("model_id",),
)

TRAINING_RUNS = Table(
    name="ml_training_runs",
    description="Training runs: what was trained on which data, how long it took and how it ended.",
    columns=(
        Column("training_run_id", "text", False, "Run identifier, as the training code names it."),
        Column("model_name", "text", False, "The model trained."),
        Column("started_at", "timestamp", False, "Start (UTC)."),
        Column("ended_at", "timestamp", True, "End (UTC); null while running."),
        Column("status", "text", False, "`running`, `completed` or `failed`."),
        Column("data_start", "timestamp", True, "First bar time of the training data (UTC)."),
        Column("data_end", "timestamp", True, "Last bar time of the training data (UTC)."),
        Column("symbols", "json", True, "Symbols trained on, JSON array."),
        Column("sample_count", "bigint", True, "Training samples."),
        Column("parameters", "json", True, "Run parameters, JSON object."),
        Column("error_log", "text", True, "Error output of a failed run."),
        Column("created_by", "text", True, "Who or what started the run."),
        *_AUDIT,
    ),
    key=("training_run_id",),
)

PREDICTIONS = Table(
    name="ml_predictions",
    description="Model predictions: one per model version, bar and horizon.",
    columns=(
        Column("model_id", "text", False, "`<model_name>@<model_version>`; must be registered."),
        Column("symbol", "text", False, "Ticker, as in raw.bars."),
        Column("exchange", "text", False, "Exchange code, as in raw.bars (default US)."),
        Column("bar_interval", "text", False, "Interval of the bars predicted (as raw.bars.interval)."),
        Column("bar_ts", "timestamp", False,
               "Open time of the last bar the model saw; the prediction is for the close of the bar "
               "`horizon_bars` bars later, relative to this bar's close."),
        Column("horizon_bars", "integer", False, "How many bars ahead (>= 1)."),
        Column("predicted_at", "timestamp", False, "When the prediction was made (UTC)."),
        Column("predicted_class", "text", True, "Classification: `up`, `down` or `flat`."),
        Column("probability", "double", True, "Classification: the model's probability of predicted_class."),
        Column("predicted_value", "double", True, "Regression: the predicted return over the horizon."),
        Column("latency_ms", "double", True, "Inference latency in milliseconds."),
        Column("features", "json", True, "The feature vector used, JSON object name -> number."),
        *_AUDIT,
    ),
    key=("model_id", "symbol", "exchange", "bar_interval", "bar_ts", "horizon_bars"),
    freshness=_DAILY_FRESHNESS,
    hypertable_time="bar_ts",
    chunk_interval="30 days",
    indexes=(("model_id", "bar_ts desc"),),
)

SIGNALS = Table(
    name="ml_signals",
    description="Trading signals of strategies and models; outcomes are computed from bars when the "
                "user does not supply them.",
    columns=(
        Column("strategy", "text", False, "The strategy (or model name) that issued the signal."),
        Column("model_id", "text", True, "`<model_name>@<model_version>` if a registered model issued it."),
        Column("symbol", "text", False, "Ticker, as in raw.bars."),
        Column("exchange", "text", False, "Exchange code (default US)."),
        Column("bar_interval", "text", False, "Bars the outcome is judged on (default 1d)."),
        Column("signal_ts", "timestamp", False,
               "Open time of the bar on whose close the signal was issued; outcomes start at the next bar."),
        Column("signal_type", "text", False, "`BUY`, `SELL` or `HOLD`."),
        Column("strength", "double", True, "Signal strength, strategy-defined scale."),
        Column("confidence", "double", True, "Confidence in [0, 1]."),
        Column("entry_price", "double", True, "Intended entry price (BUY/SELL: required)."),
        Column("target_price", "double", True, "Take-profit level."),
        Column("stop_price", "double", True, "Stop-loss level."),
        Column("expected_return", "double", True, "Expected return, as a fraction."),
        Column("risk_reward", "double", True, "Expected reward / risk as the strategy stated it."),
        Column("max_holding_bars", "integer", True,
               "Bars after which an untriggered signal expires (default: var ml_signal_max_holding_bars)."),
        Column("status", "text", False, "`ACTIVE`, `EXECUTED` or `EXPIRED`."),
        Column("execution_price", "double", True, "Actual fill price, when executed."),
        Column("exit_price", "double", True, "Actual exit price, when the user supplies it."),
        Column("exit_ts", "timestamp", True, "Actual exit time, when supplied."),
        Column("realized_pnl", "double", True, "Realized P&L per unit, when supplied."),
        Column("latency_ms", "double", True, "Signal generation latency in milliseconds."),
        *_AUDIT,
    ),
    key=("strategy", "symbol", "exchange", "bar_interval", "signal_ts"),
    freshness=_DAILY_FRESHNESS,
    hypertable_time="signal_ts",
    chunk_interval="30 days",
)

AGENT_DECISIONS = Table(
    name="ml_agent_decisions",
    description="Decisions of reinforcement-learning agents, one per agent, symbol and time.",
    columns=(
        Column("agent_id", "text", False, "The agent."),
        Column("episode", "bigint", True, "Episode number the decision belongs to."),
        Column("symbol", "text", False, "Ticker."),
        Column("exchange", "text", False, "Exchange code (default US)."),
        Column("decision_ts", "timestamp", False, "When (UTC)."),
        Column("state", "json", True, "Observed state, JSON."),
        Column("action", "text", False, "Action taken, e.g. BUY, SELL, HOLD, CLOSE."),
        Column("confidence", "double", True, "Confidence in [0, 1]."),
        Column("reward", "double", True, "Reward received."),
        Column("next_state", "json", True, "State after the action, JSON."),
        Column("position_size", "double", True, "Position size after the action."),
        Column("entry_price", "double", True, "Entry price."),
        Column("stop_price", "double", True, "Stop-loss level."),
        Column("take_profit", "double", True, "Take-profit level."),
        Column("model_version", "text", True, "Policy version (free text or a registry model_id)."),
        *_AUDIT,
    ),
    key=("agent_id", "symbol", "exchange", "decision_ts"),
    hypertable_time="decision_ts",
    chunk_interval="30 days",
)

AGENT_EPISODES = Table(
    name="ml_agent_episodes",
    description="Episode summaries of reinforcement-learning agents.",
    columns=(
        Column("agent_id", "text", False, "The agent."),
        Column("episode", "bigint", False, "Episode number (increasing)."),
        Column("started_at", "timestamp", True, "Start (UTC)."),
        Column("ended_at", "timestamp", False, "End (UTC)."),
        Column("total_reward", "double", False, "Sum of rewards."),
        Column("episode_length", "bigint", True, "Steps."),
        Column("loss", "double", True, "Training loss at the episode's end."),
        Column("portfolio_value", "double", True, "Portfolio value at the end."),
        Column("sharpe", "double", True, "Sharpe ratio of the episode's returns."),
        Column("model_version", "text", True, "Policy version."),
        *_AUDIT,
    ),
    key=("agent_id", "episode"),
)

RETRAIN_QUEUE = Table(
    name="ml_retrain_queue",
    description="Requests to retrain a model; workers claim them (see market_warehouse/ml/queue.py).",
    columns=(
        Column("request_id", "text", False, "Request identifier (uuid)."),
        Column("model_name", "text", False, "The model to retrain."),
        Column("model_id", "text", True, "The version whose drift prompted the request, if any."),
        Column("reason", "text", False, "Why (a drift alert's reason, or what the requester wrote)."),
        Column("priority", "integer", False, "1 (most urgent) .. 5; workers claim 1 first, then oldest."),
        Column("status", "text", False, "`pending`, `processing`, `completed` or `failed`."),
        Column("requested_by", "text", True, "Who or what enqueued it."),
        Column("inserted_at", "timestamp", False, "Enqueued (UTC)."),
        Column("started_at", "timestamp", True, "Last claimed (UTC)."),
        Column("completed_at", "timestamp", True, "Completed or failed (UTC)."),
        Column("claimed_by", "text", True, "Worker holding (or last holding) the claim."),
        Column("lease_expires_at", "timestamp", True,
               "A processing claim not completed by then has expired: the request is pending again."),
        Column("attempts", "integer", False, "How many times it was claimed."),
        Column("error", "text", True, "Error of a failed attempt."),
    ),
    key=("request_id",),
)

ML_TABLES = (MODEL_REGISTRY, TRAINING_RUNS, PREDICTIONS, SIGNALS, AGENT_DECISIONS, AGENT_EPISODES,
             RETRAIN_QUEUE)

# PostgreSQL-only guards the Table DDL cannot express (partial unique indexes): at most one active
# version per model; at most one pending/processing request per model. DuckDB has no partial indexes;
# its single writer and the write paths' checks keep both rules there.
POSTGRES_EXTRA_DDL = (
    ("create unique index if not exists ml_model_registry_one_active_idx "
     "on raw.ml_model_registry (model_name) where is_active"),
    ("create unique index if not exists ml_model_registry_name_version_idx "
     "on raw.ml_model_registry (model_name, model_version)"),
    ("create unique index if not exists ml_retrain_queue_one_open_idx "
     "on raw.ml_retrain_queue (model_name) where status in ('pending', 'processing')"),
    ("create index if not exists ml_retrain_queue_claim_idx "
     "on raw.ml_retrain_queue (status, priority, inserted_at)"),
)


def model_id(model_name: str, model_version: str) -> str:
    return f"{model_name}@{model_version}"
