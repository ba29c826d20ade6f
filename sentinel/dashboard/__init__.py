"""The district's side of the fleet (issue 20): what runs beside the broker, never on a sentinel.

- `broker`: a throwaway Mosquitto on loopback (the demo's and the tests' broker);
- `mqtt`: how the fleet side reaches a broker (`--broker HOST:PORT`, credentials, TLS);
- `collector`: subscribes to every device's state, counters and policy acknowledgement and keeps the
  fleet view (sites, devices, checks today, policy in force, headline figures);
- `publisher`: the signing key pair and the signed, retained site policy;
- `web`: the dashboard page and its JSON API (`/api/fleet`), standard library only;
- `simulate`: N simulated sentinels (each a real `FleetLink`) for `sentinel demo --fleet N`, the
  tests and bench/fleet.py.

The kiosk never imports this package: the wire format both sides share is sentinel/fleet/protocol.py.
"""
