"""`sentinel fleet`: the district's side of the fleet (docs/fleet.md), run beside the broker, never
on a sentinel.

- `sentinel fleet keygen --out DIR`: a new Ed25519 signing pair (private key 0600; the public key
  goes into every sentinel's `[fleet] policy_public_key_file`).
- `sentinel fleet publish-policy --broker HOST:PORT --site S --version N --key KEY --policy FILE`:
  validate the policy (TOML or JSON, the config file's `[policy]` rules), sign it and publish it
  retained on the site's policy topic; every sentinel of the site applies it and acknowledges.
- `sentinel fleet dashboard --broker HOST:PORT --listen 127.0.0.1:8090`: the live page and
  `/api/fleet` (sentinel/dashboard/web.py).

How it fails: exit 2 and one line per problem for what the operator typed (a policy the config
file would refuse, a key that is not Ed25519, a malformed address, a key pair that exists); exit 1
for a broker that cannot be reached or does not take the message. Nothing is signed before the
policy is valid.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
from pathlib import Path

from sentinel.config import ID_PATTERN

NAME = "fleet"
HELP = "the district's side: signing keys, publishing a site's policy, the fleet dashboard"

log = logging.getLogger("sentinel.dashboard")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", metavar="ACTION")

    p = sub.add_parser("keygen", help="make the fleet's Ed25519 policy signing key pair", description="make the fleet's Ed25519 policy signing key pair")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for fleet-policy.key (0600) and fleet-policy.pub")

    p = sub.add_parser("publish-policy", help="sign a site's policy and publish it (retained)", description="sign a site's policy and publish it (retained)")
    _broker_arguments(p)
    p.add_argument("--site", required=True, help="the site id (as at the health-status service)")
    p.add_argument("--version", type=int, required=True, metavar="N", help="policy version: higher than the one the site's sentinels run")
    p.add_argument("--key", type=Path, required=True, metavar="KEY.pem", help="the private key from `sentinel fleet keygen`")
    p.add_argument("--policy", type=Path, required=True, metavar="FILE", help="a .toml ([policy] table or its keys) or .json policy")

    p = sub.add_parser("dashboard", help="serve the fleet dashboard (live page and /api/fleet)", description="serve the fleet dashboard")
    _broker_arguments(p)
    p.add_argument("--listen", default="127.0.0.1:8090", metavar="HOST:PORT", help="where the page is served (default 127.0.0.1:8090)")
    p.add_argument("--public-key", type=Path, metavar="PUB.pem", help="the fleet's public key: the page flags a published policy not signed by it")
    p.add_argument("--quiet-after", type=float, default=300.0, metavar="SECONDS",
                   help="an online device not heard from for this long is shown as quiet (default 300)")


def _broker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default="127.0.0.1:1883", metavar="HOST:PORT", help="the MQTT broker (default 127.0.0.1:1883)")
    p.add_argument("--prefix", default="sentinel", help="topic prefix, as in the sentinels' [fleet] topic_prefix (default sentinel)")
    p.add_argument("--username", help="broker user")
    p.add_argument("--password-file", type=Path, help="file holding the broker password (first line)")
    p.add_argument("--cafile", type=Path, help="CA of the broker's certificate: connect with TLS")


def _address(args: argparse.Namespace):
    from sentinel.dashboard.mqtt import BrokerAddress

    if args.password_file is not None and not args.username:
        raise ValueError("--password-file needs --username")
    return BrokerAddress.parse(args.broker, username=args.username, password_file=args.password_file, cafile=args.cafile)


def _fail(code: int, text: str) -> int:
    for line in text.splitlines() or [text]:
        print(f"sentinel fleet: {line}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "fleet_command", None)
    if action == "keygen":
        return _keygen(args)
    if action == "publish-policy":
        return _publish(args)
    if action == "dashboard":
        return _dashboard(args)
    return _fail(2, "choose an action: keygen, publish-policy or dashboard (sentinel fleet --help)")


def _keygen(args: argparse.Namespace) -> int:
    from sentinel.dashboard.publisher import keygen

    try:
        private_path, public_path = keygen(args.out)
    except (FileExistsError, OSError) as exc:
        return _fail(2, str(exc))
    print(f"private key (keep it with the publisher, never on a sentinel): {private_path}")
    print(f"public key (every sentinel's [fleet] policy_public_key_file): {public_path}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from sentinel.dashboard.mqtt import client, connect_and_wait
    from sentinel.dashboard.publisher import (
        load_policy_file,
        publish_signed,
        signed_policy,
    )

    if not re.fullmatch(ID_PATTERN, args.site):
        return _fail(2, f"--site {args.site!r} is not a site id")
    try:
        address = _address(args)
        policy = load_policy_file(args.policy)
        key_pem = args.key.read_bytes()
        payload = signed_policy(key_pem, args.site, args.version, policy)
    except (OSError, ValueError) as exc:
        return _fail(2, str(exc))
    c = client(address, "")
    try:
        connect_and_wait(c, address)
        publish_signed(c, site=args.site, payload=payload, prefix=args.prefix)
    except (ConnectionError, OSError) as exc:
        return _fail(1, str(exc))
    finally:
        c.disconnect()
        c.loop_stop()
    print(f"published policy v{args.version} for site {args.site} on {address} (retained): "
          f"{policy.model_dump_json()}")  # fmt: skip
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from sentinel.dashboard.collector import Collector, FleetView
    from sentinel.dashboard.mqtt import BrokerAddress
    from sentinel.dashboard.web import DashboardServer
    from sentinel.fleet.protocol import load_public_key

    try:
        address = _address(args)
        listen = BrokerAddress.parse(args.listen, port_zero=True)  # the same HOST:PORT grammar
        public_key = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    except (OSError, ValueError) as exc:
        return _fail(2, str(exc))
    view = FleetView(prefix=args.prefix, public_key=public_key, quiet_after_s=args.quiet_after)
    collector = Collector(address, view)
    server = DashboardServer(view, listen.host, listen.port)
    try:
        collector.start()
        url = server.start()
    except (ConnectionError, OSError) as exc:
        collector.stop()
        return _fail(1, str(exc))
    print(f"fleet dashboard: {url} (broker {address})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        collector.stop()
    return 0
