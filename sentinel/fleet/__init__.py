"""The fleet side of a sentinel: telemetry to, and the site's signed policy from, an MQTT broker
(sentinel/fleet/protocol.py has the wire format)."""
