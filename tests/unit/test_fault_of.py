"""errors.fault_of: which failures are faults of a store, and which are bugs."""

from __future__ import annotations

import errno

import duckdb
import pytest
import sqlalchemy as sa

from tagport.errors import (
    EngineUnavailable,
    InvalidInput,
    MetadataUnavailable,
    StorageError,
    StorageFull,
    StorageUnwritable,
    fault_of,
)


def caused(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.ENOSPC, "No space left on device"), StorageFull),
    (duckdb.IOException('Could not write file "x.duckdb": No space left on device'), StorageFull),
    (OSError(errno.EROFS, "Read-only file system"), StorageUnwritable),
    (duckdb.IOException("IO Error: not a valid DuckDB database file"), EngineUnavailable),
    (sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused")),
     MetadataUnavailable),
    (caused(RuntimeError("wrapped"), OSError(errno.ENOSPC, "full")), StorageFull),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), StorageError),
])
def test_the_faults_of_stores(exc, kind):
    fault = fault_of(exc)
    assert type(fault) is kind
    assert fault.status in (500, 503, 507)


def test_a_tagport_error_is_itself_and_a_bug_is_none():
    refused = InvalidInput("bad")
    assert fault_of(caused(RuntimeError("x"), refused)) is refused
    assert fault_of(ValueError("a bug")) is None
    assert fault_of(KeyError("k")) is None


def test_the_driver_prefix_is_dropped():
    exc = sa.exc.OperationalError("SELECT 1", {}, Exception("password authentication failed"))
    assert fault_of(exc).message == (
        "the metadata store does not answer: password authentication failed")
    assert EngineUnavailable("x").retry_after > 0
