"""The kiosk's side of the touchscreen's technician menu: what its buttons do on this kiosk, what the
kiosk does while it is open, and the audit trail it leaves.

`technician_actions(kiosk)` is what `build_kiosk` hands the display (`display.connect(actions=...)`);
besides the buttons it carries two hooks the display calls on a worker thread:

- `on_menu(opened)`: the PIN pad was asked for (`True`) → `pipeline.pause("technician")`: no new
  check starts and the relay stays closed (the gate is closed here too, for a kiosk whose pipeline
  is not running yet); the pad and the menu are gone (`False`: cancelled, exited, timed out) →
  `pipeline.resume()`. The manual gate test still pulses the gate: that is what it is for.
- `audit(event, detail)`: the right PIN (`technician_menu_opened`), a wrong or refused PIN
  (`technician_pin_failed`), the start of a lock-out (`technician_locked_out`).

Those, every manual gate test (`gate_test`) and every "Reload config" (`config_reloaded`,
`config_reload_failed`) become audit events, `RecordMaker.event(...)` put in the outbox and
uploaded like check records. Their detail is a few codes and numbers: never the PIN, never a
person, never a config value (only key names).

Reload config re-reads the file the kiosk was started with (`kiosk.config_path`; a kiosk built
from a config in memory, such as the demo, has none and says so) and validates it with the same
models as `sentinel check-config`. A file with mistakes changes nothing: the kiosk keeps running
on the config it has, and the menu shows one line per problem. A valid file is compared key by key
with the running config:

- applied at once (`LIVE_KEYS`): the site policy, the language, the site name, how long a verdict
  stays up, volume, mute, voice and the technician PIN's hash;
- everything else (camera, gate and other GPIO pins, decoder, credentials, service, outbox, state
  directory, display type and size, faces, handheld, scanner) needs the parts rebuilt. The kiosk
  does not rebuild them while it runs: a camera or relay re-opened under a running pipeline is the
  kind of half-state a restart avoids, and systemd restarts the kiosk in seconds. The menu lists
  those keys under "restart needed", and they keep their old values until then (`kiosk.config`
  is always what actually runs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sentinel.config import ConfigError, SentinelConfig, load_config
from sentinel.locale import message, plural

log = logging.getLogger("sentinel.kiosk")

InfoLines = list[tuple[str, str]]

#: config keys (a section, or section.key) a running kiosk takes from a reloaded file
LIVE_KEYS = (
    "policy",
    "device.language",
    "device.site_name",
    "display.result_s",
    "display.volume",
    "display.mute",
    "display.voice",
    "display.technician_pin_hash",
)
#: keys whose values the menu does not show (a reload lists them as changed, nothing more)
SECRET_KEYS = ("display.technician_pin_hash",)
#: most keys named in one event's detail (the event's detail is small: contract.MAX_DETAIL_BYTES)
_DETAIL_CHARS = 200


def local_time(when: datetime, *, with_zone: bool = False, today: datetime | None = None) -> str:
    """A time for the technician, in this machine's time zone (records keep UTC; a technician on
    site reads the wall clock): '2022-04-12 14:03:22', '(UTC+08:00)' added when asked; only
    '14:03:22' when it is on the same local day as `today`."""
    local = when.astimezone() if when.tzinfo else when.replace(tzinfo=UTC).astimezone()
    if today is not None and today.astimezone().date() == local.date() and not with_zone:
        return f"{local:%H:%M:%S}"
    text = f"{local:%Y-%m-%d %H:%M:%S}"
    if with_zone:
        offset = local.strftime("%z")
        text += f" (UTC{offset[:3]}:{offset[3:]})" if offset else ""
    return text


def camera_text(camera: Any, source: Any, language: str) -> str:
    """'picamera2 · 30 fps' (the configured backend and rate; a picamera2 runs at the sensor's
    rate), or the fault with its last error."""
    if not getattr(source, "healthy", True):
        error = getattr(source, "last_error", "") or "?"
        return f"{message('technician.fault', language)}: {error}"
    fps = getattr(camera, "fps", None)
    return f"{camera.type} · {fps:g} fps" if fps else f"{camera.type}"


#: the uploader's states said in words (sentinel.uploader.UploaderStatus.state), the messages
#: `technician.uploader.<state>`; another state is shown as it is
_UPLOADER_STATES = frozenset({"idle", "uploading", "retrying", "unauthorized", "stopped"})


def uploader_text(status: Any, language: str) -> str:
    words = message(f"technician.uploader.{status.state}", language) if status.state in _UPLOADER_STATES else status.state
    if status.state == "idle" and status.queue_depth:
        words = message("technician.uploader_waiting", language, n=status.queue_depth)
    if status.consecutive_failures:
        words += message("technician.uploader_failures", language, n=status.consecutive_failures)
    return words


def round_trip_text(seconds: float | None) -> str:
    """'42 ms' (under 10 s), '12.3 s', or '' when nothing was timed yet."""
    if seconds is None:
        return ""
    return f"{round(seconds * 1000)} ms" if seconds < 10 else f"{seconds:.1f} s"


def contact_text(contact: Any, language: str) -> str:
    """Reachability and the round trip of the last timed contact, from what reached the service
    lately (`heartbeat.ServiceContact`, fed by heartbeats, uploads and checks): '可达 · 42 ms'.
    No probe of its own, so it never pretends a blocked network is fine because one ping got
    through, and opening the panel sends nothing."""
    rtt = round_trip_text(getattr(contact, "round_trip_s", None))
    failures = plural("technician.failures", "technician.failures.plural", contact.failures, language)
    if contact.fault():
        words = message("technician.unreachable", language, n=contact.failures, failures=failures)
    elif getattr(contact, "last_contact_at", None) is None:
        return message("technician.no_contact", language)
    elif contact.failures:
        words = message("technician.unsteady", language, n=contact.failures, failures=failures)
    else:
        words = message("technician.reachable", language)
    return f"{words} · {rtt}" if rtt else words


def last_contact_text(contact: Any, language: str) -> str:
    """The last contact in local time and how long ago: '14:03:22（5秒前）' (the date too when it
    was not today); '' if none."""
    at = getattr(contact, "last_contact_at", None)
    if at is None:
        return ""
    age = contact.contact_age_s or 0.0
    ago = round(age)
    shown = local_time(at, today=at + timedelta(seconds=age))  # today: the time of day is enough
    if ago < 120:
        return message("technician.seconds_ago", language, time=shown, n=ago)
    return message("technician.minutes_ago", language, time=shown, n=ago // 60)


def technician_actions(kiosk: Any):
    """What the touchscreen's technician menu can do on this kiosk (each runs on a UI worker), and
    the hooks that pause the kiosk behind it and record the audit events (module docstring)."""
    from sentinel import __version__
    from ui.technician import TechnicianActions

    def words(msgid: str, **params: object) -> str:  # in the language configured now (a reload may change it)
        return message(msgid, kiosk.config.device.language, **params)

    def device_status() -> InfoLines:
        config = kiosk.config
        language = config.device.language
        return [
            (words("technician.row.device"), config.device.id),
            (words("technician.row.site"), f"{config.device.site_name} ({config.device.site_id})"),
            (words("technician.row.version"), __version__),
            (words("technician.row.camera"), camera_text(config.camera, kiosk.source, language)),
            (words("technician.row.local_time"), local_time(datetime.now(UTC), with_zone=True)),
        ]

    def network_status() -> InfoLines:
        language = kiosk.config.device.language
        rows = [(words("technician.row.service"), kiosk.config.verifier.url)]
        contact = getattr(kiosk, "contact", None)
        st = kiosk.uploader.status() if kiosk.uploader is not None else None
        if contact is not None:
            if st is not None:  # an upload the fault probe has not seen yet (it looks while the kiosk is idle)
                contact.observe_uploader(st)
            rows.append((words("technician.row.reachable"), contact_text(contact, language)))
            last = last_contact_text(contact, language)
            if last:
                rows.append((words("technician.row.last_contact"), last))
        if st is not None:
            uploads = uploader_text(st, language)
            if st.last_success_at:  # one row with the state: the panel has room for five rows at most
                uploads += f" · {words('technician.last_success')} {local_time(st.last_success_at, today=datetime.now(UTC))}"
            rows.append((words("technician.row.uploads"), uploads))
            if st.last_error:
                when = f"{local_time(st.last_error_at, today=datetime.now(UTC))} " if st.last_error_at else ""
                rows.append((words("technician.row.last_error"), f"{when}{st.last_error}"))
        return rows

    def gate_test() -> InfoLines:
        try:
            kiosk.gate.pulse()
        except Exception as e:
            record_event(kiosk, "gate_test", {"result": "failed", "error": type(e).__name__})
            raise
        record_event(kiosk, "gate_test", {"result": "pulsed"})
        return [(words("technician.row.gate"), words("technician.gate_pulsed"))]

    def outbox_status() -> InfoLines:
        return outbox_status_lines(kiosk)

    def reload() -> InfoLines:
        return reload_config(kiosk)

    return TechnicianActions(
        device_status=device_status,
        network_status=network_status,
        gate_test=gate_test,
        outbox_status=outbox_status,
        reload_config=reload,
        on_menu=lambda opened: menu_opened(kiosk, opened),
        audit=lambda event, detail: record_event(kiosk, event, detail),
    )


# --- pausing the kiosk behind the menu -------------------------------------------------------------


def menu_opened(kiosk: Any, opened: bool) -> None:
    """The display's `on_menu` hook: pause the checks (relay closed) while the PIN pad or the
    menu is up, resume when it is gone."""
    pipeline = kiosk.pipeline
    if opened:
        if pipeline is not None:
            pipeline.pause("technician")
        try:
            kiosk.gate.close()  # also without a pipeline (no record key yet): the relay stays closed
        except Exception:
            log.exception("could not close the gate for the technician menu")
        log.info("technician menu: checks paused")
    else:
        if pipeline is not None:
            pipeline.resume()
        log.info("technician menu closed: checks resume")


# --- audit events ----------------------------------------------------------------------------------


def record_event(kiosk: Any, event: str, detail: dict | None = None, at: datetime | None = None) -> bool:
    """Put an audit event in the outbox (uploaded like check records); False, logged, when it
    could not be made or kept. Never raises: an audit trail that fails must not stop the menu."""
    maker = _record_maker(kiosk)
    if maker is None:
        log.warning("audit event %s not recorded: no record key yet", event)
        return False
    try:
        ev = maker.event(event, at=at or datetime.now(UTC), detail=detail or {})
        kiosk.outbox.add(ev)
    except Exception as e:  # noqa: BLE001 - logged; an audit trail that fails must not stop the menu
        log.error("audit event %s not recorded: %s", event, e)
        return False
    log.info("audit event %s %s", event, detail or "")
    return True


def _record_maker(kiosk: Any):
    """The RecordMaker the kiosk's records are made with (device and site of the running config);
    None while the kiosk has no pipeline yet (no record key on disk)."""
    return kiosk.pipeline.records if kiosk.pipeline is not None else None


# --- reloading the config --------------------------------------------------------------------------


def reload_config(kiosk: Any, path: Path | str | None = None) -> InfoLines:
    """The menu's "Reload config" (module docstring): rows for the menu's info panel."""
    path = path or kiosk.config_path
    if path is None:
        return [("", message("technician.reload.no_file", kiosk.config.device.language))]
    try:
        new = load_config(path)
    except ConfigError as e:
        keys = [p.split(":", 1)[0] for p in e.problems]
        record_event(kiosk, "config_reload_failed", {"problems": len(e.problems), "keys": _short(", ".join(keys))})
        log.warning("config reload: %s has %d problem(s); still running on the old config", path, len(e.problems))
        head = message("technician.reload.mistakes", kiosk.config.device.language, path=path)
        return [("", head)] + [("", problem) for problem in e.problems]
    changes = diff_config(kiosk.config, new)
    live = [c for c in changes if _is_live(c[0], kiosk)]
    restart = [c for c in changes if not _is_live(c[0], kiosk)]
    if live:
        apply_live(kiosk, new)
    record_event(kiosk, "config_reloaded", {
        "applied": len(live), "restart_needed": len(restart),
        "keys": _short(", ".join(k for k, _, _ in changes)),
    })
    log.info("config reload from %s: %d applied, %d need a restart", path, len(live), len(restart))
    language = kiosk.config.device.language  # the answer in the language just applied
    if not changes:
        return [("", message("technician.reload.no_changes", language))]
    rows: InfoLines = []
    for key, old, value in live:
        rows.append((message("technician.reload.applied", language), _change(key, old, value)))
    for key, old, value in restart:
        rows.append((message("technician.reload.restart_needed", language), _change(key, old, value)))
    if restart:
        rows.append(("", message("technician.reload.restart_hint", language)))
    return rows


def diff_config(old: SentinelConfig, new: SentinelConfig) -> list[tuple[str, Any, Any]]:
    """(section.key, old value, new value) for every key that differs, in the file's order."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    changes: list[tuple[str, Any, Any]] = []
    for section in b:
        old_s, new_s = a.get(section), b[section]
        if old_s == new_s:
            continue
        if isinstance(old_s, dict) and isinstance(new_s, dict) and old_s.get("type") == new_s.get("type"):
            for key in dict.fromkeys([*old_s, *new_s]):
                if old_s.get(key) != new_s.get(key):
                    changes.append((f"{section}.{key}", old_s.get(key), new_s.get(key)))
        elif isinstance(old_s, dict) and isinstance(new_s, dict):  # another backend: the section as a whole
            changes.append((f"{section}.type", old_s.get("type"), new_s.get("type")))
        else:
            changes.append((section, old_s, new_s))
    return changes


