"""The site's enrolled faces, on the device: one SQLite file.

Each row is one encoding (128 float32 numbers) of one person's face, with the face id the kiosk
sends to the service after a match, the person id, the name **already masked** (王*明: the full name
is never stored here, not even for local enrolments) and where the row came from: `local` (a
technician's `sentinel faces enroll`) or `service` (synced from `GET /v1/faces`). A person may
have several rows (several enrolment photos). Face images are not kept unless the enrolment asked
for it (`--keep-image`); then the face crop is kept next to the database and removed with it.

Encodings are personal data (biometric). The file lives in `<state_dir>/faces/`, which
`sentinel wipe` destroys; the directory is 0700 and the file 0600 (created so, whatever the
umask), SQLite's `secure_delete` zeroes removed rows, and a removal checkpoints the WAL so the old
rows do not linger there either. Retention: the gallery exists only while `[faces] enabled` is
true; `destroy_if_disabled(config)`, called at kiosk start, overwrites and deletes a gallery left
from when the site used faces.

Technicians run `sentinel faces …` with sudo in a folder the kiosk user owns, so nothing here
follows a symbolic link (sentinel/state_files.py): a linked `faces/` or `images/` folder or a
linked gallery file is refused (GalleryError, or OSError from the open), and a kept image is
overwritten and removed through the `images/` folder's descriptor with O_NOFOLLOW, never outside.

Standard library only at import time; numpy is loaded by whoever asks for a matrix.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.config import ID_PATTERN
from sentinel.faces.engine import ENCODING_LENGTH
from sentinel.service.masking import mask_name
from sentinel.state_files import FACES_DIR_NAME, GALLERY_NAME, IMAGES_DIR_NAME, create_file, make_dirs, open_child_dir

if TYPE_CHECKING:
    import numpy as np

    from sentinel.config import SentinelConfig

# FACES_DIR_NAME (the folder in state_dir that holds the gallery and kept images; `sentinel wipe`
# destroys it), GALLERY_NAME and IMAGES_DIR_NAME: sentinel/state_files.py names them.
SOURCES = ("local", "service")
log = logging.getLogger("sentinel.faces")
_PACK = struct.Struct(f"<{ENCODING_LENGTH}f")
_ID = re.compile(ID_PATTERN)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    face_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    name_masked TEXT NOT NULL,
    encoding BLOB NOT NULL CHECK (length(encoding) = {_PACK.size}),
    source TEXT NOT NULL CHECK (source IN ('local', 'service')),
    image TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_by_person ON faces (person_id);
CREATE INDEX IF NOT EXISTS faces_by_face ON faces (face_id);
CREATE TABLE IF NOT EXISTS sync (
    site_id TEXT PRIMARY KEY,
    as_of TEXT NOT NULL,
    full_at TEXT NOT NULL
);
"""


def gallery_path(config: "SentinelConfig") -> Path:
    """Where the kiosk keeps its gallery: inside `<state_dir>/faces/`, so `sentinel wipe` takes it."""
    return config.device.state_dir / FACES_DIR_NAME / GALLERY_NAME


def destroy_if_disabled(config: "SentinelConfig") -> list[str]:
    """Retention: with `[faces] enabled = false` the device keeps no face data, so a gallery left
    from when faces were on (`<state_dir>/faces/`: encodings, kept images) is overwritten and
    deleted. Called at kiosk start; returns what was destroyed. Never raises: a read-only card is
    logged and tried again at the next start. Does nothing while faces are on."""
    if config.faces.enabled:
        return []
    from sentinel.wipe import wipe

    state_dir = config.device.state_dir
    if not (state_dir / FACES_DIR_NAME).exists() and not (state_dir / FACES_DIR_NAME).is_symlink():
        return []
    try:
        report = wipe(state_dir, config.outbox_path, only=FACES_DIR_NAME)
    except OSError as e:
        log.error("[faces] is off, but the old face gallery cannot be removed: %s", e)
        return []
    if report.files:
        log.warning("[faces] is off: the face gallery left in %s was destroyed (%d files)", state_dir / FACES_DIR_NAME, len(report.files))
    for problem in report.errors:
        log.error("[faces] is off, but the old face gallery is not completely removed: %s", problem)
    return report.files


def pack(encoding: Sequence[float]) -> bytes:
    values = [float(v) for v in encoding]
    if len(values) != ENCODING_LENGTH:
        raise ValueError(f"a face encoding has {ENCODING_LENGTH} numbers, not {len(values)}")
    if not all(v == v and abs(v) < 1e6 for v in values):  # NaN or absurd
        raise ValueError("a face encoding holds NaN or out-of-range numbers")
    return _PACK.pack(*values)


def unpack(blob: bytes) -> tuple[float, ...]:
    return _PACK.unpack(blob)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class GalleryError(Exception):
    """An enrolment or change the gallery refuses; the message is for the technician."""


@dataclass(frozen=True)
class GalleryEntry:
    id: int
    face_id: str = field(repr=False)
    person_id: str
    name_masked: str
    encoding: tuple[float, ...] = field(repr=False)
    source: str
    updated_at: datetime
    image: str | None = None


