"""`sentinel scan-image`, run as a technician runs it: the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
HEALTH_CODE = "HC1:健康码/绿码/3101**********1234"


def scan(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "scan-image", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )


def lines(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "phone.png"
    segno.make_qr(HEALTH_CODE).save(path, scale=6)
    return path


@pytest.fixture
def other(tmp_path) -> Path:
    path = tmp_path / "second.jpg"
    segno.make_qr("https://example.org/venue/42").save(tmp_path / "second.png", scale=6)
    Image.open(tmp_path / "second.png").convert("RGB").save(path, quality=90)
    return path


def test_bad_files_get_an_error_line_and_the_others_still_run(tmp_path, good):
    missing = tmp_path / "missing.png"
    fake = tmp_path / "notes.png"
    fake.write_text("these are notes, not a picture\n")
    folder = tmp_path / "folder"
    folder.mkdir()

    result = scan(missing, good, fake, folder, good)

    out = lines(result)
    assert [o["file"] for o in out] == [str(p) for p in (missing, good, fake, folder, good)]
    bad, ok = ["error", "file"], ["codes", "file", "ms"]
    assert [sorted(o) for o in out] == [bad, ok, bad, bad, ok]
    assert "no such file" in out[0]["error"]
    assert "not an image" in out[2]["error"]
    assert "directory" in out[3]["error"]
    assert [c["text"] for c in out[1]["codes"]] == [HEALTH_CODE]
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr


def test_all_good_files_exit_zero_with_text_corners_and_time(good, other):
    result = scan(good, other)

    assert result.returncode == 0, result.stderr.decode()
    first, second = lines(result)
    assert [c["text"] for c in first["codes"]] == [HEALTH_CODE]
    assert [c["text"] for c in second["codes"]] == ["https://example.org/venue/42"]
    code = first["codes"][0]
    assert code["decoder"] == "zxing-cpp", "the cascade tries zxing-cpp first"
    assert len(code["corners"]) == 4 and all(len(p) == 2 for p in code["corners"])
    assert isinstance(first["ms"], float) and first["ms"] >= 0 and round(first["ms"], 1) == first["ms"]


def test_chinese_text_is_readable_in_the_output(good):
    """ensure_ascii=False: a technician reading the terminal sees 健康码, not \\u5065\\u5eb7\\u7801."""
    result = scan(good)
    assert HEALTH_CODE.encode("utf-8") in result.stdout


@pytest.mark.parametrize("name", ["zxing-cpp", "pyzbar"])
def test_decoder_option_picks_the_backend(good, name):
    result = scan("--decoder", name, good)
    assert result.returncode == 0
    (out,) = lines(result)
    assert [(c["text"], c["decoder"]) for c in out["codes"]] == [(HEALTH_CODE, name)]


def test_picture_without_a_code_is_not_an_error(tmp_path):
    path = tmp_path / "wall.png"
    Image.new("L", (320, 240), 180).save(path)
    result = scan(path)
    assert result.returncode == 0
    (out,) = lines(result)
    assert out["codes"] == [] and "error" not in out


def test_unknown_decoder_is_a_usage_error(good):
    result = scan("--decoder", "quirc", good)
    assert result.returncode == 2
    assert b"zxing-cpp" in result.stderr and b"Traceback" not in result.stderr


def test_a_photo_zxing_cpp_never_locates_is_read(shared_data):
    """A still image is one frame: the cascade's fallbacks must run on it, not wait for frame N
    (WeChat now reads this code on a cracker before pyzbar gets to it; it used to be pyzbar's)."""
    photo = shared_data / "qr" / "zxing-blackbox" / "qrcode-2" / "28.png"
    result = subprocess.run([sys.executable, "-m", "sentinel", "scan-image", str(photo)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert [c["decoder"] for c in line["codes"]] in (["wechat"], ["pyzbar"])
    assert line["codes"][0]["text"] == (photo.with_suffix(".txt")).read_text().strip()


def test_a_code_no_decoder_can_read_is_reported_as_unreadable_where_it_is(tmp_path):
    """A located code that no backend reads is not "no code": the line says where it is."""
    buf = tmp_path / "clean.png"
    segno.make_qr("HC1:damaged beyond repair", error="L").save(buf, scale=6, border=4)
    grey = np.asarray(Image.open(buf).convert("L")).copy()
    side, keep = grey.shape[0], 12 * 6  # quiet zone and finder patterns stay intact
    band = slice(side // 2 - side // 8, side // 2 + side // 8), slice(keep, side - keep)
    grey[band] = 255 - grey[band]
    frame = np.full((480, 640), 255, dtype=np.uint8)
    frame[120 : 120 + side, 200 : 200 + side] = grey
    path = tmp_path / "damaged.png"
    Image.fromarray(frame).save(path)

    (out,) = lines(scan(path))
    assert out["codes"] == []
    (outline,) = out["unreadable"]
    xs, ys = [p[0] for p in outline], [p[1] for p in outline]
    assert 200 <= min(xs) and max(xs) <= 200 + side and 120 <= min(ys) and max(ys) <= 120 + side


def test_a_readable_photo_has_no_unreadable_entry(good):
    (out,) = lines(scan(good))
    assert out["codes"] and "unreadable" not in out
