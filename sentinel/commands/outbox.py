"""`sentinel outbox status|flush|export`: the technician's view of the records not yet delivered.

- `status` reads the outbox without changing it (safe while the kiosk runs): how many records wait,
  how old the oldest is, how close to the caps, the last upload and the last error, the alarms.
- `flush` uploads everything now, in the foreground, with a progress bar.
- `export FILE` writes the records as JSON Lines (one `RecordIn` per line, exactly what
  `POST /v1/records` takes), for carrying them out by hand from a device that will never be online
  again. It reads damaged files as far as they can be read (`--from` a corrupt copy): what SQL can
  still reach, and, when the file shows damage (no header, a damaged page, a -wal SQLite would cut
  short), every intact record body found in the raw bytes of the file and its -wal
  (`sentinel.outbox.iter_file_rows`). Such an export may include records already delivered; the
  service stores an id once, so sending them again is harmless.

At the caps nothing is dropped: see CAP_POLICY.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.commands._config import load_or_report
from sentinel.config import SentinelConfig

NAME = "outbox"
HELP = "records waiting for upload: status, flush, export"

CAP_POLICY = (
    "Records are never dropped. From {alarm:.0%} of either cap the alarm is logged and shown; at the cap "
    "({max_records:,} records, or the oldest {max_age_h:g} h old) the kiosk goes on checking and recording "
    "everyone, but the gate no longer opens by itself: each verdict that would pass becomes "
    "'staff will check' (reason outbox_full / outbox_overdue) until the backlog is delivered."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="/etc/sentinel/sentinel.toml", help="config file (default /etc/sentinel/sentinel.toml)")

    p = sub.add_parser("status", parents=[common], help="records waiting, caps, last upload, alarms (exit 1 when critical)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.add_argument("--outbox", type=Path, metavar="FILE", help="read this outbox file instead of the configured one")

    p = sub.add_parser("flush", parents=[common], help="upload every waiting record now, with a progress bar")
    p.add_argument("--max-failures", type=int, default=5, metavar="N", help="give up after N failed attempts in a row (default 5)")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto", help="progress bar (auto: only on a terminal)")

    p = sub.add_parser("export", parents=[common], help="write waiting records to FILE as JSON Lines (RecordIn per line)")
    p.add_argument("file", help="output file; '-' for standard output")
    p.add_argument("--from", dest="source", type=Path, metavar="DB", help="read this outbox file, e.g. a corrupt copy, instead of the configured one")
    p.add_argument("--rejected", action="store_true", help="export the records the service refused (with its reason) instead")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _config(args: argparse.Namespace) -> SentinelConfig | None:
    return load_or_report(args.config)


def _limits(config: SentinelConfig):
    from sentinel.outbox import OutboxLimits

    return OutboxLimits.from_config(config.outbox)


def cap_policy(config: SentinelConfig) -> str:
    o = config.outbox
    return CAP_POLICY.format(alarm=o.alarm_fraction, max_records=o.max_records, max_age_h=o.max_age_h)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    return {"status": _status, "flush": _flush, "export": _export}[args.action](args, config)


# --- status ------------------------------------------------------------------------------------


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    s = (now - moment).total_seconds()
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 172800:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} days ago"


def _kiosk_running(state_dir: Path) -> bool | None:
    from sentinel.state_lock import StateLock, StateLockHeld

    if not state_dir.is_dir():
        return False
    try:
        StateLock(state_dir).acquire().release()
    except StateLockHeld:
        return True
    except OSError:
        return None
    return False


def _status(args: argparse.Namespace, config: SentinelConfig) -> int:
    from sentinel.outbox import inspect

    path = args.outbox or config.outbox_path
    now = datetime.now(UTC)
    seen = inspect(path, _limits(config), now)
    running = _kiosk_running(config.device.state_dir)
    meta = seen.meta
    last_success = datetime.fromisoformat(meta["last_success_at"]) if meta.get("last_success_at") else None
    last_error_at = datetime.fromisoformat(meta["last_error_at"]) if meta.get("last_error_at") else None
    h = seen.health
    level = "critical" if h is None else h.level
    if args.json:
        out: dict[str, Any] = {
            "path": seen.path,
            "exists": seen.exists,
            "size_bytes": seen.size_bytes,
            "kiosk_running": running,
            "error": seen.error,
            "level": level,
            "health": None if h is None else h.as_dict(),
            "alarm_texts": [] if h is None else h.messages("en"),
            "last_success_at": meta.get("last_success_at"),
            "last_error": meta.get("last_error"),
            "last_error_at": meta.get("last_error_at"),
            "delivered_total": int(meta.get("delivered_total", 0)),
            "cap_policy": cap_policy(config),
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 1 if level == "critical" else 0

    run_text = {True: "kiosk running", False: "kiosk not running", None: "kiosk state unknown"}[running]
    print(f"outbox        {seen.path} ({seen.size_bytes / 1e6:.1f} MB, {run_text})")
    if seen.error:
        print(f"unreadable    {seen.error}")
    if h is not None:
        oldest = "-" if h.oldest_created_at is None else f"{h.oldest_created_at.isoformat()} ({_ago(h.oldest_created_at, now)})"
        print(f"waiting       {h.depth:,} records; oldest {oldest}")
        print(
            f"caps          {h.depth:,} / {h.max_records:,} records ({h.size_fraction:.1%}), "
            f"age {(h.oldest_age_s or 0) / 3600:.1f} / {h.max_age_s / 3600:g} h ({h.age_fraction:.1%})"
        )
        if h.rejected:
            print(f"set aside     {h.rejected:,} record{'' if h.rejected == 1 else 's'} refused by the service (sentinel outbox export --rejected FILE)")
    print(f"last upload   {'-' if last_success is None else last_success.isoformat()} ({_ago(last_success, now)}); "
          f"{int(meta.get('delivered_total', 0)):,} delivered in all")
    if meta.get("last_error"):
        print(f"last error    {meta['last_error']} ({_ago(last_error_at, now)})")
    if h is not None:
        for text in h.messages("en") or ["none"]:
            print(f"alarm         {text}")
        for copy in h.corrupt_copies:
            print(f"corrupt copy  {copy} (sentinel outbox export --from {copy} FILE; sentinel wipe removes it)")
    print(f"at the cap    {cap_policy(config)}")
    return 1 if level == "critical" else 0


# --- flush -------------------------------------------------------------------------------------


def _flush(args: argparse.Namespace, config: SentinelConfig) -> int:
    from sentinel.client import ClientError
    from sentinel.kiosk import make_client, make_uploader, open_outbox

    try:
        transport = make_client(config)
    except ClientError as e:
        print(f"sentinel outbox flush: {e}", file=sys.stderr)
        return 2
    from sentinel.outbox import OutboxError

    try:
        # next to a running kiosk, the kiosk owns the file: a corrupt one is its to move aside
        outbox = open_outbox(config, recover=not _kiosk_running(config.device.state_dir))
    except OutboxError as e:
        transport.close()
        print(f"sentinel outbox flush: {e}", file=sys.stderr)
        return 1
    try:
        uploader = make_uploader(config, outbox, transport)
        bar = _progress_bar(args.progress, outbox.health().depth)
        try:
            result = uploader.drain(progress=bar.update, max_failures=args.max_failures)
        finally:
            bar.close()
    finally:
        outbox.close()
        transport.close()
    print(f"delivered {result.delivered:,} records; {result.set_aside:,} refused and set aside; {result.remaining:,} still waiting")
    if result.remaining:
        print(f"stopped: {result.last_error or 'not all records were delivered'}", file=sys.stderr)
        return 1
    return 0


class _progress_bar:
    """tqdm on a terminal (or with --progress always); silent otherwise."""

    def __init__(self, mode: str, total: int):
        from tqdm import tqdm

        disable = {"auto": None, "always": False, "never": True}[mode]  # None: only on a TTY
        self._bar = tqdm(total=total, unit="rec", desc="flush", disable=disable, file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


# --- export ------------------------------------------------------------------------------------


def _export(args: argparse.Namespace, config: SentinelConfig) -> int:

    source = args.source or config.outbox_path
    if not source.exists():
        print(f"sentinel outbox export: {source} does not exist", file=sys.stderr)
        return 2
    table = "rejected" if args.rejected else "records"
    if args.file != "-" and Path(args.file).exists() and not args.force:
        print(f"sentinel outbox export: {args.file} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    lines = _export_lines(source, table)
    if args.file == "-":
        count = 0
        for line in lines:
            sys.stdout.write(line + "\n")
            count += 1
        sys.stdout.flush()
    else:
        count = _write_private(Path(args.file), lines)
    what = "refused records" if args.rejected else "records waiting for upload"
    print(
        f"exported {count:,} {what} from {source} to {args.file}; they stay on the device until delivered "
        "or wiped (sentinel wipe). The file holds personal data: carry it encrypted.",
        file=sys.stderr,
    )
    return 0


def _export_lines(source: Path, table: str):
    import sqlite3

    from sentinel.outbox import iter_file_rows, readonly_uri

    if table == "records":
        for _id, _created, body in iter_file_rows(source, "records"):
            yield json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":"))
        return
    # rejected: the record with the service's reason, one object per line
    db = sqlite3.connect(readonly_uri(source), uri=True)
    try:
        rows = db.execute("SELECT body, error, message, rejected_at FROM rejected ORDER BY id").fetchall()
    except sqlite3.Error as e:
        print(f"sentinel outbox export: cannot read refused records: {e}", file=sys.stderr)
        rows = []
    finally:
        db.close()
    for body, error, message, rejected_at in rows:
        yield json.dumps({"record": json.loads(body), "error": error, "message": message, "rejected_at": rejected_at},
                         ensure_ascii=False, separators=(",", ":"))


def _write_private(path: Path, lines) -> int:
    """Owner-only file, written in full and synced before it takes its name (sentinel.atomic)."""
    from sentinel.atomic import write_atomic

    lines = list(lines)
    write_atomic(path, "".join(line + "\n" for line in lines).encode("utf-8"))
    return len(lines)
