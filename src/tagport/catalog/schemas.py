"""The catalog file read by `tagport catalog apply`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tagport.catalog.models import ValueType


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str
    name: str = Field(min_length=1)
    name_en: str | None = None
    description: str = ""


class IdentitySpec(_Entry):
    pass


class AttributeSpec(_Entry):
    type: ValueType = ValueType.STRING


class TagSpec(_Entry):
    type: ValueType = ValueType.STRING
    is_array: bool = Field(False, alias="isArray")
    # a computed tag (spec section 6): its definition, checked by tagport.computes when
    # the catalog is applied, and when it runs (DAILY when a compute is given without one)
    compute: dict[str, Any] | None = None
    scheduler: Literal["DAILY", "ONCE"] | None = None


class EventAttributeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    name: str = Field(min_length=1)
    name_en: str | None = None
    type: ValueType = ValueType.STRING


class EventSpec(_Entry):
    attributes: list[EventAttributeSpec] = []


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identities: list[IdentitySpec] = []
    attributes: list[AttributeSpec] = []
    tags: list[TagSpec] = []
    events: list[EventSpec] = []
