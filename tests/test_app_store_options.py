"""The worker's tables keep RocksDB memory bounded (benchmarks/bench_store.py measures why it matters)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.app import create_app
from orchestrator.config import Settings

OFFLINE = {"kafka_bootstrap": "127.0.0.1:1", "redis_url": "redis://127.0.0.1:1"}


def test_every_table_store_gets_the_configured_rocksdb_sizes(tmp_path: Path) -> None:
    settings = Settings(**OFFLINE, data_dir=tmp_path, rocksdb_block_cache_mb=5, rocksdb_write_buffer_mb=3)
    app = create_app(settings)
    assert app.tables, "the app has no tables"
    for table in app.tables.values():
        assert table.options == {
            "block_cache_size": 5 * 2**20,
            "write_buffer_size": 3 * 2**20,
            "max_write_buffer_number": 2,
        }, table.name


def test_a_memory_store_takes_no_rocksdb_options(tmp_path: Path) -> None:
    app = create_app(Settings(**OFFLINE, data_dir=tmp_path, store="memory://"))
    assert all(table.options is None for table in app.tables.values())
