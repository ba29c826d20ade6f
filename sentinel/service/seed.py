"""`--seed demo`: the world the demo, the tests and a technician's bench start from.

Seeding is repeatable: it overwrites the demo site, device and people and re-issues the demo
binding code, and it sets NAT sampling times relative to *now*, so a database seeded last week
still shows a 20-hour-old test today. Nothing else in the database is touched.

The constants below are deliberately fixed and public. They identify a demo only; a real device
gets its token from `POST /v1/devices/bind` and keeps it in a root-only file.
This module does not import FastAPI, so the kiosk's demo can use the constants without it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sentinel.config import ASSETS
from sentinel.contract import Site
from sentinel.demo_data import DEMO_PEOPLE, DemoPerson
from sentinel.service.store import PersonRow, Store

DEMO_SITE = Site(id="demo-site", name="Demo Mall east gate", address="1 Demo Road, Pudong New Area, Shanghai")
DEMO_DEVICE_ID = "demo-device"
#: NOT A SECRET: the demo device's bearer token, printed in docs and used by `sentinel demo`
DEMO_DEVICE_TOKEN = "sdt_DEMO-ONLY-not-a-secret-0000000000000000"
#: NOT A SECRET: a binding code for demo-site, re-issued unused by every seeding, valid 30 days
DEMO_BINDING_CODE = "DEMOX-BIND1"
DEMO_BINDING_CODE_TTL = timedelta(days=30)

#: a person whose health code has expired (a screenshot of an old code), for the "expired" scene
DEMO_EXPIRED_PERSON = DemoPerson("expired", "E4xV7bN2mC9qW1eR", "赵敏", "310115199506150043", "green", "negative", 12.0, None, 3)
#: when the expired person's code ran out, relative to the seeding
DEMO_EXPIRED_AGO = timedelta(hours=1)


#: a resident without a phone, let in by face: the portrait in sentinel/assets/faces/ (NASA, public
#: domain; the name, ID number and health status are invented for the demo)
DEMO_FACE_PERSON = DemoPerson("resident", "F2hJ6kL9pQ3rT7vX", "林秀英", "310104194803120025", "green", "negative", 20.0, None, 3)
#: the portrait's encoding, made by tools/make_face_scenes.py (JSON: no face engine needed to seed)
DEMO_FACE_ENCODING_FILE = ASSETS / "faces" / "astronaut.json"


def demo_face_encoding() -> list[float]:
    return json.loads(DEMO_FACE_ENCODING_FILE.read_text(encoding="utf-8"))["encoding"]


def demo_person_id(person: DemoPerson) -> str:
    return f"demo-{person.key}"


def demo_face_id(person: DemoPerson) -> str:
    """Face ids exist so face credentials can be bench-tested; the demo has no encodings yet."""
    return f"demo-face-{person.key}"


def _row(person: DemoPerson, now: datetime, code_expires_at: datetime | None = None) -> PersonRow:
    return PersonRow(
        person_id=demo_person_id(person),
        name=person.name,
        colour=person.colour,
        token=person.token,
        id_number=person.id_number,
        face_id=demo_face_id(person),
        face_site_id=DEMO_SITE.id,  # face lookups answer only within the asking device's site
        code_expires_at=code_expires_at,
        nat_result=person.nat_result,
        nat_sampled_at=None if person.nat_hours_ago is None else now - timedelta(hours=person.nat_hours_ago),
        antigen=person.antigen,
        doses=person.doses,
    )


def seed_demo(store: Store, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    store.add_site(DEMO_SITE, replace=True)
    store.set_device(DEMO_DEVICE_ID, DEMO_SITE.id, DEMO_DEVICE_TOKEN, now)
    for person in DEMO_PEOPLE:
        store.add_person(_row(person, now), now, replace=True)
    store.add_person(_row(DEMO_EXPIRED_PERSON, now, code_expires_at=now - DEMO_EXPIRED_AGO), now, replace=True)
    store.add_binding_code(DEMO_SITE.id, DEMO_BINDING_CODE, now + DEMO_BINDING_CODE_TTL)


def seed_demo_faces(store: Store, now: datetime | None = None) -> None:
    """The demo world plus a resident enrolled in the demo site's face gallery (`sentinel demo`)."""
    now = now or datetime.now(UTC)
    seed_demo(store, now)
    face_row = replace(_row(DEMO_FACE_PERSON, now), face_site_id=DEMO_SITE.id, face_encoding=demo_face_encoding())
    store.add_person(face_row, now, replace=True)


SEEDS = {"demo": seed_demo, "demo-faces": seed_demo_faces}
