"""The journal's schema: tables, migrations and the SQL the store runs.

Migrations are data: ``MIGRATIONS[v]`` is the list of statements that takes a database from version
``v - 1`` to ``v``. All pending steps run in one ``BEGIN IMMEDIATE`` transaction together with their
``schema_version`` rows, so a migration killed halfway leaves the previous version intact (SQLite DDL is
transactional). Tables are ``STRICT`` (a float price or a str quantity is refused, not coerced) and
``WITHOUT ROWID`` where the primary key is the natural key; ``fills`` keeps a rowid so rows load in
insertion order.
"""

from __future__ import annotations

SCHEMA_VERSION = 4
"""The newest schema this build knows. A database with a higher version is refused."""

MIN_SQLITE = (3, 37, 0)
"""STRICT tables need 3.37; ``RETURNING`` needs 3.35."""

# Operator commands for a running engine (``engine.control``): written by ``zhixing halt`` & co. from
# another process, applied by the engine's control channel, marked done in the transaction that journals
# their effect. Part of the schema since version 2; before that created on first use (IF NOT EXISTS, by
# both sides), which both sides still do, harmlessly.
CREATE_CONTROL_COMMANDS = """CREATE TABLE IF NOT EXISTS control_commands (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    command TEXT NOT NULL,
    arg TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    done_ts INTEGER,
    result TEXT NOT NULL DEFAULT ''
) STRICT"""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY) STRICT",
        # One row per child order; columns map one-to-one onto ``engine.orders.Order`` (trade_ids live in
        # ``fills``). Money and prices int milli-yuan, timestamps int ns, enums as their StrEnum values.
        """CREATE TABLE orders (
            client_order_id TEXT PRIMARY KEY NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            price INTEGER NOT NULL,
            quantity INTEGER NOT NULL,
            parent_id TEXT NOT NULL,
            tag TEXT NOT NULL,
            status TEXT NOT NULL,
            filled_quantity INTEGER NOT NULL,
            filled_value INTEGER NOT NULL,
            commission INTEGER NOT NULL,
            stamp_duty INTEGER NOT NULL,
            transfer_fee INTEGER NOT NULL,
            broker_order_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            venue_confirmed INTEGER NOT NULL,
            ts_created INTEGER NOT NULL,
            ts_updated INTEGER NOT NULL,
            status_before_cancel TEXT
        ) STRICT, WITHOUT ROWID""",
        # A trade is unique per (order, broker trade id): brokers re-push old fills on reconnect, and a
        # trade id alone may repeat across days or exchanges.
        """CREATE TABLE fills (
            seq INTEGER PRIMARY KEY,
            trade_id TEXT NOT NULL,
            client_order_id TEXT NOT NULL,
            parent_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            price INTEGER NOT NULL,
            quantity INTEGER NOT NULL,
            commission INTEGER NOT NULL,
            stamp_duty INTEGER NOT NULL,
            transfer_fee INTEGER NOT NULL,
            ts_event INTEGER NOT NULL,
            ts_init INTEGER NOT NULL,
            UNIQUE (client_order_id, trade_id)
        ) STRICT""",
        """CREATE TABLE parents (
            parent_id TEXT PRIMARY KEY NOT NULL,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            quantity INTEGER NOT NULL,
            algo TEXT NOT NULL,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            limit_price INTEGER,
            params TEXT NOT NULL,
            status TEXT NOT NULL,
            created_ns INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE algo_states (
            parent_id TEXT PRIMARY KEY NOT NULL,
            algo TEXT NOT NULL,
            state TEXT NOT NULL
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE positions (
            symbol TEXT PRIMARY KEY NOT NULL,
            quantity INTEGER NOT NULL,
            sellable INTEGER NOT NULL,
            avg_cost INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT, WITHOUT ROWID",
        # ``value`` is the next unreserved sequence number.
        """CREATE TABLE counters (
            name TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID""",
        "INSERT INTO counters (name, value) VALUES ('order_id', 1)",
    ),
    2: (
        # An algorithm's state in two parts (``algos.base.ExecAlgo.plan_state`` / ``progress_state``): the
        # plan (a schedule's slice times and targets, kilobytes) is written once per ``plan_version``;
        # ``algo_states.state`` then holds only the progress, with the plan version it goes with. A NULL
        # ``plan_version`` (every row written by version 1) marks a state that is complete by itself.
        "ALTER TABLE algo_states ADD COLUMN plan_version INTEGER",
        """CREATE TABLE algo_plans (
            parent_id TEXT PRIMARY KEY NOT NULL,
            algo TEXT NOT NULL,
            plan_version INTEGER NOT NULL,
            plan TEXT NOT NULL
        ) STRICT, WITHOUT ROWID""",
        CREATE_CONTROL_COMMANDS,  # created on first use in version 1 journals; in the schema now
    ),
    3: (
        # The input an execute job trades (``engine.target_snapshots``): the signal job journals the targets
        # file it planned, byte for byte with its SHA-256, per trading day and execute job; the execute job
        # trades that copy and refuses when the file no longer hashes the same. Every snapshot is kept (the
        # newest of a day and job is the one traded); ``problem`` is why the signal run refused the file
        # ('' when it was usable). A rowid table: the content can be large.
        """CREATE TABLE input_snapshots (
            id INTEGER PRIMARY KEY,
            trade_date TEXT NOT NULL,
            job TEXT NOT NULL,
            signal_job TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            mtime_ns INTEGER NOT NULL,
            taken_ns INTEGER NOT NULL,
            content BLOB NOT NULL,
            problem TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX input_snapshots_day_job ON input_snapshots (trade_date, job, id)",
    ),
    4: (
        # The order's kind (``engine.enums.OrderType``): every order before market orders was a limit one.
        "ALTER TABLE orders ADD COLUMN order_type TEXT NOT NULL DEFAULT 'LIMIT'",
    ),
}

