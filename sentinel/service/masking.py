"""Masked identity, the only identity a device ever receives.

The rules follow what Shanghai's services showed on site: enough for a guard to match the person
in front of them to a name (王*明) and an ID card (3101**********1234), not enough to identify a
stranger from a record.
"""

from __future__ import annotations


def mask_name(name: str) -> str:
    """王小明 → 王*明, 欧阳小明 → 欧**明, 李华 → 李*, 李 → 李."""
    name = name.strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_id(id_number: str) -> str:
    """Keep the first and last four characters of a full-length ID; short ones keep only the last two."""
    id_number = id_number.strip()
    n = len(id_number)
    if n > 8:
        return id_number[:4] + "*" * (n - 8) + id_number[-4:]
    if n > 2:
        return "*" * (n - 2) + id_number[-2:]
    return "*" * n


def is_masked_name(name: str) -> bool:
    """Already masked (what a device may upload): masking it again changes nothing."""
    return mask_name(name) == name


def is_masked_id(id_number: str) -> bool:
    return mask_id(id_number) == id_number
