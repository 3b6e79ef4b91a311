"""Where finished result files live: a directory (local or a shared mount) or an object
store (S3), chosen by `TAGPORT_RESULT_URL`. See `store.py` for the interface."""

from tagport.results.store import ResultStore, StoredObject, open_result_store

__all__ = ["ResultStore", "StoredObject", "open_result_store"]
