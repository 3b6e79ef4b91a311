"""CSV and JSON lines as every engine renders them: DuckDB SQL over the stored columns,
written from Arrow batches.

- sql.py: the select list of each text format over a relation of stored columns (CSV:
  the columns pyarrow's CSV writer quotes or leaves bare; JSON: one line per user, by
  DuckDB's `to_json` of nested structs).
- text.py: the writer of each text format, which puts those Arrow batches into a
  writable (CSV: `pyarrow.csv.CSVWriter`; JSON: the lines' buffer as it is).

The DuckDB engine runs the select over its `users` table; the Spark engine runs it, with
DuckDB, over each task's Arrow batches on the executors. Both write with the same
writer, so both engines' files have the same bytes by construction. Engines import from
here, never from each other.
"""
