"""Opening what the kiosk keeps and talks to: the service clients, the state directory and its
lock, the record key, the outbox, the status cache and the uploader. `build_kiosk`
(`sentinel.kiosk`) calls these in order, and wires the pipeline (`make_pipeline`) and its fault probe; `sentinel doctor`, `sentinel outbox` and tests call some
of them alone.

How each fails (the kiosk keeps running; `sentinel.kiosk`'s docstring has the whole picture):
no token file or the placeholder device id is `NotBound` (run `sentinel bind`); a state directory
that cannot be made is logged, critical; a read-only or full one is locked through the lock file an
earlier start left, or run unlocked (logged); another kiosk holding it is `StateLockHeld`; a record
key that cannot be written comes back as its error (no checks until it can); a status cache file
left from a `cached` policy is shredded (statuses are personal data), or logged when it cannot be.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sentinel.client import ClientError, ServiceClient, read_token
from sentinel.config import SentinelConfig
from sentinel.credentials import CredentialRules
from sentinel.outbox import Outbox, OutboxLimits
from sentinel.pipeline import Pipeline
from sentinel.ports import CheckOutcome
from sentinel.records import RecordMaker, load_or_create_key
from sentinel.state_files import LOCK_NAME, STATUS_CACHE_NAME
from sentinel.state_lock import StateLock, StateLockHeld
from sentinel.status_cache import StatusCache
from sentinel.systemd_credentials import resolve_token_file
from sentinel.uploader import Backoff, Uploader
from sentinel.wipe import shred

if TYPE_CHECKING:
    from hardware.gate import AnyGate
    from sentinel.heartbeat import ServiceContact

log = logging.getLogger("sentinel.kiosk")

#: the device id of a config that was never bound (config/default.toml; `sentinel bind` replaces it)
UNBOUND_DEVICE_ID = "unbound-device"

class NotBound(ClientError):
    """This device has no binding to a site (module docstring); the message says what to do."""

    def __init__(self, message: str):
        super().__init__("not_bound", message)


def check_bound(config: SentinelConfig) -> None:
    """Raise NotBound when a verifier that talks to the service has no device token file, or the
    config still has the placeholder device id."""
    if config.verifier.type != "http":  # only the service's verifier needs a binding
        return
    token = resolve_token_file(config.verifier.token_file)
    if not token.exists():
        raise NotBound(f"this device is not bound to a site (no device token at {token}): run `sentinel bind` first")
    if config.device.id == UNBOUND_DEVICE_ID:
        raise NotBound(f"this device is not bound to a site (device.id is still {UNBOUND_DEVICE_ID!r}): run `sentinel bind` first")


def make_client(config: SentinelConfig) -> ServiceClient:
    """One client per user: the verify path, the uploader and the heartbeat each get their own
    Session. NotBound when there is no token file at all (module docstring)."""
    v = config.verifier
    token_file = resolve_token_file(v.token_file)  # systemd LoadCredential= first
    if not token_file.exists():
        raise NotBound(f"this device is not bound to a site (no device token at {token_file}): run `sentinel bind` first")
    return ServiceClient(
        v.url,
        read_token(token_file),
        device_id=config.device.id,
        site_id=config.device.site_id,
        ca_bundle=v.ca_bundle,
        connect_timeout_s=v.connect_timeout_s,
    )


def make_state_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # each part below says what it does without it
        log.critical("cannot create the state directory %s: %s", state_dir, e)


def load_key(path: Path) -> tuple[bytes | None, str]:
    try:
        return load_or_create_key(path), ""
    except OSError as e:
        return None, str(e)


class _ReadOnlyLock:
    """The state lock taken through a read-only descriptor (flock does not need write access)."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_state_dir(state_dir: Path) -> StateLock | _ReadOnlyLock | None:
    """The state directory's lock (StateLockHeld when another kiosk has it). A read-only or full
    directory cannot take a new lock file: the one an earlier start left is locked read-only,
    and without one the kiosk runs unlocked (logged; a second kiosk could not write there either)."""
    try:
        return StateLock(state_dir).acquire()
    except StateLockHeld:
        raise
    except OSError as e:
        first = e
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        log.error("cannot lock the state directory %s (%s): running without the lock", state_dir, first)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StateLockHeld(f"{state_dir} is in use by another sentinel process (is the kiosk running?)") from None
        log.error("cannot lock the state directory %s (%s): running without the lock", state_dir, e)
        return None
    log.warning("state directory %s is not writable (%s): locked through the existing lock file", state_dir, first)
    return _ReadOnlyLock(fd)