ORDER_COLUMNS = (
    "client_order_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "parent_id",
    "tag",
    "status",
    "filled_quantity",
    "filled_value",
    "commission",
    "stamp_duty",
    "transfer_fee",
    "broker_order_id",
    "reason",
    "venue_confirmed",
    "ts_created",
    "ts_updated",
    "status_before_cancel",
    "order_type",
)
"""Every ``Order`` field except ``trade_ids`` and ``denial`` (in memory only), in table order (also the
attribute names)."""

FILL_ATTRS = (
    "trade_id",
    "client_order_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "commission",
    "stamp_duty",
    "transfer_fee",
    "ts_event",
    "ts_init",
)
"""``OrderFilled`` attributes stored per fill; the staged row is these plus ``parent_id``."""
FILL_COLUMNS = (*FILL_ATTRS, "parent_id")

PARENT_COLUMNS = (
    "parent_id",
    "symbol",
    "side",
    "quantity",
    "algo",
    "start_ns",
    "end_ns",
    "limit_price",
    "params",
    "status",
    "created_ns",
)


def _upsert(table: str, columns: tuple[str, ...], key: str) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    marks = ", ".join("?" * len(columns))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


# ``ON CONFLICT ... DO`` touches only the uniqueness conflict; ``INSERT OR IGNORE/REPLACE`` would also
# swallow NOT NULL violations.
UPSERT_ORDER = _upsert("orders", ORDER_COLUMNS, "client_order_id")
INSERT_FILL = (
    f"INSERT INTO fills ({', '.join(FILL_COLUMNS)}) VALUES ({', '.join('?' * len(FILL_COLUMNS))}) "
    "ON CONFLICT (client_order_id, trade_id) DO NOTHING"
)
UPSERT_PARENT = _upsert("parents", PARENT_COLUMNS, "parent_id")
UPSERT_ALGO_STATE = _upsert("algo_states", ("parent_id", "algo", "state", "plan_version"), "parent_id")
UPSERT_ALGO_PLAN = _upsert("algo_plans", ("parent_id", "algo", "plan_version", "plan"), "parent_id")
UPSERT_POSITION = _upsert("positions", ("symbol", "quantity", "sellable", "avg_cost"), "symbol")
UPSERT_META = _upsert("meta", ("key", "value"), "key")

