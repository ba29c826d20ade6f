"""A throwaway Mosquitto broker for tests and benches: the one in sentinel/dashboard/broker.py
(also what `sentinel demo --fleet N` starts), imported here under the name the tests use.

`MosquittoBroker` runs Debian's `mosquitto` on a free loopback port in a temporary directory;
`find_mosquitto()` answers None (and why) when it is not installed, so tests skip with that reason.
"""

from sentinel.dashboard.broker import (
    START_TIMEOUT_S,
    MosquittoBroker,
    find_mosquitto,
    free_port,
)

__all__ = ["START_TIMEOUT_S", "MosquittoBroker", "find_mosquitto", "free_port"]
