"""The decoder seam: what the kiosk reads from a grey frame, and how it survives a broken backend."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from sentinel.decoding import (
    DEFAULT_FALLBACK_EVERY,
    CascadeDecoder,
    DecodedCode,
    DecoderUnavailable,
    ImageError,
    PyzbarDecoder,
    ZxingDecoder,
    Scan,
    load_grey,
    make_decoder,
)

REPO = Path(__file__).resolve().parents[1]
HEALTH_CODE = "HC1:健康码/绿码/3101**********1234"
SCALE, BORDER = 6, 4


def qr_image(text: str | bytes, colour: str = "L", **make) -> Image.Image:
    buf = io.BytesIO()
    segno.make_qr(text, **make).save(buf, kind="png", scale=SCALE, border=BORDER)
    buf.seek(0)
    return Image.open(buf).convert(colour)


def qr_grey(text: str | bytes, **make) -> np.ndarray:
    return np.asarray(qr_image(text, **make))


def on_canvas(grey: np.ndarray, size: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    """A code somewhere in a larger white frame, as a camera would see it (without the blur)."""
    canvas = np.full((size[1], size[0]), 255, dtype=np.uint8)
    x, y = at
    canvas[y : y + grey.shape[0], x : x + grey.shape[1]] = grey
    return canvas


def all_decoders():
    return [ZxingDecoder(), PyzbarDecoder(), make_decoder(["zxing-cpp", "pyzbar"])]


def clockwise(corners) -> bool:
    n = len(corners)
    return sum(corners[i][0] * corners[(i + 1) % n][1] - corners[(i + 1) % n][0] * corners[i][1] for i in range(n)) > 0


class Empty:
    """A backend that never sees anything, like zxing-cpp on a code only zbar can read."""

    name = "empty"

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, grey):
        self.calls += 1
        return []


class Counting:
    """A real backend, counting how often the cascade runs it."""

    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.name = decoder.name
        self.calls = 0

    def decode(self, grey):
        self.calls += 1
        return self.decoder.decode(grey)


class Blind:
    """A backend that reports locating nothing, like zxing-cpp on the code printed on a cracker
    (qrcode-2/28) that only zbar reads."""

    name = "blind"

    def scan(self, grey):
        return Scan(codes=[], unread=0)

    def decode(self, grey):
        return []


def empty_scene() -> np.ndarray:
    """A 640×480 frame with nobody in it: a lit wall and the dark outline of a door."""
    frame = np.tile(np.linspace(150, 230, 640, dtype=np.uint8), (480, 1))
    frame[80:400, 220:420] = 90
    frame[90:400, 230:410] = 170
    return frame


def damaged_code() -> np.ndarray:
    """A code whose finder patterns are intact but whose middle is inverted: located, not decodable."""
    grey = qr_grey("HC1:damaged beyond repair", error="L").copy()
    side, keep = grey.shape[0], (BORDER + 8) * SCALE  # quiet zone and finder patterns
    band = slice(side // 2 - side // 8, side // 2 + side // 8), slice(keep, side - keep)
    grey[band] = 255 - grey[band]
    return on_canvas(grey, size=(640, 480), at=(200, 120))


def zxing_then_counted_pyzbar(fallback_every) -> tuple[CascadeDecoder, Counting]:
    pyzbar = Counting(PyzbarDecoder())
    return CascadeDecoder([ZxingDecoder(), pyzbar], fallback_every=fallback_every), pyzbar


class Broken:
    """A backend with a bug, like a native library that throws on an odd frame size."""

    name = "broken"

    def __init__(self, exc: Exception | None = None) -> None:
        self.exc = exc or RuntimeError("segfault avoided, barely")
        self.calls = 0

    def decode(self, grey):
        self.calls += 1
        raise self.exc


# --- reading clean codes ------------------------------------------------------------------------


@pytest.mark.parametrize("decoder", all_decoders(), ids=lambda d: d.name)
def test_clean_code_is_read_with_its_text(decoder):
    codes = decoder.decode(qr_grey(HEALTH_CODE))
    assert [c.text for c in codes] == [HEALTH_CODE]
    assert codes[0].raw == HEALTH_CODE.encode("utf-8")
    assert codes[0].decoder in ("zxing-cpp", "pyzbar")


@pytest.mark.parametrize("decoder", all_decoders(), ids=lambda d: d.name)
def test_corners_are_where_the_code_is_in_the_frame(decoder):
    code = qr_grey("where am I")
    x, y = 150, 60
    frame = on_canvas(code, size=(640, 480), at=(x, y))
    (found,) = decoder.decode(frame)
    assert len(found.corners) == 4
    for px, py in found.corners:
        assert 0 <= px < 640 and 0 <= py < 480
    # The symbol proper starts after the quiet zone and ends before it.
    side = code.shape[1] - 2 * BORDER * SCALE
    left, top = x + BORDER * SCALE, y + BORDER * SCALE
    xs, ys = [p[0] for p in found.corners], [p[1] for p in found.corners]
    assert min(xs) == pytest.approx(left, abs=3) and max(xs) == pytest.approx(left + side, abs=3)
    assert min(ys) == pytest.approx(top, abs=3) and max(ys) == pytest.approx(top + side, abs=3)
    assert clockwise(found.corners), "both backends report corners in the same (clockwise) order"


@pytest.mark.parametrize("decoder", all_decoders(), ids=lambda d: d.name)
def test_frame_without_a_code_gives_nothing(decoder):
    assert decoder.decode(np.full((480, 640), 200, dtype=np.uint8)) == []


@pytest.mark.parametrize("decoder", all_decoders(), ids=lambda d: d.name)
def test_control_characters_in_the_payload_are_kept(decoder):
    """zxing-cpp's default text mode would turn the GS1 separator into the five characters "<GS>"."""
    payload = "\x1d0112345678901231\x1d10ABC"
    (found,) = decoder.decode(qr_grey(payload.encode("ascii"), mode="byte"))
    assert found.text == payload


