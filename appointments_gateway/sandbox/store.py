"""SQLite storage: schema, the per-process seeded template, and every query the app runs.

Why SQLite: filters, ordering and paging then map onto real SQL instead of hand-written loops,
and a seeded database can be cloned in milliseconds. The demo data for a (seed, anchor) pair is
generated once per process into a template connection; each app gets its own copy through
``sqlite3``'s backup API, so building an app is cheap and apps never share state.

Safety: user values are always bound parameters. Column names come from :mod:`.resources` or
from constants in this module, never from a request.

Both accounts live in the same tables, separated by an ``account`` column that every query
names; so another account's id behaves exactly like a missing one.
"""

from __future__ import annotations

import atexit
import json
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .filters import Page, WhereClause
from .resources import Resource
from .seed import generate

__all__ = ["Store", "open_database"]

_SCHEMA = """
CREATE TABLE businesses (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, show_in_online_bookings INTEGER,
    appointment_type_ids TEXT NOT NULL, archived_at TEXT, deleted_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE practitioners (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, user_id INTEGER,
    default_appointment_type_id INTEGER, active INTEGER, show_in_online_bookings INTEGER,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE patients (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, first_name TEXT, last_name TEXT,
    preferred_first_name TEXT, email TEXT, old_reference_id TEXT, date_of_birth TEXT,
    accepted_privacy_policy INTEGER, archived_at TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE appointment_types (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, category TEXT, online_payments_mode TEXT,
    show_in_online_bookings INTEGER, appointment_confirmation_template_ids TEXT NOT NULL,
    appointment_follow_up_template_ids TEXT NOT NULL,
    appointment_reminder_template_ids TEXT NOT NULL, duration_in_minutes INTEGER NOT NULL,
    archived_at TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE patient_cases (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, patient_id INTEGER NOT NULL, name TEXT,
    referral_type TEXT, issue_date TEXT, expiry_date TEXT, archived_at TEXT, closed_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE appointments (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL,
    patient_id INTEGER NOT NULL, practitioner_id INTEGER NOT NULL,
    appointment_type_id INTEGER NOT NULL, business_id INTEGER NOT NULL,
    patient_case_id INTEGER, repeated_from_id INTEGER,
    starts_at TEXT NOT NULL, ends_at TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    archived_at TEXT, cancelled_at TEXT, deleted_at TEXT,
    cancellation_reason INTEGER, cancellation_note TEXT,
    did_not_arrive INTEGER, patient_arrived INTEGER, email_reminder_sent INTEGER,
    sms_reminder_sent INTEGER, has_patient_appointment_notes INTEGER, notes TEXT,
    online_booking_policy_accepted INTEGER, booking_ip_address TEXT, patient_name TEXT,
    invoice_status INTEGER, treatment_note_status INTEGER,
    repeat_type TEXT, repeating_interval INTEGER, number_of_repeats INTEGER);
CREATE INDEX appointments_by_created ON appointments (account, created_at);
CREATE INDEX appointments_by_updated ON appointments (account, updated_at);
CREATE INDEX appointments_by_practitioner ON appointments (practitioner_id, starts_at);
CREATE INDEX appointments_by_patient ON appointments (patient_id);
CREATE INDEX appointments_by_series ON appointments (repeated_from_id);
"""

# Payload fields of related rows that are also columns (for filtering and sorting).
_RELATED_COLUMNS: dict[str, tuple[str, ...]] = {
    "businesses": (
        "show_in_online_bookings",
        "appointment_type_ids",
        "archived_at",
        "deleted_at",
        "created_at",
        "updated_at",
    ),
    "practitioners": ("active", "show_in_online_bookings", "created_at", "updated_at"),
    "patients": (
        "first_name",
        "last_name",
        "preferred_first_name",
        "email",
        "old_reference_id",
        "date_of_birth",
        "accepted_privacy_policy",
        "archived_at",
        "created_at",
        "updated_at",
    ),
    "appointment_types": (
        "category",
        "online_payments_mode",
        "show_in_online_bookings",
        "appointment_confirmation_template_ids",
        "appointment_follow_up_template_ids",
        "appointment_reminder_template_ids",
        "archived_at",
        "created_at",
        "updated_at",
    ),
    "patient_cases": (
        "name",
        "referral_type",
        "issue_date",
        "expiry_date",
        "archived_at",
        "closed_at",
        "created_at",
        "updated_at",
    ),
}

