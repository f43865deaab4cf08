"""The state store: the engine's write-ahead journal (aiosqlite, WAL). See ``state_store``."""

from zhixing.engine.store.schema import SCHEMA_VERSION
from zhixing.engine.store.state_store import StateStore
from zhixing.engine.store.trade_log import FILLS_CSV_COLUMNS, ORDERS_CSV_COLUMNS

__all__ = ["FILLS_CSV_COLUMNS", "ORDERS_CSV_COLUMNS", "SCHEMA_VERSION", "StateStore"]
