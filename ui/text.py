"""Fitting text into a box: line breaking for Chinese and English, and the largest size that fits.

Pure (no pygame): the renderer passes a `measure(text, size) -> width` function backed by its
font. Chinese breaks between any two characters, except that closing punctuation never starts a
line and opening punctuation never ends one; English breaks at spaces, and a word too long for a
line (a long masked name) is broken between characters. When even the smallest allowed size needs
too many lines, the last line ends in "…": text never leaves its box.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

Measure = Callable[[str, int], int]

ELLIPSIS = "…"
#: never at the start of a line
_CLOSING = set("，。、；：！？）》」』】〉”’·…,.;:!?)]}%·")
#: never at the end of a line
_OPENING = set("（《「『【〈“‘([{")


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def tokens(text: str) -> list[str]:
    """Units a line may break between: one wide (CJK) character, or a word with its trailing spaces."""
    out: list[str] = []
    word = ""
    for ch in text:
        if _is_wide(ch):
            if word:
                out.append(word)
                word = ""
            if ch in _CLOSING and out:
                out[-1] += ch
            else:
                out.append(ch)
        elif ch == " ":
            word += ch
            out.append(word)
            word = ""
        elif ch in _CLOSING and not word and out:
            out[-1] += ch
        else:
            if word.endswith(" "):
                out.append(word)
                word = ""
            word += ch
    if word:
        out.append(word)
    # opening punctuation sticks to what follows it
    merged: list[str] = []
    carry = ""
    for t in out:
        if t and all(c in _OPENING for c in t.strip()) and t.strip():
            carry += t
            continue
        merged.append(carry + t)
        carry = ""
    if carry:
        merged.append(carry)
    return merged


def wrap(text: str, width: int, size: int, measure: Measure) -> list[str]:
    lines: list[str] = []
    line = ""
    for token in tokens(text):
        candidate = line + token
        if measure(candidate.rstrip(), size) <= width:
            line = candidate
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = token.lstrip()
        if measure(line.rstrip(), size) > width:  # one word wider than the box: break inside it
            pieces = _break_chars(line, width, size, measure)
            lines.extend(pieces[:-1])
            line = pieces[-1]
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def _break_chars(word: str, width: int, size: int, measure: Measure) -> list[str]:
    pieces: list[str] = []
    piece = ""
    for ch in word:
        if piece and measure((piece + ch).rstrip(), size) > width:
            pieces.append(piece)
            piece = ch
        else:
            piece += ch
    pieces.append(piece)
    return pieces


def ellipsize(line: str, width: int, size: int, measure: Measure) -> str:
    """`line` cut to fit with "…" (Chinese text, where it is centred) or "..." (Latin text)."""
    mark = ELLIPSIS if any(_is_wide(c) for c in line) else "..."
    line = line.rstrip()
    while line and measure(line + mark, size) > width:
        line = line[:-1].rstrip()
    return line + mark


@dataclass(frozen=True)
class Fit:
    size: int
    lines: tuple[str, ...]
    line_height: int
    truncated: bool = False


def fit_text(
    text: str,
    width: int,
    height: int,
    measure: Measure,
    *,
    max_size: int,
    min_size: int,
    max_lines: int = 1,
    line_factor: float = 1.3,
    prefer_fewer: float = 0.65,
) -> Fit:
    """The largest size in [min_size, max_size] at which `text` fits in width×height in at most
    `max_lines` lines; at min_size, the lines that fit with an ellipsis on the last one.

    Fewer lines win when they cost little: a line count is taken if its size is at least
    `prefer_fewer` of the best size with more lines (one big line reads better than two, and
    "请出示健康 / 码" is worse than a slightly smaller "请出示健康码"). Lines are then balanced,
    so a two-line text does not end in one lonely character."""
    width = max(1, width)
    # never larger than one line of the box, never smaller than one line can be
    max_size = max(1, min(max_size, int(height / line_factor)))
    min_size = max(1, min(min_size, max_size))
    best: dict[int, int] = {}  # line count → largest size fitting in that many lines

    def lines_at(size: int) -> list[str] | None:
        lines = wrap(text, width, size, measure)
        allowed = min(max_lines, max(1, height // max(1, round(size * line_factor))))
        return lines if len(lines) <= allowed else None

    size, previous = max_size, None
    while True:
        lines = lines_at(size)
        if lines is not None and len(lines) not in best:
            # coarse steps down found it; the largest size between here and the last miss
            lo, hi = size, (previous - 1 if previous else size)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                found = lines_at(mid)
                if found is not None and len(found) <= len(lines):
                    lo = mid
                else:
                    hi = mid - 1
            best[len(lines)] = lo
            if len(lines) == 1:
                break
        if size <= min_size:
            break
        previous, size = size, max(min_size, min(size - 1, int(size * 0.94)))
    if not best:
        lines = wrap(text, width, min_size, measure)
        line_height = max(1, round(min_size * line_factor))
        allowed = min(max_lines, max(1, height // line_height))
        kept = lines[:allowed]
        kept[-1] = ellipsize(kept[-1] + " " + "".join(lines[allowed:]), width, min_size, measure)
        return Fit(min_size, tuple(kept), line_height, truncated=True)
    top = max(best.values())
    count = min(n for n, s in best.items() if s >= prefer_fewer * top)
    size = best[count]
    lines = _balanced(text, width, size, count, measure)
    if count == 2 and lines[0][-1:] not in _CLAUSE_ENDS:
        # "网络中断，无法核 / 验，…" reads badly: a little smaller, broken after the comma, reads well
        for smaller in range(size - 1, max(min_size, int(size * 0.85)) - 1, -1):
            split = _clause_split(text, width, smaller, measure)
            if split:
                return Fit(smaller, tuple(split), max(1, round(smaller * line_factor)))
    return Fit(size, tuple(lines), max(1, round(size * line_factor)))


#: a two-line text breaks after one of these when that keeps the lines about even
_CLAUSE_ENDS = set("，。；：！？,;:!?")


def _clause_split(text: str, width: int, size: int, measure: Measure) -> list[str] | None:
    """Two lines broken after a comma (or colon…), the most even such pair within 1:2, or None."""
    splits = []
    for i, ch in enumerate(text[:-1]):
        if ch in _CLAUSE_ENDS:
            first, second = text[: i + 1].rstrip(), text[i + 1 :].strip()
            a, b = measure(first, size), measure(second, size)
            if second and a <= width and b <= width and min(a, b) * 2 >= max(a, b):
                splits.append((abs(a - b), [first, second]))
    return min(splits)[1] if splits else None


def _balanced(text: str, width: int, size: int, count: int, measure: Measure) -> list[str]:
    """The narrowest wrap of `text` that still takes `count` lines: lines of even length; two
    lines break after a comma rather than inside a word when the halves stay within 1:2."""
    lines = wrap(text, width, size, measure)
    if count <= 1 or len(lines) != count:
        return lines
    if count == 2:
        split = _clause_split(text, width, size, measure)
        if split:
            return split
    lo, hi = max(1, width // count), width
    while lo < hi:
        mid = (lo + hi) // 2
        if len(wrap(text, mid, size, measure)) <= count:
            hi = mid
        else:
            lo = mid + 1
    return wrap(text, hi, size, measure)
