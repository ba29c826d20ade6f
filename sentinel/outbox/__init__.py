"""The durable local outbox: every check record is committed here before the gate opens.

SQLite in WAL mode with synchronous=FULL, because SD cards lose power mid-write and the records
are what contact tracing relies on. One row per record, keyed by its time-ordered id, so `pending`
hands them out oldest first; a row is deleted only when the service acknowledged its id, and with
`secure_delete` on, the deleted bytes are overwritten rather than left in free pages.

Nothing is dropped silently. The ways a record could be lost, and what happens instead:

- **The outbox grows past its caps** (`max_records` undelivered records, or the oldest older than
  `max_age_s`): records are still written; `health().at_cap` tells the pipeline to stop opening the
  gate by itself (staff check each person), and the alarm is logged and shown from
  `alarm_fraction` of either cap.
- **The disk refuses a write** (full, I/O error, locked): `add` raises `OutboxError`, so the gate
  does not open on a record that is not durable; the pipeline hands the record to `spill`, which
  keeps it in memory (at most `spill_max`), retries writing it on every later `add` and uploader
  pass, and lets the uploader deliver it straight from memory meanwhile. Only a record that finds
  the spill full is lost, and that is counted, logged as critical and shown.
- **The file is corrupt** (not a database, a failed `quick_check`, a malformed page at run time):
  it is moved aside with its -wal/-shm as `<name>.corrupt-<UTC time>` for a technician, every
  record still readable in it is copied into a new file, and the alarm says so. `sentinel outbox
  export --from` reads such a copy; `sentinel wipe` destroys it.
- **The -wal is damaged** (a bad sector, a torn page after a power cut): SQLite's own recovery
  stops at the first frame whose checksum or salt is wrong and silently drops every transaction
  after it, committed or not. So before SQLite touches the file, `wal_damage` checks every frame
  itself: a committed frame that is still intact *after* a broken one means committed records
  would vanish. Such a file is handled as corrupt (moved aside with its -wal, alarm, salvage).
  A torn tail with nothing valid after it is an unfinished transaction (its `add` never
  returned), which SQLite rightly discards; that is not damage.
- **SQLite cannot reach a record any more** (page 1 overwritten, a damaged b-tree page above
  intact leaves): salvage does not stop at what SQL can read. `scan_bodies` reads the raw bytes
  of the file and its -wal for record bodies (leaf page by leaf page, following overflow chains,
  and by searching the bytes for the JSON of a body), keeps those that validate as a record, one
  per id, and adds the ones SQL did not return. The scan may bring back a record already
  delivered (its old page image is still in the -wal): it is sent again and the service, which
  stores an id once, acknowledges it again: at least once, never lost.

Records the service refused for good (`rejected`: wrong device, wrong site, id conflict) are moved
to a `rejected` table, kept for audit and export, and never retried, for `rejected_retention_s`
(config `outbox.rejected_retention_days`, 30 days): purged when the outbox opens and at most once
an hour after that. The service's rejection text reaches the log only through
`sentinel.textsafe.printable` (no escape sequences, no forged log lines).

Delivered records leave no copy behind. `secure_delete` overwrites a deleted row in its page, but
the -wal still holds the page images from before the delete until a checkpoint copies the new ones
back and the -wal is truncated. So after acknowledgements the outbox runs
`PRAGMA wal_checkpoint(TRUNCATE)` when it has become empty, and otherwise at least every
`CHECKPOINT_EVERY_ACKS` deleted records (a few milliseconds; the kiosk's next commit starts a fresh
-wal). A checkpoint that a reader blocks is simply tried again at the next occasion.

The package has five parts, one job each: `store` (the `Outbox`, its lock and its spill), `sqlite`
(the file: schema, pragmas, transactions, moving a damaged file aside and salvaging it), `health`
(caps, alarms and their texts, no disk), `files` (inspection and export of a file, read only) and
`salvage` (records from the raw bytes, -wal frame checks).
Every name is re-exported here, so `from sentinel.outbox import X` works as it always did.
"""

from sentinel.outbox.files import (
    BUSY_TIMEOUT_MS,
    Inspection,
    corrupt_copies,
    inspect,
    is_corruption,
    iter_file_rows,
    readonly_uri,
    sidecars,
)
from sentinel.outbox.health import (
    ALARM_TEXT,
    OutboxHealth,
    OutboxLimits,
    build_health,
)
from sentinel.outbox.salvage import scan_bodies, wal_damage
from sentinel.outbox.store import (
    CHECKPOINT_EVERY_ACKS,
    NOTES_MAX,
    PURGE_INTERVAL_S,
    Outbox,
)
from sentinel.outbox.sqlite import JOURNAL_SIZE_LIMIT, SCHEMA_VERSION, OutboxError

__all__ = [
    "ALARM_TEXT",
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_EVERY_ACKS",
    "JOURNAL_SIZE_LIMIT",
    "NOTES_MAX",
    "PURGE_INTERVAL_S",
    "SCHEMA_VERSION",
    "Inspection",
    "Outbox",
    "OutboxError",
    "OutboxHealth",
    "OutboxLimits",
    "build_health",
    "corrupt_copies",
    "inspect",
    "is_corruption",
    "iter_file_rows",
    "readonly_uri",
    "scan_bodies",
    "sidecars",
    "wal_damage",
]
