"""The trend chart: a small inline SVG drawn here, so the report needs no script or service for it.

Each series differs by colour *and* by dash pattern and marker shape, and the chart carries a
``<title>``/``<desc>``; the report also prints the same numbers as a table (the text alternative).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from auditor.report import TrendPoint

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 150, 14, 34

#: (attribute, label, colour, dash pattern, marker) - colours are >= 4.5:1 on white.
SERIES = (
    ("admins", "Administrators", "#1f4e9c", "", "circle"),
    ("stale", "Stale accounts", "#8a4b00", "6 3", "square"),
    ("findings", "Open findings", "#9b1c31", "2 3", "diamond"),
)


def trend_svg(points: Sequence[TrendPoint]) -> Markup:
    """An accessible SVG line chart of administrators, stale accounts and findings over time."""
    ordered = sorted(points, key=lambda point: point.taken_at)
    if len(ordered) < 2:
        return Markup("")
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    start = ordered[0].taken_at.timestamp()
    span = ordered[-1].taken_at.timestamp() - start
    peak = max(max(p.admins, p.stale, p.findings) for p in ordered)
    top_value = _nice_ceiling(peak)

    def x_of(index: int) -> float:
        if span <= 0:
            return LEFT + plot_w * index / (len(ordered) - 1)
        return LEFT + plot_w * (ordered[index].taken_at.timestamp() - start) / span

    def y_of(value: int) -> float:
        return TOP + plot_h - plot_h * value / top_value

    first = ordered[0].taken_at.date().isoformat()
    last = ordered[-1].taken_at.date().isoformat()
    parts = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="trend-title trend-desc">',
        '<title id="trend-title">Trend of administrators, stale accounts and open findings</title>',
        f'<desc id="trend-desc">{len(ordered)} snapshots from {escape(first)} to {escape(last)}; '
        "the table below the chart lists every value.</desc>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = round(top_value * fraction)
        y = y_of(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#767676" '
            'stroke-width="0.5"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#333">{value}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 10}" font-size="11" fill="#333">{escape(first)}</text>'
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 10}" font-size="11" fill="#333" '
        f'text-anchor="end">{escape(last)}</text>'
    )
    for row, (attribute, label, colour, dash, marker) in enumerate(SERIES):
        coords = [(x_of(i), y_of(int(getattr(p, attribute)))) for i, p in enumerate(ordered)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr} points="{path}"/>'
        )
        parts.extend(_marker(marker, x, y, colour) for x, y in coords)
        legend_y = TOP + 14 + row * 22
        legend_x = WIDTH - RIGHT + 14
        parts.append(
            f'<line x1="{legend_x}" y1="{legend_y - 4}" x2="{legend_x + 22}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
            + _marker(marker, legend_x + 11, legend_y - 4, colour)
            + f'<text x="{legend_x + 28}" y="{legend_y}" font-size="12" fill="#222">{escape(label)}</text>'
        )
    parts.append("</svg>")
    # Every value interpolated above is a number or escape()d text.
    return Markup("".join(parts))  # noqa: S704


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{colour}"/>'
    if shape == "diamond":
        return (
            f'<path d="M{x:.1f} {y - 4:.1f}L{x + 4:.1f} {y:.1f}L{x:.1f} {y + 4:.1f}L{x - 4:.1f} {y:.1f}Z" '
            f'fill="{colour}"/>'
        )
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'


def _nice_ceiling(value: int) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 5 x 10^n), never zero."""
    if value <= 0:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10