RESERVE_IDS = "UPDATE counters SET value = value + ? WHERE name = 'order_id' RETURNING value"

SELECT_ORDERS = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders ORDER BY ts_created, client_order_id"
SELECT_ORDERS_V3 = (
    f"SELECT {', '.join(ORDER_COLUMNS[:-1])}, 'LIMIT' FROM orders ORDER BY ts_created, client_order_id"
)
"""``SELECT_ORDERS`` for a journal before version 4 (no ``order_type``: every order a limit one), for the
readers that never migrate (``zhixing status``)."""
SELECT_TRADE_IDS = "SELECT client_order_id, trade_id FROM fills ORDER BY seq"
SELECT_FILLS = f"SELECT {', '.join(FILL_COLUMNS)} FROM fills ORDER BY seq"
SELECT_PARENTS = f"SELECT {', '.join(PARENT_COLUMNS)} FROM parents ORDER BY created_ns, parent_id"
SELECT_ALGO_STATES = (
    "SELECT s.parent_id, s.algo, s.state, s.plan_version, p.algo, p.plan_version, p.plan "
    "FROM algo_states AS s LEFT JOIN algo_plans AS p ON p.parent_id = s.parent_id ORDER BY s.parent_id"
)
SELECT_POSITIONS = "SELECT symbol, quantity, sellable, avg_cost FROM positions ORDER BY symbol"
SELECT_META = "SELECT value FROM meta WHERE key = ?"

INPUT_SNAPSHOT_COLUMNS = (
    "trade_date",
    "job",
    "signal_job",
    "path",
    "sha256",
    "mtime_ns",
    "taken_ns",
    "content",
    "problem",
)
INSERT_INPUT_SNAPSHOT = (
    f"INSERT INTO input_snapshots ({', '.join(INPUT_SNAPSHOT_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(INPUT_SNAPSHOT_COLUMNS))})"
)
SELECT_LATEST_INPUT_SNAPSHOT = (
    f"SELECT {', '.join(INPUT_SNAPSHOT_COLUMNS)} FROM input_snapshots WHERE trade_date = ? AND job = ? "
    "ORDER BY id DESC LIMIT 1"
)

INSERT_CONTROL_COMMAND = "INSERT INTO control_commands (ts, command, arg) VALUES (?, ?, ?) RETURNING id"
SELECT_PENDING_COMMANDS = "SELECT id, ts, command, arg FROM control_commands WHERE done = 0 ORDER BY id"
SELECT_COMMANDS = "SELECT id, ts, command, arg, done, done_ts, result FROM control_commands ORDER BY id"
MARK_COMMAND_DONE = "UPDATE control_commands SET done = 1, done_ts = ?, result = ? WHERE id = ? AND done = 0"
"""Parameters ``(done_ts, result, id)``; a command already done stays as it was (applied once)."""

# The trade log (流水): joined in SQL so the export reads one consistent snapshot.
SELECT_LOG_ORDERS = (
    "SELECT client_order_id, parent_id, symbol, side, price, quantity, filled_quantity, filled_value, "
    "status, ts_created, ts_updated FROM orders ORDER BY ts_created, client_order_id"
)
SELECT_LOG_FILLS = (
    "SELECT trade_id, client_order_id, parent_id, symbol, side, price, quantity, commission, stamp_duty, "
    "transfer_fee, CASE WHEN ts_event != 0 THEN ts_event ELSE ts_init END AS ts FROM fills "
    "ORDER BY ts, trade_id, client_order_id"
)