APPOINTMENT_COLUMNS = (
    "id",
    "account",
    "patient_id",
    "practitioner_id",
    "appointment_type_id",
    "business_id",
    "patient_case_id",
    "repeated_from_id",
    "starts_at",
    "ends_at",
    "created_at",
    "updated_at",
    "archived_at",
    "cancelled_at",
    "deleted_at",
    "cancellation_reason",
    "cancellation_note",
    "did_not_arrive",
    "patient_arrived",
    "email_reminder_sent",
    "sms_reminder_sent",
    "has_patient_appointment_notes",
    "notes",
    "online_booking_policy_accepted",
    "booking_ip_address",
    "patient_name",
    "invoice_status",
    "treatment_note_status",
    "repeat_type",
    "repeating_interval",
    "number_of_repeats",
)

_templates: dict[tuple[int, str], sqlite3.Connection] = {}
_templates_lock = threading.RLock()


def _sql_value(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _insert_rows(conn: sqlite3.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if table == "appointments":
        columns: tuple[str, ...] = APPOINTMENT_COLUMNS
        values: Iterable[list[Any]] = ([_sql_value(r[c]) for c in columns] for r in rows)
    else:
        extra = tuple(k for k in rows[0] if k not in ("id", "account", "doc"))
        doc_columns = _RELATED_COLUMNS[table]
        columns = ("id", "account", *extra, *doc_columns, "doc")
        values = (
            [
                r["id"],
                r["account"],
                *(r[c] for c in extra),
                *(_sql_value(r["doc"][c]) for c in doc_columns),
                json.dumps(r["doc"], ensure_ascii=False),
            ]
            for r in rows
        )
    placeholders = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", values)


def _template(seed: int, anchor: datetime) -> sqlite3.Connection:
    key = (seed, anchor.isoformat())
    with _templates_lock:
        conn = _templates.get(key)
        if conn is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            conn.executescript(_SCHEMA)
            for table, rows in generate(seed, anchor).tables.items():
                _insert_rows(conn, table, rows)
            conn.commit()
            atexit.register(conn.close)
            _templates[key] = conn
        return conn


def open_database(seed: int, anchor: datetime, db_path: str | None) -> sqlite3.Connection:
    """A connection holding the seeded data: a fresh in-memory copy, or a file.

    A file that already has the schema keeps its rows (the sandbox keeps every write it
    acknowledged); an empty or new file is filled from the template.
    """
    conn = sqlite3.connect(db_path or ":memory:", check_same_thread=False)
    conn.row_factory = sqlite3.Row
    has_data = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'appointments'"
    ).fetchone()
    if not has_data:
        reseed(conn, seed, anchor)
    return conn


def reseed(conn: sqlite3.Connection, seed: int, anchor: datetime) -> None:
    """Replace everything in ``conn`` with the seeded demo data."""
    template = _template(seed, anchor)
    with _templates_lock:
        template.backup(conn)


class Store:
    """Queries and writes, always scoped to one account."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # No lifespan is required, so the connection closes when the store is collected.
        self._finalizer = weakref.finalize(self, conn.close)

    def close(self) -> None:
        """Close the connection now."""
        self._finalizer()

    # --- reads ---------------------------------------------------------------------------

    def list_rows(
        self,
        resource: Resource,
        account: str,
        where: WhereClause,
        order_by: str,
        page: Page,
    ) -> tuple[list[sqlite3.Row], int]:
        """One page of rows and the total number of matching rows."""
        condition, params = self._scoped(resource, account, where)
        total = self.conn.execute(
            f"SELECT COUNT(*) FROM {resource.table} WHERE {condition}", params
        ).fetchone()[0]
        rows = self.conn.execute(
            f"SELECT * FROM {resource.table} WHERE {condition} ORDER BY {order_by} "
            "LIMIT ? OFFSET ?",
            [*params, page.size, page.offset],
        ).fetchall()
        return rows, int(total)

    def get_row(
        self, resource: Resource, account: str, row_id: int, where: WhereClause
    ) -> sqlite3.Row | None:
        """The row with this id if it matches the filters (and the hidden-row rules)."""
        condition, params = self._scoped(resource, account, where)
        row: sqlite3.Row | None = self.conn.execute(
            f"SELECT * FROM {resource.table} WHERE {condition} AND id = ?", [*params, row_id]
        ).fetchone()
        return row

    def _scoped(
        self, resource: Resource, account: str, where: WhereClause
    ) -> tuple[str, list[object]]:
        condition = f"account = ? AND {where.sql()}"
        if resource.extra_where:
            condition += f" AND {resource.extra_where}"
        return condition, [account, *where.params]

    def find(self, table: str, account: str, row_id: int) -> sqlite3.Row | None:
        """Any row of the account by id, hidden or not (``table`` is a code constant)."""
        row: sqlite3.Row | None = self.conn.execute(
            f"SELECT * FROM {table} WHERE account = ? AND id = ?", (account, row_id)
        ).fetchone()
        return row

    def has_conflicts(self, appointment: sqlite3.Row) -> bool:
        """Whether another live booking of the same practitioner overlaps this one."""
        row = self.conn.execute(
            "SELECT 1 FROM appointments WHERE account = ? AND practitioner_id = ? AND id != ? "
            "AND cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL "
            "AND starts_at < ? AND ends_at > ? LIMIT 1",
            (
                appointment["account"],
                appointment["practitioner_id"],
                appointment["id"],
                appointment["ends_at"],
                appointment["starts_at"],
            ),
        ).fetchone()
        return row is not None

    def series_from(self, appointment: sqlite3.Row) -> list[sqlite3.Row]:
        """This appointment and every later one of its series that is still live."""
        origin = appointment["repeated_from_id"] or appointment["id"]
        rows: list[sqlite3.Row] = self.conn.execute(
            "SELECT * FROM appointments WHERE account = ? AND (id = ? OR repeated_from_id = ?) "
            "AND starts_at >= ? AND archived_at IS NULL AND deleted_at IS NULL "
            "AND (cancelled_at IS NULL OR id = ?) ORDER BY starts_at, id",
            (appointment["account"], origin, origin, appointment["starts_at"], appointment["id"]),
        ).fetchall()
        return rows

    def count_appointments(self, account: str | None = None, *, live_only: bool = False) -> int:
        """Rows in the appointments table (for tests and the stats page)."""
        sql = "SELECT COUNT(*) FROM appointments WHERE (? IS NULL OR account = ?)"
        if live_only:
            sql += " AND cancelled_at IS NULL AND archived_at IS NULL AND deleted_at IS NULL"
        return int(self.conn.execute(sql, (account, account)).fetchone()[0])

    # --- writes --------------------------------------------------------------------------

    def next_appointment_id(self) -> int:
        """A new id above every existing one (ids are unique across both accounts)."""
        return int(self.conn.execute("SELECT MAX(id) FROM appointments").fetchone()[0]) + 1

    def insert_appointments(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert new appointments and commit."""
        with self.conn:
            _insert_rows(self.conn, "appointments", rows)

    def update_appointments(self, ids: Sequence[int], changes: Mapping[str, Any]) -> None:
        """Set columns on appointments and commit; column names must be code constants."""
        unknown = set(changes) - set(APPOINTMENT_COLUMNS)
        if unknown:  # pragma: no cover - a programming error, not a request error
            raise ValueError(f"Not appointment columns: {sorted(unknown)!r}.")
        assignments = ", ".join(f"{column} = ?" for column in changes)
        values = [_sql_value(v) for v in changes.values()]
        with self.conn:
            self.conn.executemany(
                f"UPDATE appointments SET {assignments} WHERE id = ?",
                [[*values, row_id] for row_id in ids],
            )

    def delete_appointment(self, row_id: int) -> None:
        """Remove an appointment row entirely and commit (the web app's hard delete)."""
        with self.conn:
            self.conn.execute("DELETE FROM appointments WHERE id = ?", (row_id,))

    def update_related(self, table: str, row_id: int, changes: Mapping[str, Any]) -> None:
        """Merge payload fields into a related row's document and commit.

        The columns that mirror document fields for filtering and sorting (``updated_at``,
        a patient's names) change with it, so a filter never disagrees with the payload.
        ``table`` is a code constant.
        """
        if table not in _RELATED_COLUMNS:  # pragma: no cover - a programming error
            raise ValueError(f"Not a related table: {table!r}.")
        (raw,) = self.conn.execute(f"SELECT doc FROM {table} WHERE id = ?", (row_id,)).fetchone()
        doc = {**json.loads(raw), **changes}
        mirrored = [column for column in _RELATED_COLUMNS[table] if column in changes]
        assignments = ", ".join(["doc = ?", *(f"{column} = ?" for column in mirrored)])
        values = [json.dumps(doc, ensure_ascii=False), *(_sql_value(doc[c]) for c in mirrored)]
        with self.conn:
            self.conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*values, row_id])
