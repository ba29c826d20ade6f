"""What devices upload (check records, vehicle sessions, amendments, audit events), each kind in
its table: storing a batch exactly once, listing, and purging past the retention period.

A record is stored by INSERT ... ON CONFLICT DO NOTHING and read back, so whichever attempt got
there first (in this process or another) owns it; an id is stored once across all kinds (the
kinds of one id are serialised by `_serialise`). Every record carries the binding (`binding_id`)
of the device token that uploaded it: a device token lists only its own binding's rows, so a
device id bound again does not inherit what the previous holder recorded. The indexes that keep
this fast at tens of millions of rows are in store/schema.py (migration 2).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sentinel.contract import (
    AmendmentIn,
    EventIn,
    RecordAmendment,
    RecordIn,
    StoredAmendment,
    StoredEvent,
    StoredRecord,
    StoredVehicleSession,
    VehicleSessionIn,
    record_kind,
)
from sentinel.service.store.rows import StoredBatch, utc_text
from sentinel.service.store.schema import KIND_TABLES

#: a check record's latest amendment, as `list_records` shows it
_LATEST_AMENDMENT = (
    "(SELECT a.body FROM amendments a WHERE a.record_id = records.id AND a.device_id = records.device_id "
    "ORDER BY a.created_at DESC, a.id DESC LIMIT 1)"
)


class RecordTables:
    """The uploaded-records half of `Store` (it supplies `_tx`, `_all`, `_serialise`)."""

    def add_records(
        self, records: list[RecordIn | VehicleSessionIn | AmendmentIn | EventIn], now: datetime, binding_id: str | None = None
    ) -> StoredBatch:
        """Store what is new and ignore what is known, in one transaction, each kind in its table.
        `owners` maps every stored id of the batch to the device that stored it, whichever attempt
        that was (in this process or another: ON CONFLICT DO NOTHING, then read back). An id is
        stored once across all kinds: one already used by another kind is refused
        (`id_conflict`). An amendment is refused (`wrong_record`) when the record it amends
        is another device's or not a check record; one whose check record is not known yet is
        stored, pending, and shows on the record once that arrives."""
        out = StoredBatch()
        if not records:
            return out
        by_kind: dict[str, list[Any]] = {kind: [] for kind in KIND_TABLES}
        for record in records:
            by_kind[record_kind(record)].append(record)
        with self._tx() as conn:
            self._serialise(conn, sorted({f"record:{r.id}" for r in records}))  # one kind wins an id across tables
            for kind, table in KIND_TABLES.items():
                batch = by_kind[kind]
                if not batch:
                    continue
                ids = sorted({r.id for r in batch})
                marks = ", ".join("?" * len(ids))
                for other in KIND_TABLES.values():
                    if other == table:
                        continue
                    for row in conn.execute(f"SELECT id FROM {other} WHERE id IN ({marks})", tuple(ids)).fetchall():
                        out.refused[row["id"]] = ("id_conflict", f"a record of another kind is stored with this id ({other})")
                known = {row["id"] for row in conn.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", tuple(ids)).fetchall()}
                if kind == "amendment":
                    for amendment in batch:
                        if amendment.id not in known and amendment.id not in out.refused:
                            refusal = self._amendment_refusal(conn, amendment)
                            if refusal:
                                out.refused[amendment.id] = refusal
                rows = [r for r in batch if r.id not in out.refused]
                if not rows:
                    continue
                columns = ("id", "device_id", "site_id", *(("record_id",) if kind == "amendment" else ()), "created_at")
                conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}, received_at, body, binding_id) "
                    f"VALUES ({', '.join('?' * (len(columns) + 3))}) ON CONFLICT DO NOTHING",
                    [(*(getattr(r, c) for c in columns[:-1]), utc_text(r.created_at), utc_text(now), r.model_dump_json(), binding_id) for r in rows],
                )
                stored = sorted({r.id for r in rows})
                found = conn.execute(
                    f"SELECT id, device_id FROM {table} WHERE id IN ({', '.join('?' * len(stored))})", tuple(stored)
                ).fetchall()
                out.owners.update({row["id"]: row["device_id"] for row in found})
        return out

    @staticmethod
    def _amendment_refusal(conn: Any, amendment: AmendmentIn) -> tuple[str, str] | None:
        row = conn.execute("SELECT device_id FROM records WHERE id = ?", (amendment.record_id,)).fetchone()
        if row is not None:
            if row["device_id"] != amendment.device_id:
                return ("wrong_record", "the amended record is another device's")
            return None
        for table in ("vehicle_sessions", "amendments", "events"):
            if conn.execute(f"SELECT 1 AS one FROM {table} WHERE id = ?", (amendment.record_id,)).fetchone():
                return ("wrong_record", f"the amended record is not a check record ({table})")
        return None  # not known yet: stored, pending

    def list_records(self, **filters: Any) -> list[StoredRecord]:
        """Check records in id (= time) order, each with its latest amendment (or none);
        filters: device_id, site_id, since, after, limit."""
        out = []
        for body, received_at, amendment in self._rows("records", _LATEST_AMENDMENT, **filters):
            if amendment is not None:
                a = json.loads(amendment)
                amendment = RecordAmendment(id=a["id"], passed=a["passed"], reason=a["reason"], at=a["created_at"])
            out.append(StoredRecord(**json.loads(body), received_at=received_at, amendment=amendment))
        return out

    def list_vehicle_sessions(self, **filters: Any) -> list[StoredVehicleSession]:
        """Vehicle sessions in id (= time) order, filtered like `list_records`."""
        return self._list("vehicle_sessions", StoredVehicleSession, **filters)

    def list_amendments(self, **filters: Any) -> list[StoredAmendment]:
        """Amendments in id (= time) order, filtered like `list_records`; `pending` while the
        amended check record has not arrived."""
        pending = "NOT EXISTS (SELECT 1 FROM records r WHERE r.id = amendments.record_id AND r.device_id = amendments.device_id)"
        return [
            StoredAmendment(**json.loads(body), received_at=received_at, pending=bool(is_pending))
            for body, received_at, is_pending in self._rows("amendments", pending, **filters)
        ]

    def list_events(self, **filters: Any) -> list[StoredEvent]:
        """Audit events in id (= time) order, filtered like `list_records`."""
        return self._list("events", StoredEvent, **filters)

    def _list(self, table: str, model: type, **filters: Any) -> list:
        return [model(**json.loads(body), received_at=received_at) for body, received_at, _ in self._rows(table, "NULL", **filters)]

    def records_query(self, **filters: Any) -> tuple[str, tuple[Any, ...]]:
        """The SQL (with `?` marks) and parameters `list_records(**filters)` runs: for EXPLAIN in
        bench/service.py, so the plans shown are those of the real query."""
        return self._query("records", _LATEST_AMENDMENT, **filters)

    def _rows(self, table: str, column: str, **filters: Any) -> list[tuple[str, str, Any]]:
        rows = self._all(*self._query(table, column, **filters))
        return [(row["body"], row["received_at"], row["extra"]) for row in rows]

    @staticmethod
    def _query(
        table: str,  # one of the literals above, never caller input
        column: str,  # a fixed SQL expression from the methods above, never caller input
        *,
        device_id: str | None = None,
        site_id: str | None = None,
        since: datetime | None = None,
        after: str | None = None,
        limit: int = 100,
        binding_id: str | None = None,
        own_binding: bool = False,
    ) -> tuple[str, tuple[Any, ...]]:
        """`own_binding`: only rows uploaded under `binding_id` (a device token's view)."""
        conditions, params = ["1 = 1"], []
        if own_binding:  # "= ?", not "IS ?": only an equality uses the (binding_id, id) index on PostgreSQL
            conditions.append("binding_id IS NULL" if binding_id is None else "binding_id = ?")
            params.extend([] if binding_id is None else [binding_id])
        for sql, value in (
            ("device_id = ?", device_id),
            ("site_id = ?", site_id),
            ("created_at >= ?", None if since is None else utc_text(since)),
            ("id > ?", after),
        ):
            if value is not None:
                conditions.append(sql)
                params.append(value)
        sql = f"SELECT body, received_at, {column} AS extra FROM {table} WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?"
        return sql, (*params, limit)

    # retention ---------------------------------------------------------------------------------

    def purge_records(self, before: datetime) -> int:
        """Delete every record, vehicle session, amendment and event the service received before
        `before`, and binding codes that expired before it; returns how many rows went."""
        cutoff = utc_text(before)
        gone = 0
        with self._tx() as conn:
            for table in KIND_TABLES.values():
                gone += conn.execute(f"DELETE FROM {table} WHERE received_at < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM binding_codes WHERE expires_at < ?", (cutoff,))
        return gone