@pytest.mark.parametrize("decoder", all_decoders(), ids=lambda d: d.name)
def test_two_codes_in_one_frame_are_both_read(decoder):
    a, b = qr_grey("person A"), qr_grey("person B")
    frame = on_canvas(a, (640, 300), (10, 10))
    frame[10 : 10 + b.shape[0], 350 : 350 + b.shape[1]] = b
    assert sorted(c.text for c in decoder.decode(frame)) == ["person A", "person B"]


def test_codes_are_immutable_values():
    code = DecodedCode("x", b"x", ((0, 0), (1, 0), (1, 1), (0, 1)), "zxing-cpp")
    with pytest.raises(AttributeError):
        code.text = "y"
    assert code == DecodedCode("x", b"x", ((0, 0), (1, 0), (1, 1), (0, 1)), "zxing-cpp")


# --- the cascade -------------------------------------------------------------------------------


def test_cascade_uses_zxing_first_and_stops_there():
    cascade = make_decoder(["zxing-cpp", "pyzbar"])
    empty = Empty()
    cascade.decoders.append(empty)
    (found,) = cascade.decode(qr_grey(HEALTH_CODE))
    assert found.decoder == "zxing-cpp"
    assert empty.calls == 0


def test_cascade_falls_back_when_the_first_decoder_sees_nothing():
    first = Empty()
    cascade = CascadeDecoder([first, PyzbarDecoder()])
    (found,) = cascade.decode(qr_grey(HEALTH_CODE))
    assert first.calls == 1
    assert (found.text, found.decoder) == (HEALTH_CODE, "pyzbar")


# --- the cascade on frames without a code ----------------------------------------------------------
#
# The kiosk's camera mostly sees nobody, and pyzbar costs about 12× what zxing-cpp does on such a
# frame, so pyzbar runs only where zxing-cpp located a symbol it could not decode, and on every
# Nth frame in which it located nothing (for the codes it never locates).


def test_zxing_reports_what_it_located_but_could_not_decode():
    zxing = ZxingDecoder()
    assert zxing.scan(empty_scene()) == Scan(codes=[], unread=0)
    damaged = zxing.scan(damaged_code())
    assert damaged.codes == [] and damaged.unread > 0
    clean = zxing.scan(qr_grey(HEALTH_CODE))
    assert [c.text for c in clean.codes] == [HEALTH_CODE] and clean.unread == 0
    assert zxing.decode(damaged_code()) == [], "decode still returns only what was read"


def test_empty_frames_run_pyzbar_only_every_nth_frame():
    cascade, pyzbar = zxing_then_counted_pyzbar(fallback_every=5)
    assert [cascade.decode(empty_scene()) for _ in range(10)] == [[]] * 10
    assert pyzbar.calls == 2, "frames 1 and 6: the first frame runs the whole cascade, then every 5th"


def test_default_cascade_runs_pyzbar_on_one_empty_frame_in_n():
    cascade = make_decoder(["zxing-cpp", "pyzbar"])
    pyzbar = cascade.decoders[1] = Counting(cascade.decoders[1])
    for _ in range(3 * DEFAULT_FALLBACK_EVERY):
        cascade.decode(empty_scene())
    assert cascade.fallback_every == DEFAULT_FALLBACK_EVERY
    assert pyzbar.calls == 3


