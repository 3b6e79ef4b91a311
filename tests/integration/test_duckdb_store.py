"""The DuckDB store's own promises: one writer, and users kept in gio_id order."""

from __future__ import annotations

from tagport.engines.duckdb.store import DuckDBStore, restore_gio_order


def scan(store: DuckDBStore) -> list[int]:
    cur = store.cursor()
    try:
        return [row[0] for row in cur.execute("SELECT gio_id FROM users").fetchall()]
    finally:
        cur.close()


def test_out_of_order_users_are_rewritten_in_gio_id_order(tmp_path):
    store = DuckDBStore(tmp_path / "p.duckdb")
    cur = store.cursor()
    cur.execute("INSERT INTO users VALUES (1), (3), (2)")
    assert restore_gio_order(cur) is True
    assert scan(store) == [1, 2, 3]
    assert restore_gio_order(cur) is False
    store.close()


def test_a_second_process_cannot_open_the_store(tmp_path):
    import subprocess
    import sys

    store = DuckDBStore(tmp_path / "p.duckdb")
    code = (
        "import sys; from pathlib import Path; from tagport.engines.duckdb.store import DuckDBStore\n"
        "from tagport.errors import StoreBusy\n"
        f"try: DuckDBStore(Path({str(tmp_path / 'p.duckdb')!r}))\n"
        "except StoreBusy as e: print(e.message); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 3, result.stderr
    assert "is open in another process" in result.stdout
    store.close()