def open_outbox(config: SentinelConfig, *, recover: bool = True) -> Outbox:
    return Outbox(config.outbox_path, limits=OutboxLimits.from_config(config.outbox), recover=recover)


def open_status_cache(config: SentinelConfig) -> StatusCache:
    """On disk for the `cached` offline policy; otherwise nothing is remembered, and a cache file
    left from when the site was `cached` is destroyed (statuses are personal data)."""
    path = config.device.state_dir / STATUS_CACHE_NAME
    ttl_s = config.policy.cached_ttl_min * 60
    if config.policy.offline == "cached":
        return StatusCache(path, ttl_s=ttl_s)  # a disk that refuses it: in memory, `problem` says why
    for p in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))):
        try:
            if p.exists():
                log.info("offline policy is %s: removing the status cache %s", config.policy.offline, p.name)
                shred(p)
        except OSError as e:  # a read-only state directory: logged, and tried again at the next start
            log.error("cannot remove the old status cache %s: %s", p, e)
    return StatusCache(None, ttl_s=ttl_s)


def make_uploader(config: SentinelConfig, outbox: Outbox, transport: ServiceClient) -> Uploader:
    o = config.outbox
    return Uploader(
        outbox,
        transport,
        batch_size=o.batch_size,
        timeout_s=o.upload_timeout_s,
        backoff=Backoff(o.retry_initial_s, o.retry_max_s),
    )


def fault_probe(gate: AnyGate, uploader: Uploader | None, contact: ServiceContact | None) -> str | None:
    """The fault to show while idle, besides the camera's: the gate's (`gate.fault`: a pulse that
    raised, a sensor stuck active), else the network's (`ServiceContact.fault`, fed here with the
    uploader's status). The pipeline asks at most once a second."""
    if gate.fault:
        return "gate"
    if contact is None:
        return None
    if uploader is not None:
        contact.observe_uploader(uploader.status())
    return "network" if contact.fault() else None


def make_pipeline(
    config, make_decoder, verifier, outbox, gate, display, status_cache, on_outcome, faces, scanner, trigger, key: bytes,
    *, faults: Callable[[], str | None] | None = None,
) -> Pipeline:
    return Pipeline(
        decoder=make_decoder(config.decoder.order, fallback_every=config.decoder.fallback_every),
        rules=CredentialRules(config.credentials),
        verifier=verifier,
        policy=config.policy,
        records=RecordMaker(config.device.id, config.device.site_id, key),
        outbox=outbox,
        gate=gate,
        display=display,
        language=config.device.language,
        debounce_s=config.credentials.debounce_s,
        deadline_s=config.verifier.deadline_s,
        result_s=config.display.result_s,
        status_cache=status_cache,
        on_outcome=on_outcome,
        faces=faces,
        scanner=scanner,
        trigger=trigger,
        faults=faults,
    )


def chain_outcomes(first: Callable[[CheckOutcome], None], then: Callable[[CheckOutcome], None] | None) -> Callable[[CheckOutcome], None]:
    """One `on_outcome` for the pipeline: `first` (logged if it raises), then `then`."""

    def both(outcome: CheckOutcome) -> None:
        try:
            first(outcome)
        except Exception:
            log.exception("outcome listener failed")
        if then is not None:
            then(outcome)

    return both