def _is_live(key: str, kiosk: Any) -> bool:
    if key == "device.language" and kiosk.handheld is not None:
        return False  # the handheld's vehicle screens take their language when built
    return any(key == k or key.startswith(k + ".") for k in LIVE_KEYS)


def apply_live(kiosk: Any, new: SentinelConfig) -> SentinelConfig:
    """Put the live keys of `new` into the running kiosk; the rest keep their running values.
    Returns the config the kiosk now runs (also `kiosk.config`)."""
    old = kiosk.config
    device = {"site_name": new.device.site_name}
    if _is_live("device.language", kiosk):
        device["language"] = new.device.language
    display = {k.split(".", 1)[1]: getattr(new.display, k.split(".", 1)[1]) for k in LIVE_KEYS if k.startswith("display.")}
    running = old.model_copy(update={
        "policy": new.policy,
        "device": old.device.model_copy(update=device),
        "display": old.display.model_copy(update=display),
    })
    kiosk.config = running
    pipeline = kiosk.pipeline
    if pipeline is not None:
        # the fleet's signed site policy stays over [policy]: one reconfigure with the policy in
        # force, so that no check runs under the file's policy in between
        pipeline.reconfigure(policy=kiosk.remote_policy or running.policy, language=running.device.language,
                             result_s=running.display.result_s)
    kiosk.make_pipeline = _with_config(kiosk.make_pipeline, old, running)
    display_ = kiosk.display
    if display_ is not None and hasattr(display_, "reconfigure"):
        display_.reconfigure(running.display, running.device.language)
    if new.policy.offline != old.policy.offline and "cached" in (new.policy.offline, old.policy.offline):
        log.warning("offline policy %s -> %s: the status cache file follows at the next start", old.policy.offline, new.policy.offline)
    return running


