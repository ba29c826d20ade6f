"""Hard codes (issue 17): what the second looks, the WeChat reader, the merged cascade and the
"located but unreadable" report add, on real photos from BoofCV's qrcodes_v3 set and on codes
generated here; and that no backend hands over a garbled payload."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from sentinel.decoding import (
    CascadeDecoder,
    DecodedCode,
    DecoderUnavailable,
    PyzbarDecoder,
    Scan,
    ZxingDecoder,
    centre,
    inside,
    load_grey,
    make_decoder,
    payload_text,
)
from sentinel.decoding.base import overlaps
from sentinel.decoding.detail import scan_with_detail

TEA = "正宗铁观音茶叶"  # zbar's own guess made this 豁｣螳鈴刀隗る浹闌ｶ蜿ｶ


def qr_grey(data: str | bytes, scale: int = 6) -> np.ndarray:
    buf = io.BytesIO()
    segno.make_qr(data).save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))


def photo(shared_data: Path, name: str, longest: int = 640) -> tuple[np.ndarray, list[list[tuple[float, float]]]]:
    """A labelled BoofCV photo scaled as the lores stream would show it, with its labels scaled alike."""
    path = shared_data / "qr" / "boofcv-dev" / name
    grey = load_grey(path)
    scale = longest / max(grey.shape)
    size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
    grey = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BOX))
    quads = []
    for line in path.with_suffix(".txt").read_text().splitlines()[1:]:
        v = [float(x) * scale for x in line.split()]
        quads.append([(v[i], v[i + 1]) for i in range(0, 8, 2)])
    return grey, quads


def on_label(codes_or_outlines, quad) -> bool:
    outlines = [getattr(c, "corners", c) for c in codes_or_outlines]
    return any(inside(centre(o), quad) for o in outlines)


def wechat():
    from sentinel.decoding.wechat import WechatDecoder

    decoder = WechatDecoder()
    try:
        decoder.decode(np.full((64, 64), 255, dtype=np.uint8))
    except DecoderUnavailable as exc:
        pytest.skip(f"the WeChat reader is not installed here: {exc}")
    return decoder


# --- payload text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [TEA.encode("utf-8"), TEA.encode("gb18030"), "測試".encode("utf-8"), b"HC1:plain ascii"], ids=["utf8", "gb18030", "utf8-short", "ascii"]
)
def test_pyzbar_hands_over_the_symbols_bytes_and_text_without_mojibake(data):
    (code,) = PyzbarDecoder().decode(qr_grey(data))
    assert code.raw == data
    assert code.text in (TEA, "測試", "HC1:plain ascii")


@pytest.mark.parametrize("text", ["健康码绿码", "北京健康宝", "行程卡", "姓名:李四 身份证:3101"])
@pytest.mark.parametrize("decoder", [ZxingDecoder(), PyzbarDecoder(), make_decoder(["zxing-cpp", "pyzbar"], fallback_every=1)], ids=lambda d: d.name)
def test_gb18030_chinese_without_an_eci_reads_as_chinese(decoder, text):
    """zxing-cpp alone read all four as ISO-8859-1 or half-width katakana (½¡¿µÂëÂÌÂë, ｱｱｾｩｽ｡ｿｵｱｦ)."""
    (code,) = decoder.decode(qr_grey(text.encode("gb18030")))
    assert code.text == text and code.raw == text.encode("gb18030")


def test_a_code_that_says_shift_jis_keeps_its_japanese():
    kanji = np.asarray(Image.open(_png(segno.make_qr("漢字", mode="kanji"))).convert("L"))
    assert [c.text for c in ZxingDecoder().decode(kanji)] == ["漢字"]
    eci = np.asarray(Image.open(_png(segno.make_qr("ﾃﾞｻﾞｲﾝ", encoding="shift_jis", eci=True))).convert("L"))
    assert [c.text for c in ZxingDecoder().decode(eci)] == ["ﾃﾞｻﾞｲﾝ"]


def _png(qr) -> io.BytesIO:
    buf = io.BytesIO()
    qr.save(buf, kind="png", scale=6, border=4)
    buf.seek(0)
    return buf


def test_payload_that_is_neither_utf8_nor_gb18030_keeps_every_byte():
    assert payload_text(b"\x81\x30") == "\x81\x30"  # an incomplete GB 18030 sequence: no exception, no guess


def test_wechat_reads_utf8_chinese_and_drops_what_it_cannot_hand_over():
    decoder = wechat()
    (code,) = decoder.decode(qr_grey(TEA.encode("utf-8")))
    assert code.text == TEA and code.raw == TEA.encode("utf-8") and code.decoder == "wechat"
    assert decoder.decode(qr_grey(TEA.encode("gb18030"))) == []  # OpenCV raises UnicodeDecodeError on it


def test_wechat_refuses_model_files_that_are_not_the_upstream_ones(tmp_path):
    from sentinel.decoding.wechat import MODEL_MD5, model_folder

    for name in MODEL_MD5:
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(DecoderUnavailable, match="not the upstream file"):
        model_folder(tmp_path)


def test_wechat_without_its_models_is_unavailable_with_what_to_install(tmp_path):
    from sentinel.decoding.wechat import WechatDecoder

    with pytest.raises(DecoderUnavailable, match="cannot be read|wechat_qrcode|OpenCV"):
        WechatDecoder(models=tmp_path / "missing").decode(np.full((64, 64), 255, dtype=np.uint8))


# --- real hard photos ------------------------------------------------------------------------


def test_a_located_code_too_small_to_read_is_read_at_twice_the_size(shared_data):
    grey, (quad,) = photo(shared_data, "damaged/image001.jpg")
    assert not on_label(ZxingDecoder(second_looks=False).decode(grey), quad)
    assert on_label(ZxingDecoder().decode(grey), quad)


def test_codes_under_bright_spots_are_read_by_the_whole_frame_look(shared_data, monkeypatch):
    """A located symbol still unread after the region looks: the whole frame once more with one
    global threshold reads three codes under the lamps' bright spots that the local one did not."""
    grey, quads = photo(shared_data, "bright_spots/image001.jpg")
    without = ZxingDecoder()
    without._whole_frame_look = lambda grey, codes, located: (codes, located)
    before = [q for q in quads if on_label(without_contrast_looks(monkeypatch, lambda: without.decode(grey)), q)]
    scan = ZxingDecoder().scan(grey)
    now = [q for q in quads if on_label(scan.codes, q)]
    assert len(now) >= len(before) + 3
    assert not any(on_label(scan.located, q) for q in now)  # what was read is no longer "unread"


