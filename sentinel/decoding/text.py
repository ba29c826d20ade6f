"""A symbol's bytes as text, without guessing wrong: what every backend's payload goes through.

Chinese health codes are UTF-8 or GB 18030 (GB 18030 covers GBK and GB 2312), and often carry no
ECI saying which. zbar's own guess turned UTF-8 正宗铁观音茶叶 into Shift-JIS 豁｣螳鈴刀隗る浹闌ｶ蜿ｶ, and
zxing-cpp's turned GB 18030 健康码绿码 into ISO-8859-1 ½¡¿µÂëÂÌÂë; here the bytes are decoded as the
symbol says or as UTF-8, else GB 18030, and never raise.
"""

from __future__ import annotations

from typing import Callable


def payload_text(data: bytes) -> str:
    """A symbol's bytes as text when it names no character set: UTF-8, else GB 18030, else every
    byte kept as Latin-1 (a payload no credential rule will match, rather than an exception)."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def zxing_text(text: str, raw: bytes, says_charset: Callable[[], bool]) -> str:
    """zxing-cpp's text where the symbol is ASCII or UTF-8, is real Shift-JIS (kanji or full-width
    kana: Kanji-mode segments, Japanese codes), or names its character set (an ECI); otherwise the
    bytes as GB 18030 (`payload_text`). Left to itself zxing-cpp falls back to ISO-8859-1 or
    half-width katakana for GB 18030 bytes, and every GB 18030 health-code text tried came out
    garbled (健康码绿码 as ½¡¿µÂëÂÌÂë, 北京健康宝 as ｱｱｾｩｽ｡ｿｵｱｦ). The price: a Japanese code in
    half-width katakana alone and without an ECI reads as Chinese."""
    if raw.isascii():
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if any(ord(ch) > 0xFF and not 0xFF61 <= ord(ch) <= 0xFF9F for ch in text):
        return text  # zxing-cpp found double-byte Shift-JIS: kanji, kana
    return text if says_charset() else payload_text(raw)
