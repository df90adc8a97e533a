"""The raw layer on each real target: hypertables only where TimescaleDB is, the same tables
everywhere, and dbt (sources, docs) running over them."""

from __future__ import annotations

from pathlib import Path

from market_warehouse.dbt import run_dbt
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import MARKET_TABLES
from market_warehouse.loaders.sinks import open_sink

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"


def test_timescale_bars_is_a_hypertable_with_its_index(timescale_target):
    with open_sink(timescale_target) as sink:
        assert sink.timescale and sink.license in ("apache", "timescale")
        dims = sink.query("select column_name, time_interval from timescaledb_information.dimensions "
                          "where hypertable_schema = 'raw' and hypertable_name = 'bars'")
        assert [(c, str(i)) for c, i in dims] == [("ts", "30 days, 0:00:00")]
        idx = sink.query("select indexdef from pg_indexes where schemaname = 'raw' and tablename = 'bars'")
        assert any("(symbol, ts DESC)" in d for (d,) in idx)
        assert any("USING brin (loaded_at)" in d for (d,) in idx)  # incremental staging reads a range of it
        load_files(sink, [SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"], "alphavantage")
        chunks = sink.query("select count(*) from timescaledb_information.chunks where hypertable_name = 'bars'")
        assert chunks[0][0] > 200  # 1999..2021 in 30-day chunks


def test_plain_postgres_has_the_same_tables_without_timescaledb(postgres_target):
    with open_sink(postgres_target) as sink:
        assert not sink.timescale
        assert not sink.query("select 1 from pg_extension where extname = 'timescaledb'")
        tables = {t for (t,) in sink.query(
            "select table_name from information_schema.tables where table_schema = 'raw'")}
        assert tables == {t.name for t in MARKET_TABLES}
        pk = sink.query("select indexdef from pg_indexes where schemaname = 'raw' and tablename = 'bars' "
                        "and indexname = 'bars_pkey'")
        assert "(symbol, exchange, \"interval\", ts)" in pk[0][0]


def test_dbt_compiles_and_documents_the_sources_on_every_target(any_target):
    with open_sink(any_target) as sink:
        load_files(sink, [SAMPLE / "binance_klines" / "FILUSDT-1m-2023-02.csv.gz"], "binance-klines")
    res = run_dbt(["docs", "generate"], any_target, quiet=True)
    assert res.success, res.exception
    catalog = res.result
    sources = {k for k in catalog.sources}
    assert "source.market_warehouse.market.bars" in sources
    cols = catalog.sources["source.market_warehouse.market.bars"].columns
    assert {"ts", "symbol", "open", "close", "volume"} <= set(cols)


def test_seed_state_is_remembered_per_warehouse(any_target, tmp_path, monkeypatch):
    """`mwh build` skips reloading seeds only when this warehouse was built from the same files."""
    from market_warehouse import dbt as mwh_dbt

    with open_sink(any_target) as sink:
        assert sink.stored_seeds_checksum() is None  # never built: seeds must load
        sink.store_seeds_checksum(mwh_dbt.seeds_checksum())
        sink.store_seeds_checksum(mwh_dbt.seeds_checksum())  # replaces, never accumulates
        assert sink.stored_seeds_checksum() == mwh_dbt.seeds_checksum()
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "exchanges.csv").write_text("exchange,calendar\nUS,XNYS\n")
    monkeypatch.setenv("MWH_PROJECT_DIR", str(tmp_path))
    changed = mwh_dbt.seeds_checksum()
    monkeypatch.delenv("MWH_PROJECT_DIR")
    assert changed != mwh_dbt.seeds_checksum()