def without_contrast_looks(monkeypatch, scan):
    """What `scan()` gives while the second looks have no local contrast to look at."""
    with monkeypatch.context() as patch:
        patch.setattr("sentinel.decoding.zxing.local_contrast", lambda region: iter(()))
        return scan()


def test_a_code_under_a_bright_spot_is_read_with_its_regions_own_threshold(shared_data, monkeypatch):
    """In the lores frame lamps' bright spots lie across three codes: zxing-cpp locates a symbol
    there, and neither of its binarizers nor twice the size reads any code; a threshold against
    each pixel's own neighbourhood reads one, and nothing is left reported as located but unread."""
    grey, quads = photo(shared_data, "bright_spots/image011.jpg")
    before = without_contrast_looks(monkeypatch, lambda: ZxingDecoder().scan(grey))
    assert before.located and not any(on_label(before.codes, q) for q in quads)
    scan = ZxingDecoder().scan(grey)
    assert any(on_label(scan.codes, q) for q in quads) and not scan.located


def test_codes_in_uneven_light_are_read_once_their_region_is_equalised(shared_data, monkeypatch):
    """Three large codes as shipped: the adaptive threshold reads one, CLAHE (the second contrast
    look) another; without both none is read."""
    grey, quads = photo(shared_data, "high_version/image030.jpg", longest=1280)
    assert not any(on_label(without_contrast_looks(monkeypatch, lambda: ZxingDecoder().decode(grey)), q) for q in quads)
    assert sum(on_label(ZxingDecoder().decode(grey), q) for q in quads) >= 2


