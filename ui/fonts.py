"""Finding a CJK font on the system: fontconfig first, then the paths Debian's packages use.

The screens need one font that has both Chinese and Latin glyphs; Noto Sans CJK (Debian and
Raspberry Pi OS package `fonts-noto-cjk`) is the one the layout is tuned for. A `.ttc` holds
several faces: the Simplified Chinese one is chosen by its index, or Japanese glyph shapes would
appear in Chinese text. No pygame here: the display loads what this finds.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ui.errors import DisplayError

log = logging.getLogger("ui.fonts")

INSTALL_HINT = "sudo apt install fonts-noto-cjk"

#: family names in order of preference (all cover zh-CN and Latin)
PREFERRED_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
)

#: where fonts-noto-cjk puts them on Debian, Ubuntu and Raspberry Pi OS; index 2 is the SC face
KNOWN_PATHS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2, "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc", 2, "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2, "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0, None, 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0, None, 0),
)


class FontNotFoundError(DisplayError):
    def __init__(self, detail: str = ""):
        super().__init__(f"no CJK font found{': ' + detail if detail else ''}; install one: {INSTALL_HINT}")


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int = 0


@dataclass(frozen=True)
class FontSet:
    regular: FontFace
    bold: FontFace | None  # None: the regular face made bold by the renderer

    def describe(self) -> str:
        bold = f"{self.bold.path}#{self.bold.index}" if self.bold else "synthetic bold"
        return f"{self.regular.path}#{self.regular.index}, bold {bold}"


def _fc_list() -> list[tuple[str, int, str, str]]:
    """(file, index, family, style) of every font fontconfig says covers zh-cn."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        result = subprocess.run(
            [fc_list, "-f", "%{file}|%{index}|%{family}|%{style}\n", ":lang=zh-cn"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("fc-list failed: %s", e)
        return []
    fonts = []
    for line in result.stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 4:
            continue
        path, index, families, styles = parts
        try:
            fonts.append((path, int(index or 0), families, styles))
        except ValueError:
            continue
    return fonts


def _with_style(faces: list[tuple[str, int, str]], *names: str) -> FontFace | None:
    for name in names:
        for path, index, styles in faces:
            if name in styles.split(","):
                return FontFace(path, index)
    return None


def _pick(fonts: list[tuple[str, int, str, str]]) -> FontSet | None:
    for family in PREFERRED_FAMILIES:
        faces = [(p, i, s) for p, i, fams, s in fonts if family in fams.split(",") and Path(p).is_file()]
        if not faces:
            continue

        regular = _with_style(faces, "Regular", "Book", "Medium", "Normal") or FontFace(faces[0][0], faces[0][1])
        bold = _with_style(faces, "Bold", "Black", "Heavy")
        return FontSet(regular, bold)
    usable = [(p, i, fams) for p, i, fams, _s in fonts if Path(p).is_file()]
    usable.sort(key=lambda f: "sans" not in f[2].lower())  # any other CJK font fontconfig knows; sans first
    if usable:
        return FontSet(FontFace(usable[0][0], usable[0][1]), None)
    return None


def find_cjk_fonts() -> FontSet:
    """The CJK font pair to draw with, or FontNotFoundError saying which package to install."""
    found = _pick(_fc_list())
    if found is None:
        for regular, r_index, bold, b_index in KNOWN_PATHS:
            if Path(regular).is_file():
                found = FontSet(FontFace(regular, r_index), FontFace(bold, b_index) if bold and Path(bold).is_file() else None)
                break
    if found is None:
        where = "fontconfig knows none that covers zh-cn" if shutil.which("fc-list") else "fc-list is not installed"
        raise FontNotFoundError(f"{where}, and none is at {KNOWN_PATHS[0][0]}")
    log.debug("CJK font: %s", found.describe())
    return found
