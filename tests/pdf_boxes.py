"""Word boxes of a PDF read back with poppler's ``pdftotext -bbox``, and the layout checks on them."""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

MM = 72 / 25.4
#: print.css: ``@page { size: A4; margin: 20mm 14mm 18mm; }``
SIDE_MARGIN = 14 * MM
#: Running headers and footers sit inside the top and bottom margins, so vertically only the
#: page edge (with a little room) is the limit.
EDGE = 5 * MM
#: Rounding in the PDF's coordinates; a real overflow is at least a glyph wide.
TOLERANCE = 0.6


@dataclass(frozen=True)
class Word:
    page: int
    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Page:
    number: int
    width: float
    height: float
    words: tuple[Word, ...]


_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
_WORD = re.compile(r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>')


def word_boxes(pdf: Path) -> list[Page]:
    out = subprocess.run(["pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True)
    pages = []
    for number, match in enumerate(_PAGE.finditer(out.stdout.decode("utf-8")), start=1):
        words = tuple(
            Word(number, html.unescape(w[4]), float(w[0]), float(w[1]), float(w[2]), float(w[3]))
            for w in _WORD.findall(match.group(3))
        )
        pages.append(Page(number, float(match.group(1)), float(match.group(2)), words))
    return pages


def outside_margins(pages: list[Page]) -> list[Word]:
    """Every word that reaches into the side margins or past the page's top or bottom edge."""
    bad = []
    for page in pages:
        left, right = SIDE_MARGIN - TOLERANCE, page.width - SIDE_MARGIN + TOLERANCE
        for word in page.words:
            if word.x0 < left or word.x1 > right or word.y0 < EDGE or word.y1 > page.height - EDGE:
                bad.append(word)
    return bad


def overlapping(pages: list[Page]) -> list[tuple[Word, Word]]:
    """Pairs of words whose boxes cross: text run into a neighbouring column or line."""
    found = []
    for page in pages:
        words = sorted(page.words, key=lambda w: w.x0)
        for index, word in enumerate(words):
            for other in words[index + 1:]:
                if other.x0 >= word.x1 - TOLERANCE:
                    break
                dx = min(word.x1, other.x1) - max(word.x0, other.x0)
                dy = min(word.y1, other.y1) - max(word.y0, other.y0)
                # Lines set solid touch or share a sliver; crossing text overlaps by much more.
                if dx > TOLERANCE and dy > 0.35 * min(word.y1 - word.y0, other.y1 - other.y0):
                    found.append((word, other))
    return found