def test_without_opencv_the_second_looks_are_what_they_were(shared_data, monkeypatch):
    """A plain install has no OpenCV: the contrast looks find nothing to look at, the decoder
    still reads what it read without them and reports the rest as located."""
    grey, quads = photo(shared_data, "bright_spots/image011.jpg")
    before = without_contrast_looks(monkeypatch, lambda: ZxingDecoder().scan(grey))
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    scan = ZxingDecoder().scan(grey)
    assert [c.text for c in scan.codes] == [c.text for c in before.codes]
    assert scan.located == before.located and scan.located


def test_opencv_refusing_a_region_costs_the_frame_nothing_already_read(shared_data, monkeypatch):
    """bright_spots/image001 as shipped: zxing-cpp reads codes and locates one it cannot read. If
    OpenCV raises on that symbol's region, the frame keeps the codes read and the symbol stays
    reported as located (the cascade would otherwise drop zxing-cpp's whole scan of the frame)."""
    import cv2

    grey, quads = photo(shared_data, "bright_spots/image001.jpg", longest=1280)
    before = without_contrast_looks(monkeypatch, lambda: ZxingDecoder().scan(grey))
    assert before.codes and before.located

    def refuses(*args, **kwargs):
        raise cv2.error("refused")

    monkeypatch.setattr(cv2, "adaptiveThreshold", refuses)
    scan = ZxingDecoder().scan(grey)
    assert [c.text for c in scan.codes] == [c.text for c in before.codes] and scan.located == before.located


def test_a_symbol_whose_region_gives_only_a_neighbours_code_stays_unread_for_the_main_stream(shared_data):
    """Sixty small codes in one lores frame: a look at one located symbol's region can read a
    neighbour instead. The symbol must stay reported as located but unread, so that the main
    stream reads it (when the neighbour counted for it, 33 labels were read this way; now 49)."""
    grey, quads = photo(shared_data, "lots/image001.jpg")
    main_stream = load_grey(shared_data / "qr" / "boofcv-dev" / "lots" / "image001.jpg")
    decoder = make_decoder(["zxing-cpp", "pyzbar"])
    scan = decoder.scan(grey)
    assert scan.located and not any(overlaps(q, c.corners) for q in scan.located for c in scan.codes)
    both = scan_with_detail(decoder, scan, lambda: main_stream, grey.shape)
    assert sum(on_label(both.codes, q) for q in quads) >= 45


def test_wechat_reads_a_code_zxing_cpp_located_but_could_not_read(shared_data):
    grey, (quad,) = photo(shared_data, "damaged/image005.jpg")
    scan = ZxingDecoder().scan(grey)
    assert not on_label(scan.codes, quad) and on_label(scan.located, quad)
    decoder = CascadeDecoder([ZxingDecoder(), wechat()], fallback_every=None)
    result = decoder.scan(grey)
    assert on_label(result.codes, quad) and not result.unreadable


def test_a_code_no_backend_can_read_is_reported_where_it_was_located(shared_data):
    """What the kiosk needs to say "hold it closer": a frame with a code in it that nothing read."""
    wechat()
    grey, (quad,) = photo(shared_data, "damaged/image017.jpg")
    result = make_decoder(["zxing-cpp", "wechat", "pyzbar"], fallback_every=1).scan(grey)
    assert result.codes == []
    assert result.unreadable and result.unread == len(result.located) >= 1
    assert on_label(result.located, quad)


# --- the cascade ---------------------------------------------------------------------------------


