"""Computed tags (spec section 6): GrowingIO's six tag types, checked and compiled.

- definitions.py: the typed definitions (`Aggregated`, `Attribution`, `TopN`, `DataSet`,
  `Horizontal`, `SqlQuery`), what each yields, the tags it reads.
- check.py: `check_tag` / `check_catalog` turn `compute` JSON into them (or refuse it,
  naming the tag and the field); `order` gives the dependency order.
- compile.py: `compile_definition`: one sqlglot query `SELECT gio_id, ... AS tag_value`
  for any engine; sql.py: the SQL type's checks and translation.
Engines implement `Engine.compute_tag(tag, definition, as_of=...)`; this package never
imports them. See docs/computed-tags.md.
"""

from tagport.computes.check import check_catalog, check_tag, computed_keys, order
from tagport.computes.compile import OrderKey, Relations, compile_definition
from tagport.computes.definitions import (
    IMPORT,
    Aggregated,
    Attribution,
    AttributionValue,
    ComputedTag,
    ComputeType,
    DataSet,
    Definition,
    EventSelection,
    Horizontal,
    Membership,
    Pick,
    Rank,
    Scheduler,
    SqlDialect,
    SqlQuery,
    Tier,
    TopN,
    Yield,
    depends_on,
)
from tagport.computes.errors import ComputeFailed, ComputeStopped
from tagport.computes.sql import (
    SqlRefused,
    missing_columns,
    one_row_per_user,
    plain,
    row_filter,
    translate,
)

__all__ = [
    "IMPORT", "Aggregated", "Attribution", "AttributionValue", "ComputeFailed",
    "ComputeStopped", "ComputeType", "ComputedTag", "DataSet", "Definition", "EventSelection",
    "Horizontal", "Membership", "OrderKey", "Pick", "Rank", "Relations", "Scheduler",
    "SqlDialect", "SqlQuery", "SqlRefused", "Tier", "TopN", "Yield", "check_catalog", "check_tag",
    "compile_definition", "computed_keys", "depends_on", "missing_columns", "one_row_per_user",
    "order", "plain", "row_filter", "translate",
]