def test_without_every_nth_frame_pyzbar_never_runs_on_empty_frames():
    cascade, pyzbar = zxing_then_counted_pyzbar(fallback_every=None)
    for _ in range(10):
        assert cascade.decode(empty_scene()) == []
    assert pyzbar.calls == 0


def test_fallback_every_frame_is_the_cascade_as_it_was():
    cascade, pyzbar = zxing_then_counted_pyzbar(fallback_every=1)
    for _ in range(4):
        cascade.decode(empty_scene())
    assert pyzbar.calls == 4


@pytest.mark.parametrize("fallback_every", [5, None])
def test_symbol_zxing_cannot_decode_runs_pyzbar_on_every_frame(fallback_every):
    cascade, pyzbar = zxing_then_counted_pyzbar(fallback_every)
    cascade.decode(empty_scene())  # the first frame runs everything anyway
    calls = pyzbar.calls
    for _ in range(3):
        cascade.decode(damaged_code())
    assert pyzbar.calls == calls + 3


def test_code_zxing_never_locates_is_read_within_n_frames():
    pyzbar = Counting(PyzbarDecoder())
    cascade = CascadeDecoder([Blind(), pyzbar], fallback_every=3)
    frame = on_canvas(qr_grey(HEALTH_CODE), size=(640, 480), at=(100, 100))
    read = [[(c.text, c.decoder) for c in cascade.decode(frame)] for _ in range(7)]
    hit = [(HEALTH_CODE, "pyzbar")]
    assert read == [hit, [], [], hit, [], [], hit]
    assert pyzbar.calls == 3


def test_frames_zxing_reads_do_not_use_up_the_fallbacks_turn():
    cascade, pyzbar = zxing_then_counted_pyzbar(fallback_every=2)
    cascade.decode(empty_scene())  # runs pyzbar: the first frame
    cascade.decode(empty_scene())  # skips it
    assert pyzbar.calls == 1
    for _ in range(3):
        assert [c.decoder for c in cascade.decode(qr_grey(HEALTH_CODE))] == ["zxing-cpp"]
    assert pyzbar.calls == 1
    cascade.decode(empty_scene())  # the second frame without a code since pyzbar last ran
    assert pyzbar.calls == 2


def test_a_first_decoder_that_cannot_say_what_it_located_gates_nothing():
    """Empty has no `scan`: the cascade cannot know whether the frame was empty, so pyzbar runs."""
    first, pyzbar = Empty(), Counting(PyzbarDecoder())
    cascade = CascadeDecoder([first, pyzbar], fallback_every=5)
    for _ in range(3):
        cascade.decode(empty_scene())
    assert first.calls == pyzbar.calls == 3


@pytest.mark.parametrize("fallback_every", [0, -1, 2.5, True, "5"])
def test_fallback_every_is_a_whole_number_of_frames(fallback_every):
    with pytest.raises(ValueError, match="fallback_every"):
        CascadeDecoder([ZxingDecoder(), PyzbarDecoder()], fallback_every=fallback_every)


def test_raising_backend_is_skipped_and_logged_once(caplog):
    broken = Broken()
    cascade = CascadeDecoder([broken, ZxingDecoder()])
    frame = qr_grey(HEALTH_CODE)
    with caplog.at_level(logging.WARNING, logger="sentinel.decoding"):
        first, second = cascade.decode(frame), cascade.decode(frame)
    assert [c.text for c in first] == [c.text for c in second] == [HEALTH_CODE]
    assert broken.calls == 2, "a backend that failed on one frame may work on the next"
    warnings = [r for r in caplog.records if r.name == "sentinel.decoding"]
    assert len(warnings) == 1 and "broken" in warnings[0].getMessage()


def test_raising_backends_alone_give_no_codes_rather_than_an_exception():
    cascade = CascadeDecoder([Broken(), Broken(ValueError("odd stride"))])
    assert cascade.decode(qr_grey(HEALTH_CODE)) == []


def test_missing_library_is_reported_with_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyzbar", None)  # as if pyzbar or libzbar0 were not installed
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        PyzbarDecoder().decode(qr_grey(HEALTH_CODE))