class Fake:
    """A backend with a fixed answer; with `located`, one that also says what it located."""

    def __init__(self, name, codes, located=None, only_located=False):
        self.name, self.codes, self.located, self.only_located = name, codes, located, only_located
        self.calls = 0
        if located is not None:
            self.scan = self._scan

    def _scan(self, grey):
        self.calls += 1
        return Scan(codes=list(self.codes), unread=len(self.located), located=tuple(self.located))

    def decode(self, grey):
        self.calls += 1
        return list(self.codes)


def square(x, y, side=100):
    return ((x, y), (x + side, y), (x + side, y + side), (x, y + side))


def code(text, where, decoder):
    return DecodedCode(text=text, raw=text.encode(), corners=where, decoder=decoder)


def test_codes_from_every_backend_are_merged_and_the_first_reading_of_a_code_wins():
    left, right = square(0, 0), square(300, 0)
    first = Fake("zxing-cpp", [code("HC1:left", left, "zxing-cpp")], located=[right])
    second = Fake("pyzbar", [code("HC1:garbled?", square(5, 5), "pyzbar"), code("HC1:right", square(302, 3), "pyzbar")])
    result = CascadeDecoder([first, second], fallback_every=None).scan(np.zeros((10, 10), np.uint8))
    assert [(c.text, c.decoder) for c in result.codes] == [("HC1:left", "zxing-cpp"), ("HC1:right", "pyzbar")]
    assert not result.unreadable  # the located symbol was read by the second backend


@pytest.mark.parametrize("fallback_every", [None, 2, 5])
def test_a_camera_never_runs_a_backend_meant_only_for_located_symbols_on_an_empty_frame(fallback_every):
    first = Fake("zxing-cpp", [], located=[])
    slow = Fake("wechat", [code("HC1:x", square(0, 0), "wechat")], only_located=True)
    cascade = CascadeDecoder([first, slow], fallback_every=fallback_every)
    for _ in range(6):
        assert cascade.decode(np.zeros((10, 10), np.uint8)) == []
    assert slow.calls == 0
    first.located = [square(0, 0)]
    assert [c.text for c in cascade.decode(np.zeros((10, 10), np.uint8))] == ["HC1:x"]


def test_a_still_image_gives_every_backend_its_chance():
    """scan-image decodes each photo once: WeChat's detector may find a code zxing-cpp never located."""
    first = Fake("zxing-cpp", [], located=[])
    slow = Fake("wechat", [code("HC1:x", square(0, 0), "wechat")], only_located=True)
    assert [c.text for c in CascadeDecoder([first, slow], fallback_every=1).decode(np.zeros((10, 10), np.uint8))] == ["HC1:x"]


@pytest.mark.parametrize("name", ["default.toml", "pillar.toml", "handheld.toml"])
def test_the_shipped_kiosk_decoder_takes_second_looks_and_is_cheap_when_idle(name):
    from sentinel.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "config" / name).decoder
    decoder = make_decoder(config.order, fallback_every=config.fallback_every)  # as sentinel/kiosk.py builds it
    assert decoder.fallback_every >= 100  # pyzbar (13-16x zxing-cpp) on at most 1 empty frame in 100
    assert decoder.decoders[0].name == "zxing-cpp" and decoder.decoders[0].second_looks


def test_a_config_can_put_wechat_after_zxing_cpp_for_located_symbols_only():
    from sentinel.config import DecoderConfig

    config = DecoderConfig(order=["zxing-cpp", "wechat", "pyzbar"])
    decoder = make_decoder(config.order, fallback_every=config.fallback_every)
    assert [d.name for d in decoder.decoders] == ["zxing-cpp", "wechat", "pyzbar"] and decoder.decoders[1].only_located


# --- pyzbar on located regions ----------------------------------------------------------------