def _with_config(make_pipeline: Callable | None, old: SentinelConfig, new: SentinelConfig) -> Callable | None:
    """build_kiosk's `make_pipeline` (a partial whose first argument is the config) with the new
    config, so that a pipeline started later (once the record key can be written) runs on it."""
    from functools import partial

    if isinstance(make_pipeline, partial) and make_pipeline.args and make_pipeline.args[0] is old:
        return partial(make_pipeline.func, new, *make_pipeline.args[1:], **make_pipeline.keywords)
    return make_pipeline


def _change(key: str, old: Any, new: Any) -> str:
    if key in SECRET_KEYS:
        return f"{key} (changed)"
    return f"{key}: {_value(old)} → {_value(new)}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() else value
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "none" if value is None else str(value)


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


def outbox_status_lines(kiosk: Any, language: str | None = None) -> InfoLines:
    """Rows for the technician menu's outbox panel: depth, oldest, last upload and error, alarms."""
    language = language or kiosk.config.device.language
    h = kiosk.outbox.health()
    rows = [
        (message("kiosk.outbox.waiting", language), f"{h.depth:,} / {h.max_records:,}"),
        (message("kiosk.outbox.oldest", language), "-" if h.oldest_age_s is None else f"{h.oldest_age_s / 3600:.1f} h"),
    ]
    if kiosk.uploader is not None:
        st = kiosk.uploader.status()
        last = st.last_success_at.isoformat(timespec="seconds") if st.last_success_at else "-"
        rows.append((message("kiosk.outbox.last_upload", language), last))
        if st.last_error:
            rows.append((message("kiosk.outbox.last_error", language), st.last_error))
    rows += [(message("kiosk.outbox.alarm", language), text) for text in h.messages(language)]
    return rows
