"""The fleet link as one part of a kiosk: opened by build_kiosk from the `[fleet]` section, started
with the loop, fed every check's outcome, stopped on the way out.

    fleet = open_fleet(config, health=kiosk.health, apply_policy=kiosk.apply_remote_policy)
    on_outcome chain: fleet.observe_outcome   # counts only; O(1)
    fleet.start()                             # with the loop: the kept site policy applied, then connecting
    fleet.stop()                              # online=false, clean disconnect (before the outbox closes)

`[fleet] type = "none"` (the default): None, and nothing of paho is imported. With `type = "mqtt"`
the link is made even when paho-mqtt is missing or the broker is down: it then logs why it cannot
report and keeps trying, and the kiosk checks people as before (a fleet problem never stops a gate).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentinel.config import PolicyConfig, SentinelConfig
    from sentinel.fleet.link import FleetLink

log = logging.getLogger("sentinel.fleet")


def open_fleet(
    config: SentinelConfig,
    *,
    health: Callable[[], dict[str, Any]],
    apply_policy: Callable[[PolicyConfig], None],
) -> FleetLink | None:
    """The kiosk's FleetLink for `config.fleet` (not started), or None when `[fleet] type = "none"`
    or when paho-mqtt is not installed (logged as an error: the kiosk runs without the fleet)."""
    fleet = config.fleet
    if fleet.type == "none":
        return None
    try:
        import paho.mqtt.client  # noqa: F401 - fail here, with a clear line, rather than on the sender thread
    except ImportError as e:
        log.error("[fleet] type = mqtt, but paho-mqtt cannot be loaded (%s): this device does not report to the fleet. "
                  "Install it: sudo ./install.sh", e)
        return None
    from sentinel.fleet.link import FleetLink

    return FleetLink(fleet, site=config.device.site_id, device=config.device.id, state_dir=config.device.state_dir,
                     health=health, apply_policy=apply_policy)