def test_pyzbar_reads_the_located_regions_only_with_corners_in_the_frame():
    """On a located symbol pyzbar reads its region (scaled down when large), not the whole frame."""
    big, small = qr_grey("HC1:located", scale=16), qr_grey("HC1:elsewhere")  # big: region over 400 px
    frame = np.full((960, 1280), 255, dtype=np.uint8)
    frame[300 : 300 + big.shape[0], 700 : 700 + big.shape[1]] = big
    frame[50 : 50 + small.shape[0], 50 : 50 + small.shape[1]] = small
    side = big.shape[0] - 2 * 4 * 16  # the symbol without its quiet zone
    quad = square(700 + 64, 300 + 64, side)
    (code,) = PyzbarDecoder().decode_located(frame, [quad])
    assert code.text == "HC1:located" and code.decoder == "pyzbar"
    assert all(abs(x - qx) <= 6 and abs(y - qy) <= 6 for (x, y), (qx, qy) in zip(sorted(code.corners), sorted(quad)))
    assert PyzbarDecoder().decode_located(frame, [square(100, 700, 150)]) == []  # an empty region: nothing


def test_pyzbar_leaves_out_the_codes_already_read_beside_a_located_symbol():
    """A busy frame: the region around an unread symbol also holds a neighbour that zxing-cpp
    read. pyzbar is not made to read the neighbour again (it is painted out of a copy of the
    region), and still reads the symbol."""
    a, b = qr_grey("HC1:neighbour", scale=4), qr_grey("HC1:unread", scale=8)  # quiet zones 16 and 32 px
    frame = np.full((600, a.shape[1] + b.shape[1]), 255, dtype=np.uint8)  # the region is as wide as the frame
    frame[100 : 100 + a.shape[0], : a.shape[1]] = a
    frame[100 : 100 + b.shape[0], a.shape[1] :] = b
    neighbour = code("HC1:neighbour", square(16, 100 + 16, a.shape[0] - 32), "zxing-cpp")
    unread = square(a.shape[1] + 32, 100 + 32, b.shape[0] - 64)
    assert {c.text for c in PyzbarDecoder().decode_located(frame, [unread])} == {"HC1:neighbour", "HC1:unread"}
    before = frame.copy()
    assert [c.text for c in PyzbarDecoder().decode_located(frame, [unread], read=[neighbour])] == ["HC1:unread"]
    assert np.array_equal(frame, before)  # the frame itself is never drawn on


class Regional(Fake):
    """A backend that reads regions when given outlines (as pyzbar does)."""

    def __init__(self, name, codes):
        super().__init__(name, codes)
        self.given = []

    def decode_located(self, grey, located, read=()):
        self.given.append(list(located))
        self.read = list(read)
        return list(self.codes)


def test_the_cascade_gives_a_regional_backend_the_unread_outlines_and_skips_wechat_once_all_are_read():
    left, right = square(0, 0), square(300, 0)
    first = Fake("zxing-cpp", [code("HC1:left", left, "zxing-cpp")], located=[right])
    zbar = Regional("pyzbar", [code("HC1:right", square(302, 3), "pyzbar")])
    slow = Fake("wechat", [], only_located=True)
    result = CascadeDecoder([first, zbar, slow], fallback_every=None).scan(np.zeros((10, 10), np.uint8))
    assert zbar.given == [[right]] and zbar.calls == 0  # its region, never the whole frame
    assert [c.text for c in zbar.read] == ["HC1:left"]  # told what was read already
    assert slow.calls == 0  # nothing left unread: no WeChat pass
    assert [c.text for c in result.codes] == ["HC1:left", "HC1:right"] and not result.unreadable


def test_a_symbol_that_was_only_counted_has_the_regional_backend_read_the_whole_frame():
    first = Fake("zxing-cpp", [], located=[])
    first._scan = lambda grey: Scan(codes=[], unread=1, located=())  # counted, no outline
    first.scan = first._scan
    zbar = Regional("pyzbar", [code("HC1:x", square(0, 0), "pyzbar")])
    assert [c.text for c in CascadeDecoder([first, zbar], fallback_every=None).decode(np.zeros((10, 10), np.uint8))] == ["HC1:x"]
    assert zbar.given == [] and zbar.calls == 1
