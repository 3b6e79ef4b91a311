"""The Parquet export's typed columns, the same on every engine.

`gio_id` first (unsigned, as GrowingIO's ids), then the plan's columns under their keys:
identities as lists of strings (a user may hold several values), attributes and tags in
their catalog type, array tags as lists. Engines cast what they read to this schema, so
the files of both engines read back alike.
"""

from __future__ import annotations

import pyarrow as pa

from tagport.catalog.models import CatalogEntry, ValueType
from tagport.exports.plan import ExportPlan

ROWS_PER_GROUP = 128 * 1024

ARROW_TYPES: dict[ValueType, pa.DataType] = {
    ValueType.STRING: pa.string(),
    ValueType.INT: pa.int64(),
    ValueType.DOUBLE: pa.float64(),
    ValueType.BOOL: pa.bool_(),
    ValueType.DATE: pa.date32(),
    ValueType.DATETIME: pa.timestamp("us"),
}


def arrow_type(entry: CatalogEntry) -> pa.DataType:
    if entry.is_identity:
        return pa.list_(pa.string())
    scalar = ARROW_TYPES[entry.value_type]
    return pa.list_(scalar) if entry.is_array else scalar


def arrow_schema(plan: ExportPlan) -> pa.Schema:
    return pa.schema([pa.field("gio_id", pa.uint64(), nullable=False)]
                     + [pa.field(e.key, arrow_type(e)) for e in plan.columns])


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch`'s columns, in order, cast to `schema` (an engine's own string or integer
    flavours become the export's types)."""
    columns = [column.cast(field.type) for column, field in zip(batch.columns, schema,
                                                                strict=True)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