def test_cascade_reads_codes_with_one_library_missing(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    cascade = make_decoder(["zxing-cpp", "pyzbar"])
    with caplog.at_level(logging.WARNING, logger="sentinel.decoding"):
        results = [cascade.decode(qr_grey(HEALTH_CODE)) for _ in range(3)]
    assert all([c.decoder for c in codes] == ["pyzbar"] for codes in results)
    assert len([r for r in caplog.records if "zxing-cpp" in r.getMessage()]) == 1


def test_cascade_with_no_loadable_library_says_so_instead_of_seeing_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "zxingcpp", None)
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    cascade = make_decoder(["zxing-cpp", "pyzbar"])
    with pytest.raises(DecoderUnavailable, match="no decoder"):
        cascade.decode(qr_grey(HEALTH_CODE))


# --- choosing decoders by name -------------------------------------------------------------------


def test_make_decoder_builds_what_the_config_names():
    assert isinstance(make_decoder(["zxing-cpp"]), ZxingDecoder)
    assert isinstance(make_decoder(["pyzbar"]), PyzbarDecoder)
    cascade = make_decoder(["pyzbar", "zxing-cpp"])
    assert isinstance(cascade, CascadeDecoder)
    assert [d.name for d in cascade.decoders] == ["pyzbar", "zxing-cpp"]


def test_make_decoder_passes_how_often_the_fallback_runs_on_empty_frames():
    assert make_decoder(["zxing-cpp", "pyzbar"]).fallback_every == DEFAULT_FALLBACK_EVERY
    assert make_decoder(["zxing-cpp", "pyzbar"], fallback_every=1).fallback_every == 1
    assert make_decoder(["zxing-cpp", "pyzbar"], fallback_every=None).fallback_every is None


@pytest.mark.parametrize("order", [["zbar"], ["zxing-cpp", "quirc"], []])
def test_unknown_decoder_name_lists_the_allowed_ones(order):
    with pytest.raises(ValueError, match="zxing-cpp, wechat, pyzbar"):
        make_decoder(order)


def test_importing_the_module_loads_no_native_library():
    """`sentinel check-config` on a technician's laptop must not need zxing-cpp, zbar or numpy."""
    code = "import sys, sentinel.decoding; print(sorted({'numpy', 'zxingcpp', 'pyzbar', 'cv2', 'PIL'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_decoders_import_nothing_from_the_hardware_edge():
    """The core's decoders (WeChat's among them) stand on their own: no import circle with hardware/."""
    code = "import sys, sentinel.decoding; print(sorted(m for m in sys.modules if m.split('.')[0] == 'hardware'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert "wechat" in make_decoder(["zxing-cpp", "wechat"]).decoders[1].name


# --- image files -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif"])
def test_image_files_load_as_grey_frames_that_decode(tmp_path, suffix):
    path = tmp_path / f"code{suffix}"
    qr_image(HEALTH_CODE, colour="RGB").save(path)
    grey = load_grey(path)
    assert grey.dtype == np.uint8 and grey.ndim == 2
    assert [c.text for c in ZxingDecoder().decode(grey)] == [HEALTH_CODE]


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways: corners must be reported in the picture as people see it."""
    upright = Image.fromarray(on_canvas(qr_grey("upright"), size=(400, 240), at=(0, 0)))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif, quality=95)
    grey = load_grey(path)
    assert grey.shape == (240, 400)
    (found,) = ZxingDecoder().decode(grey)
    assert max(x for x, _ in found.corners) < 200, "the code is on the left of the upright picture"


def test_transparent_background_is_shown_on_white(tmp_path):
    """A code exported with a transparent background is black on transparent-black underneath."""
    grey = qr_grey("transparent")
    rgba = np.zeros(grey.shape + (4,), dtype=np.uint8)
    rgba[..., 3] = np.where(grey < 128, 255, 0)  # only the dark modules are opaque, all pixels black
    path = tmp_path / "transparent.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    assert [c.text for c in ZxingDecoder().decode(load_grey(path))] == ["transparent"]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    """A dim 16-bit scan: every value is above 255, so clipping would make it all white."""
    grey16 = np.where(qr_grey("sixteen bits") < 128, 0x0800, 0x6000).astype(np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(grey16).save(path)
    assert [c.text for c in ZxingDecoder().decode(load_grey(path))] == ["sixteen bits"]


def _truncated_png(path: Path) -> Path:
    buf = io.BytesIO()
    qr_image("cut short").save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[:120])
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: d, "directory"),
        (lambda d: (d / "notes.png").write_text("not a picture") and d / "notes.png", "not an image"),
        (lambda d: _truncated_png(d / "truncated.png"), "cannot read image"),
    ],
    ids=["missing", "directory", "text-file", "truncated"],
)
def test_unusable_files_raise_image_error_with_one_line(tmp_path, make, reason, monkeypatch):
    from PIL import ImageFile

    # as after `import face_recognition`, which turns this on for the whole process
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = make(tmp_path)
    with pytest.raises(ImageError) as info:
        load_grey(path)
    assert reason in info.value.reason
    assert "\n" not in str(info.value) and str(path) in str(info.value)


# --- real photos -------------------------------------------------------------------------------


def _blackbox(shared_data: Path) -> list[tuple[np.ndarray, str]]:
    folder = shared_data / "qr" / "zxing-blackbox"
    if not folder.is_dir():
        pytest.skip(f"../shared/data/qr/zxing-blackbox not present: expected at {folder.resolve()}")
    cases = []
    for image in sorted(folder.rglob("*")):
        expected = image.with_suffix(".txt")
        if image.suffix.lower() in {".png", ".jpg", ".gif"} and expected.is_file():
            text = expected.read_text(encoding="utf-8").replace("\r\n", "\n")
            cases.append((load_grey(image), text))
    assert len(cases) >= 150, f"only {len(cases)} images with expected text under {folder}"
    return cases


def _same(decoded: str, expected: str) -> bool:
    return decoded.replace("\r\n", "\n") == expected


def _reads(decoder, cases, frames: int = 1) -> list[bool]:
    """Whether each photo is read within `frames` consecutive frames of it, one decoder seeing all
    the photos in turn as the kiosk's sees one person after another."""
    return [any(any(_same(c.text, text) for c in decoder.decode(grey)) for _ in range(frames)) for grey, text in cases]


