"""Load staging, shared by every engine: a file of user records becomes typed, validated
records in a DuckDB connection, with every problem and its line in `load_rejects`.

DuckDB is the parser on every engine, so all engines read CSV, JSON lines and Parquet
alike, number lines alike and reject the same values with the same messages. The DuckDB
engine stages inside its load's transaction; the Spark engine stages on the driver and
hands the valid records to Spark.

- sql.py: DuckDB SQL quoting (`ident`, `literal`) and the DuckDB type of each value type.
- parse.py: the file becomes `load_input` (`stage_file`).
- validate.py: `load_input` becomes the typed `load_rec`; type and gio_id problems go to
  `load_rejects` (`validate`), which `rejects_report` reads back in order.
- resolve.py: identity resolution over `load_rec` and an `identity_map` (`resolve_identities`):
  every load on DuckDB, a small load onto a stored dataset on Spark.

Engines import from here, never from each other.
"""
