"""The people the demo's scenes show, shared by the scene generator, the in-process fake verifier
and the reference service's `--seed demo`, so that all three agree on who is who.

Tokens and ID numbers here are invented; the ID numbers carry valid check digits.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Health-code QR payloads of the demo look like this; config/default.toml accepts them.
DEMO_HEALTH_CODE_PREFIX = "https://healthcode.example/c/"
#: A QR code that is not a health code (a mall's promotion), rejected on the device.
DEMO_UNKNOWN_PAYLOAD = "https://mall.example/promo?campaign=autumn-sale&id=42"


@dataclass(frozen=True)
class DemoPerson:
    key: str  # scene / seed name
    token: str  # health-code token (the part after the prefix)
    name: str  # full name: only the service knows it; devices see it masked
    id_number: str
    colour: str  # green | yellow | red
    nat_result: str | None  # negative | positive | pending | None
    nat_hours_ago: float | None
    antigen: str | None
    doses: int

    @property
    def payload(self) -> str:
        return DEMO_HEALTH_CODE_PREFIX + self.token


DEMO_PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("green", "G7kP2mQ9xW4tR8vL", "王小明", "11010519491231002X", "green", "negative", 20.0, None, 3),
    DemoPerson("yellow", "Y3nB6cD1fH5jK0sA", "李华", "310101199001011234", "yellow", "negative", 30.0, None, 2),
    DemoPerson("red", "R9wE2rT6yU1iO4pZ", "张伟", "440305198512120011", "red", "positive", 10.0, None, 1),
    DemoPerson("stale_nat", "N5aS8dF3gH7jK2lQ", "陈静", "320102197803150024", "green", "negative", 80.0, None, 3),
)


#: A well-formed health code the service has never heard of (a code from another city's app, a
#: screenshot of a retired code): the device asks, the service answers not_found, staff check.
#: Deliberately not in DEMO_PEOPLE, so the reference service's demo seed does not know it.
DEMO_NOT_FOUND_PERSON = DemoPerson("not_found", "U4mV7bX2cZ9qL5hJ", "赵强", "110101198811110010", "green", "negative", 12.0, None, 3)


def demo_person(key: str) -> DemoPerson:
    for person in DEMO_PEOPLE:
        if person.key == key:
            return person
    raise KeyError(key)