@dataclass(frozen=True)
class PersonSummary:
    person_id: str
    face_id: str
    name_masked: str
    sources: tuple[str, ...]
    encodings: int
    images: int
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "face_id": self.face_id,
            "name_masked": self.name_masked,
            "sources": list(self.sources),
            "encodings": self.encodings,
            "images": self.images,
            "updated_at": self.updated_at.isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class SyncState:
    site_id: str
    as_of: datetime  # the service's clock at the last answer: `since` for the next delta
    full_at: datetime  # the service's clock at the last full sync


class Gallery:
    """`Gallery(path)`; `Gallery(None)` keeps it in memory (tests, `faces match --encoding`)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.RLock()
        self._writes = 0
        if self.path is not None:
            # created 0700/0600 before SQLite opens it (sudo's umask may be 022), never through a link
            folder = make_dirs(self.path.parent)
            try:
                os.close(create_file(folder, self.path.name))
            except OSError as e:
                raise GalleryError(f"{self.path}: {e.strerror or e} (a symbolic link is never followed)") from None
            finally:
                os.close(folder)
        self._conn = sqlite3.connect(
            ":memory:" if self.path is None else str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            self._conn.execute("PRAGMA secure_delete=ON")
            if self.path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)

    @classmethod
    def for_config(cls, config: "SentinelConfig") -> "Gallery":
        return cls(gallery_path(config))

    @property
    def images_dir(self) -> Path | None:
        return None if self.path is None else self.path.parent / IMAGES_DIR_NAME

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self):
        return _Transaction(self)

    # --- reading ------------------------------------------------------------------------------

    def version(self) -> tuple[int, int]:
        """Changes whenever the rows may have changed, from this process or another (a technician
        enrolling while the kiosk runs): cheap enough to ask on every detection."""
        with self._lock:
            return self._writes, self._conn.execute("PRAGMA data_version").fetchone()[0]

    def entries(self) -> list[GalleryEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, face_id, person_id, name_masked, encoding, source, updated_at, image FROM faces ORDER BY person_id, id"
            ).fetchall()
        return [
            GalleryEntry(
                r["id"], r["face_id"], r["person_id"], r["name_masked"], unpack(r["encoding"]), r["source"],
                datetime.fromisoformat(r["updated_at"]), r["image"],
            )
            for r in rows
        ]

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM faces").fetchone()[0]

    def people(self) -> list[PersonSummary]:
        by_person: dict[str, list[GalleryEntry]] = {}
        for e in self.entries():
            by_person.setdefault(e.person_id, []).append(e)
        return [
            PersonSummary(
                person_id=pid,
                face_id=rows[-1].face_id,
                name_masked=rows[-1].name_masked,
                sources=tuple(sorted({r.source for r in rows})),
                encodings=len(rows),
                images=sum(1 for r in rows if r.image),
                updated_at=max(r.updated_at for r in rows),
            )
            for pid, rows in by_person.items()
        ]

    def matrix(self) -> tuple[list[GalleryEntry], "np.ndarray"]:
        """The entries and their encodings as an N×128 float32 matrix (row i is entry i)."""
        import numpy as np

        entries = self.entries()
        if not entries:
            return [], np.zeros((0, ENCODING_LENGTH), np.float32)
        return entries, np.array([e.encoding for e in entries], dtype=np.float32)

    def sync_state(self, site_id: str) -> SyncState | None:
        with self._lock:
            row = self._conn.execute("SELECT site_id, as_of, full_at FROM sync WHERE site_id = ?", (site_id,)).fetchone()
        if row is None:
            return None
        return SyncState(row["site_id"], datetime.fromisoformat(row["as_of"]), datetime.fromisoformat(row["full_at"]))

    # --- local enrolment ---------------------------------------------------------------------

    def enrol(
        self,
        person_id: str,
        name: str,
        encodings: Iterable[Sequence[float]],
        *,
        face_id: str | None = None,
        images: Sequence[str | None] | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Add a person's encodings (a technician's enrolment); the name is masked before it is
        stored. `face_id` is what the service knows the face by (default: the person id).
        Returns the new rows' ids."""
        if not _ID.match(person_id):
            raise GalleryError(f"person id {person_id!r}: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        face_id = face_id or person_id
        if not 1 <= len(face_id) <= 512 or any(c.isspace() or ord(c) < 32 for c in face_id):
            raise GalleryError(f"face id {face_id!r}: 1–512 printable characters without spaces")
        masked = mask_name(name)[:64]
        if not masked:
            raise GalleryError("the name is empty")
        blobs = [pack(e) for e in encodings]
        if not blobs:
            raise GalleryError("nothing to enrol: no face encodings")
        images = list(images) if images is not None else [None] * len(blobs)
        now_text = _utc(now or datetime.now(UTC))
        with self._tx() as conn:
            other = conn.execute(
                "SELECT person_id FROM faces WHERE face_id = ? AND person_id != ? LIMIT 1", (face_id, person_id)
            ).fetchone()
            if other is not None:
                raise GalleryError(f"face id {face_id!r} already belongs to person {other['person_id']}")
            ids = []
            for blob, image in zip(blobs, images, strict=True):
                cur = conn.execute(
                    "INSERT INTO faces (face_id, person_id, name_masked, encoding, source, image, updated_at) "
                    "VALUES (?, ?, ?, ?, 'local', ?, ?)",
                    (face_id, person_id, masked, blob, image, now_text),
                )
                ids.append(cur.lastrowid)
            # One person, one name and one face id: later enrolments update the earlier rows.
            conn.execute(
                "UPDATE faces SET name_masked = ?, face_id = ? WHERE person_id = ? AND source = 'local'",
                (masked, face_id, person_id),
            )
        return ids

    def remove(self, person_id: str) -> int:
        """Remove every row of a person (local and synced; a synced person comes back with the
        next full sync while the service still lists them) and their kept images; returns rows removed."""
        with self._tx() as conn:
            images = [r["image"] for r in conn.execute("SELECT image FROM faces WHERE person_id = ? AND image IS NOT NULL", (person_id,))]
            removed = conn.execute("DELETE FROM faces WHERE person_id = ?", (person_id,)).rowcount
        for image in images:
            self._shred_image(image)
        if removed:
            self._checkpoint()
        return removed

    def image_path(self, name: str) -> Path:
        if self.images_dir is None:
            raise GalleryError("an in-memory gallery keeps no images")
        if "/" in name or name.startswith("."):
            raise GalleryError(f"bad image name {name!r}")
        return self.images_dir / name

    def open_images_dir(self, create: bool = False) -> int:
        """A descriptor of the images folder, never through a link (SymlinkRefused)."""
        if self.images_dir is None:
            raise GalleryError("an in-memory gallery keeps no images")
        folder = open_child_dir(None, str(self.path.parent), self.path.parent)
        try:
            if create:
                from sentinel.state_files import make_dir

                return make_dir(folder, IMAGES_DIR_NAME, shown=self.images_dir)
            return open_child_dir(folder, IMAGES_DIR_NAME, self.images_dir)
        finally:
            os.close(folder)

    def _shred_image(self, name: str) -> None:
        """Overwrite and remove a kept image, inside the images folder only (a link there, or an
        images folder that is a link, is never followed: logged, nothing outside is touched)."""
        from sentinel.wipe import shred_at

        try:
            self.image_path(name)  # the name's rules
            images = self.open_images_dir()
        except FileNotFoundError:
            return
        except (GalleryError, OSError) as e:
            log.error("face image %s not removed: %s", name, e)
            return
        try:
            shred_at(images, name)
        except FileNotFoundError:
            pass
        finally:
            os.close(images)

    # --- the service's gallery ----------------------------------------------------------------

    def apply_service(self, site_id: str, faces: Iterable[Any], as_of: datetime, *, full: bool) -> tuple[int, int]:
        """Store a `GET /v1/faces` answer (entries with face_id, person_id, name_masked, encoding).
        Each face id listed replaces that face's synced rows; a full answer also removes synced
        rows it does not list. Local enrolments are never touched. Returns (entries stored, face ids removed)."""
        rows = [(f.face_id, f.person_id, str(f.name_masked)[:64], pack(f.encoding)) for f in faces]
        now_text = _utc(as_of)
        removed = 0
        with self._tx() as conn:
            if full:
                before = {r[0] for r in conn.execute("SELECT DISTINCT face_id FROM faces WHERE source = 'service'")}
                removed = len(before - {r[0] for r in rows})
                conn.execute("DELETE FROM faces WHERE source = 'service'")
            else:
                for face_id, *_ in rows:
                    conn.execute("DELETE FROM faces WHERE source = 'service' AND face_id = ?", (face_id,))
            conn.executemany(
                "INSERT INTO faces (face_id, person_id, name_masked, encoding, source, updated_at) VALUES (?, ?, ?, ?, 'service', ?)",
                [(*row, now_text) for row in rows],
            )
            previous = conn.execute("SELECT full_at FROM sync WHERE site_id = ?", (site_id,)).fetchone()
            full_at = now_text if full or previous is None else previous["full_at"]
            conn.execute("DELETE FROM sync WHERE site_id != ?", (site_id,))  # a re-bound device starts over
            conn.execute(
                "INSERT INTO sync (site_id, as_of, full_at) VALUES (?, ?, ?) "
                "ON CONFLICT (site_id) DO UPDATE SET as_of = excluded.as_of, full_at = excluded.full_at",
                (site_id, now_text, full_at),
            )
        self._checkpoint()  # replaced and removed encodings do not linger in the WAL
        return len(rows), removed

    def _checkpoint(self) -> None:
        if self.path is not None:
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _Transaction:
    def __init__(self, gallery: Gallery) -> None:
        self._g = gallery

    def __enter__(self) -> sqlite3.Connection:
        self._g._lock.acquire()
        try:
            self._g._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._g._lock.release()
            raise
        return self._g._conn

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                self._g._conn.execute("COMMIT")
                self._g._writes += 1
            else:
                self._g._conn.execute("ROLLBACK")
        finally:
            self._g._lock.release()