def test_cascade_reads_at_least_as_many_real_photos_as_either_decoder(shared_data):
    """A photo is judged as a code held up to the camera: for as many frames as the cascade may
    take to run pyzbar on a frame in which zxing-cpp located nothing."""
    cases = _blackbox(shared_data)
    zxing, zbar = _reads(ZxingDecoder(), cases), _reads(PyzbarDecoder(), cases)
    decoder = make_decoder(["zxing-cpp", "pyzbar"])
    cascade = _reads(decoder, cases, frames=decoder.fallback_every)
    assert sum(cascade) >= max(sum(zxing), sum(zbar)), f"cascade {sum(cascade)}, zxing-cpp {sum(zxing)}, pyzbar {sum(zbar)}"
    # What the cascade is for: photos zxing-cpp finds nothing in and pyzbar reads (2 in this set).
    rescued = [i for i, (grey, _) in enumerate(cases) if zbar[i] and not ZxingDecoder().decode(grey)]
    assert all(cascade[i] for i in rescued)


def test_a_region_scan_counts_no_frame_and_runs_no_whole_frame_fallback():
    """`scan_region` (a located symbol read again from the camera's full resolution,
    sentinel/decoding/detail.py) is part of a frame already counted: the every-N-th-frame fallback
    neither runs on it nor moves on its schedule."""
    import numpy as np

    from sentinel.decoding import CascadeDecoder, ZxingDecoder

    calls = []

    class Spy:
        name = "spy"

        def decode(self, grey):
            calls.append(grey.shape)
            return []

    cascade = CascadeDecoder([ZxingDecoder(), Spy()], fallback_every=2)
    empty = np.full((64, 64), 255, np.uint8)
    cascade.scan(empty)  # the first frame runs every backend
    assert len(calls) == 1
    for _ in range(5):
        assert cascade.scan_region(empty).codes == []
    assert len(calls) == 1
    cascade.scan(empty)  # frame 2 of 2: skipped, as if the regions had not been read
    assert len(calls) == 1
    cascade.scan(empty)  # due again
    assert len(calls) == 2


def test_a_region_scan_never_runs_a_backend_for_located_symbols_only():
    """WeChat has had the whole frame already; on the full-resolution region it would cost another
    0.1-1 s while a person holds up a hard code."""
    from sentinel.decoding import CascadeDecoder, Scan

    asked = []

    class Slow:
        name = "wechat"
        only_located = True

        def decode(self, grey):
            asked.append(grey.shape)
            return []

    class Locates:  # zxing-cpp's part: one symbol located, not read
        name = "zxing-cpp"

        def scan(self, grey):
            return Scan(codes=[], unread=1, located=(((10, 10), (50, 10), (50, 50), (10, 50)),))

        def decode(self, grey):
            return []

    cascade = CascadeDecoder([Locates(), Slow()], fallback_every=None)
    region = np.full((64, 64), 255, np.uint8)
    assert cascade.scan_region(region).unreadable and asked == []  # located, left unread, WeChat not asked
    cascade.scan(region)
    assert asked == [(64, 64)]  # on a frame it is asked (the premise)
