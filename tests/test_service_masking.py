"""Masked identity is all a device ever sees of a person, so the rules are pinned as a table."""

import pytest

from sentinel.service.masking import mask_id, mask_name


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("王小明", "王*明"),
        ("欧阳小明", "欧**明"),
        ("李华", "李*"),
        ("李", "李"),
        ("", ""),
        (" 张伟 ", "张*"),
        ("买买提·艾力", "买****力"),
        ("Alice", "A***e"),
    ],
)
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("id_number", "masked"),
    [
        ("310101199001011234", "3101**********1234"),
        ("11010519491231002X", "1101**********002X"),
        ("123456789", "1234*6789"),
        ("12345678", "******78"),
        ("123", "*23"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_id(id_number, masked):
    assert mask_id(id_number) == masked
