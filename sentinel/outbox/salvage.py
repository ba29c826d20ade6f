"""Salvage from the raw bytes of an outbox file, where SQL cannot help: `scan_bodies` finds the
record bodies in the pages of the file and its -wal (leaf pages, overflow chains, and the JSON
of a body searched for in the bytes), and `wal_damage` checks every -wal frame itself, because
SQLite's recovery silently drops every transaction after the first broken frame. Read only;
`sentinel.outbox.files.iter_file_rows` and the store use them. Why each step exists:
`sentinel/outbox/__init__.py`.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterator
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from sentinel.contract import AnyRecordIn

log = logging.getLogger("sentinel.outbox")

# --- raw bytes: record bodies SQLite cannot reach, and a -wal SQLite would silently cut short -----

#: how a stored body starts: a check record (`RecordIn`, id first), or a vehicle session, an
#: amendment or an event (kind first)
_BODY_STARTS = (b'{"id":"', b'{"kind":"vehicle_session"', b'{"kind":"amendment"', b'{"kind":"event"')
#: the longest body looked for in one piece (a check record is about 400 bytes)
_BODY_MAX = 16 * 1024


def scan_bodies(path: Path | str) -> Iterator[tuple[str, str, str]]:
    """(id, created_at, body) of every well-formed record body found in the raw bytes of the file
    at `path` and its -wal, each id once. Two ways, because either can fail alone:

    - every page image (the file's pages and every -wal frame, damaged or not) that holds rows (a
      b-tree leaf, or an index b-tree's interior page) is read cell by cell, following a cell's
      overflow chain through the newest image of each page, so a body larger than one page's
      share (a vehicle session) comes back too; this needs neither page 1 nor the pages that
      point to the one being read;
    - the bytes are searched for the start of a body and parsed from there, for pages whose
      header or cell pointers are damaged.

    A body counts only if it is valid UTF-8, one JSON object, and validates as a record
    (`AnyRecordIn`): a damaged body is left out rather than brought back altered."""
    path = Path(path)
    files = []
    for file in (path, Path(f"{path}-wal")):
        try:
            files.append(file.read_bytes())
        except FileNotFoundError:
            files.append(b"")
        except OSError as e:
            log.error("cannot read %s for record bodies: %s", file, e)
            files.append(b"")
    db, wal = files
    found: set[str] = set()
    for body in (*_btree_bodies(db, wal), *_json_bodies(db), *_json_bodies(wal)):
        try:
            model = _ANY_RECORD.validate_json(body)
        except (ValidationError, ValueError):
            continue
        if model.id not in found:
            found.add(model.id)
            yield model.id, model.created_at.isoformat(), body


def _json_bodies(data: bytes) -> Iterator[str]:
    decoder = json.JSONDecoder()
    starts = sorted(i for marker in _BODY_STARTS for i in _find_all(data, marker))
    for n, pos in enumerate(starts):
        # usually the body ends before the next one starts; if not, try a longer window
        ends = [pos + _BODY_MAX]
        if n + 1 < len(starts) and starts[n + 1] - pos < _BODY_MAX:
            ends.insert(0, starts[n + 1])
        for end in ends:
            body = _json_object_at(decoder, data, pos, end)
            if body is not None:
                yield body
                break


def _page_size(db: bytes, wal: bytes) -> int:
    if db[:16] == b"SQLite format 3\x00" and len(db) >= 18:
        size = struct.unpack_from(">H", db, 16)[0]
        size = 65536 if size == 1 else size
        if 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    if len(wal) >= _WAL_HEADER.size:
        magic, _v, size, *_rest = _WAL_HEADER.unpack_from(wal)
        if magic in _WAL_MAGIC and 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    return 4096  # what SQLite uses unless told otherwise (the outbox never tells it)


def _btree_bodies(db: bytes, wal: bytes) -> Iterator[str]:
    """The third column (`body`) of every cell of every b-tree page image that holds rows, as text."""
    size = _page_size(db, wal)
    images: list[tuple[int, bytes]] = [(n + 1, db[n * size:(n + 1) * size]) for n in range(len(db) // size)]
    frame = _WAL_FRAME_HEADER.size + size
    if len(wal) >= _WAL_HEADER.size:
        for at in range(_WAL_HEADER.size, len(wal) - frame + 1, frame):
            number = struct.unpack_from(">I", wal, at)[0]
            images.append((number, wal[at + _WAL_FRAME_HEADER.size:at + frame]))
    newest = dict(images)  # later -wal frames are newer versions of a page
    for number, image in images:
        try:
            yield from _leaf_bodies(number, image, newest, size)
        except (IndexError, struct.error, ValueError):
            continue  # a damaged page: the JSON search still looks at its bytes


def _leaf_bodies(number: int, page: bytes, pages: dict[int, bytes], size: int) -> Iterator[str]:
    """The bodies in one page image: a leaf, or an index page's interior cells."""
    head = 100 if number == 1 else 0
    kind = page[head]
    # index pages (WITHOUT ROWID tables) keep whole rows in interior cells too; table leaves
    if kind not in (0x02, 0x0A, 0x0D):
        return
    cells = struct.unpack_from(">H", page, head + 3)[0]
    pointers = head + (12 if kind == 0x02 else 8)
    usable = size  # the outbox reserves no bytes at the end of a page
    if kind == 0x0D:
        most = usable - 35
    else:
        most = (usable - 12) * 64 // 255 - 23
    least = (usable - 12) * 32 // 255 - 23
    for i in range(cells):
        at = struct.unpack_from(">H", page, pointers + 2 * i)[0]
        if not pointers <= at < size:
            continue
        if kind == 0x02:
            at += 4  # the left child's page number
        total, at = _varint(page, at)
        if kind == 0x0D:
            _rowid, at = _varint(page, at)
        if total <= most:
            payload = page[at:at + total]
        else:
            local = least + (total - least) % (usable - 4)
            local = local if local <= most else least
            payload = bytearray(page[at:at + local])
            next_page = struct.unpack_from(">I", page, at + local)[0]
            hops = 0
            while len(payload) < total and next_page and hops <= total // (usable - 4) + 1:
                overflow = pages.get(next_page)
                if overflow is None:
                    break
                next_page = struct.unpack_from(">I", overflow, 0)[0]
                payload += overflow[4:usable]
                hops += 1
            payload = bytes(payload[:total])
            if len(payload) < total:
                continue
        body = _third_text_column(payload)
        if body is not None:
            yield body


def _third_text_column(payload: bytes) -> str | None:
    """The third column of an SQLite record, when the first three are all text."""
    header_size, at = _varint(payload, 0)
    lengths = []
    while at < header_size and len(lengths) < 3:
        serial, at = _varint(payload, at)
        if serial < 13 or serial % 2 == 0:
            return None  # not text
        lengths.append((serial - 13) // 2)
    if len(lengths) < 3:
        return None
    start = header_size + lengths[0] + lengths[1]
    raw = payload[start:start + lengths[2]]
    if len(raw) < lengths[2]:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's variable-length integer at `at`: (value, offset after it)."""
    value = 0
    for i in range(8):
        byte = data[at + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    return (value << 8) | data[at + 8], at + 9


def _find_all(data: bytes, marker: bytes) -> Iterator[int]:
    i = data.find(marker)
    while i >= 0:
        yield i
        i = data.find(marker, i + 1)


def _json_object_at(decoder: json.JSONDecoder, data: bytes, start: int, end: int) -> str | None:
    text = data[start:end].decode("utf-8", "surrogateescape")  # a cut character at the end is harmless
    try:
        _obj, length = decoder.raw_decode(text)
    except ValueError:
        return None
    body = text[:length]
    try:
        body.encode("utf-8")  # strict: a byte that is not UTF-8 inside the body means damage
    except UnicodeEncodeError:
        return None
    return body


_WAL_HEADER = struct.Struct(">IIIIIIII")  # magic, version, page size, checkpoint no, salt-1, salt-2, checksum-1, checksum-2
_WAL_FRAME_HEADER = struct.Struct(">IIIIII")  # page no, db size after commit (0: not a commit), salt-1, salt-2, checksum-1, checksum-2
_WAL_MAGIC = (0x377F0682, 0x377F0683)  # checksums over little- / big-endian words
_WAL_VERSION = 3007000


def wal_damage(path: Path | str) -> str | None:
    """Why the -wal next to `path` would lose committed transactions, or None when it would not.

    SQLite replays a -wal frame by frame and stops at the first frame whose salt does not match
    the header or whose running checksum is wrong, dropping every later frame. That is right for
    a torn tail (a transaction still being written when the process died; its commit never
    returned) and wrong for damage in the middle: then intact committed frames follow. Each frame's
    checksum is seeded by the one stored in the frame before it, so a frame after a broken one can
    still be checked on its own; an intact commit frame after the end of SQLite's replay is damage.
    A header that is not a valid WAL header, with frames after it, is damage too (SQLite would
    ignore the whole file). Reads only; the layout is SQLite's documented WAL format.

    Limits: damage to the very last committed frame looks exactly like a torn tail and is not
    reported (one transaction, the newest, is lost as SQLite would lose it). A power cut during
    the commit's fsync can, on a card that reorders writes, leave that unfinished transaction's
    commit frame intact after a torn one: that is reported as damage (fail closed: a copy, the
    alarm, and its record salvaged although its `add` never returned, so no gate opened for it)."""
    wal = Path(str(path) + "-wal")
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _WAL_HEADER.size:
        return None  # empty, or a header cut short before any frame: nothing was committed in it
    magic, version, page_size, _ckpt, salt1, salt2, c1, c2 = _WAL_HEADER.unpack_from(data)
    frame_size = _WAL_FRAME_HEADER.size + page_size
    valid_page_size = 512 <= page_size <= 65536 and page_size & (page_size - 1) == 0
    if magic not in _WAL_MAGIC or version != _WAL_VERSION or not valid_page_size:
        if len(data) >= _WAL_HEADER.size + _WAL_FRAME_HEADER.size + 512:
            return f"the -wal header is damaged ({len(data) - _WAL_HEADER.size} bytes of frames SQLite would ignore)"
        return None
    big = magic & 1
    if _wal_checksum(data[:24], (0, 0), big) != (c1, c2):
        return f"the -wal header checksum is wrong ({len(data) - _WAL_HEADER.size} bytes of frames SQLite would ignore)"
    count = (len(data) - _WAL_HEADER.size) // frame_size
    seeds, sums, salts, commits = [], [], [], []
    seed = (c1, c2)
    for i in range(count):
        at = _WAL_HEADER.size + i * frame_size
        _page, commit, s1, s2, f1, f2 = _WAL_FRAME_HEADER.unpack_from(data, at)
        seeds.append(seed)
        sums.append((f1, f2))
        salts.append((s1, s2) == (salt1, salt2))
        commits.append(commit != 0)
        seed = (f1, f2)
    checks = _wal_frame_checksums(data, count, page_size, seeds, big)
    intact = [salts[i] and checks[i] == sums[i] for i in range(count)]
    end = next((i for i, ok in enumerate(intact) if not ok), count)  # where SQLite's replay stops
    lost = [i for i in range(end + 1, count) if intact[i] and commits[i]]
    if lost:
        return (
            f"-wal frame {end + 1} of {count} is damaged and {len(lost)} intact committed "
            f"transaction{'s' if len(lost) != 1 else ''} after it would be dropped"
        )
    return None


def _wal_checksum(data: bytes, seed: tuple[int, int], big: int) -> tuple[int, int]:
    """SQLite's WAL checksum, word by word (the reference `_wal_frame_checksums` is checked against)."""
    s0, s1 = seed
    words = struct.unpack((">" if big else "<") + f"{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _wal_frame_checksums(data: bytes, count: int, page_size: int, seeds: list[tuple[int, int]], big: int) -> list[tuple[int, int]]:
    """The checksum of each frame (its header's first 8 bytes, then its page) from its seed, for
    all frames at once. The running sum is linear: one step maps (s0, s1) to M·(s0, s1) + (x0,
    x0 + x1) with M = [[1, 1], [1, 2]], so after n steps it is Mⁿ·seed + Σ Mⁿ⁻¹⁻ᵏ·uₖ, all mod
    2³² (uint64 arithmetic wraps mod 2⁶⁴, which keeps the low 32 bits right). A Python loop over
    a few thousand frames would cost seconds at start on a Pi."""
    import numpy as np

    if count == 0:
        return []
    frame_size = _WAL_FRAME_HEADER.size + page_size
    pairs = (8 + page_size) // 8
    powers = _matrix_powers(pairs)  # powers[j] = Mʲ mod 2³², shape (pairs + 1, 2, 2)
    q = powers[pairs - 1 :: -1][:pairs]  # q[k] = M^(pairs-1-k)
    dtype = np.dtype(">u4" if big else "<u4")
    raw = np.frombuffer(data, dtype=np.uint8, count=count * frame_size, offset=_WAL_HEADER.size).reshape(count, frame_size)
    out: list[tuple[int, int]] = []
    for lo in range(0, count, 256):  # bounded memory for a large -wal
        block = raw[lo : lo + 256]
        body = np.concatenate([block[:, :8], block[:, _WAL_FRAME_HEADER.size :]], axis=1)
        words = np.ascontiguousarray(body).view(dtype).astype(np.uint64).reshape(len(block), pairs, 2)
        u0 = words[:, :, 0]
        u1 = words[:, :, 0] + words[:, :, 1]
        d0 = u0 @ q[:, 0, 0] + u1 @ q[:, 0, 1]
        d1 = u0 @ q[:, 1, 0] + u1 @ q[:, 1, 1]
        seed = np.array(seeds[lo : lo + 256], dtype=np.uint64)
        m = powers[pairs]
        s0 = (m[0, 0] * seed[:, 0] + m[0, 1] * seed[:, 1] + d0) & 0xFFFFFFFF
        s1 = (m[1, 0] * seed[:, 0] + m[1, 1] * seed[:, 1] + d1) & 0xFFFFFFFF
        out.extend(zip(s0.tolist(), s1.tolist(), strict=True))
    return out


def _matrix_powers(n: int):
    import numpy as np

    powers = np.zeros((n + 1, 2, 2), dtype=np.uint64)
    a, b, c, d = 1, 0, 0, 1
    for j in range(n + 1):
        powers[j] = ((a, b), (c, d))
        # (M^j)·M with M = [[1, 1], [1, 2]]
        a, b, c, d = (a + b) & 0xFFFFFFFF, (a + 2 * b) & 0xFFFFFFFF, (c + d) & 0xFFFFFFFF, (c + 2 * d) & 0xFFFFFFFF
    return powers


def _valid(body: str) -> bool:
    """A check record or a vehicle session (what the uploader may send), as the contract has it."""
    try:
        _ANY_RECORD.validate_json(body)
    except (ValidationError, ValueError):
        return False
    return True


_ANY_RECORD: TypeAdapter = TypeAdapter(AnyRecordIn)
