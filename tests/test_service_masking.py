"""Masked identity is all a device ever sees of a person, so the rules are pinned as a table."""

import pytest

from sentinel.service.masking import mask_id, mask_name


@pytest.mark.parametrize(
    ("mask", "plain", "masked"),
    [
        (mask_name, "王小明", "王*明"),
        (mask_name, "欧阳小明", "欧**明"),
        (mask_name, "李华", "李*"),
        (mask_name, "李", "李"),
        (mask_name, "", ""),
        (mask_name, " 张伟 ", "张*"),
        (mask_name, "买买提·艾力", "买****力"),
        (mask_name, "Alice", "A***e"),
        (mask_id, "310101199001011234", "3101**********1234"),
        (mask_id, "11010519491231002X", "1101**********002X"),
        (mask_id, "123456789", "1234*6789"),
        (mask_id, "12345678", "******78"),
        (mask_id, "123", "*23"),
        (mask_id, "12", "**"),
        (mask_id, "", ""),
    ],
)
def test_masking(mask, plain, masked):
    assert mask(plain) == masked
