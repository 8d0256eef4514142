"""Small horizontal bar charts drawn on the server as SVG (no JavaScript, no image files).

Each chart is a ``<figure>`` with an SVG marked ``role="img"`` and a text equivalent, so a screen
reader and a text browser get the numbers too. Widths scale to the largest value; the SVG
scales to its container (``viewBox``), so it never overflows a phone's screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

__all__ = ["bar_chart"]

_ROW = 26
_LABEL = 140
_WIDTH = 340


def bar_chart(title: str, rows: Sequence[tuple[str, int, str]]) -> Markup:
    """``rows``: (label, value, css class for the bar's colour)."""
    if not rows:
        return Markup('<p class="muted">{}</p>').format(f"{title}: nothing yet.")
    top = max(value for _label, value, _css in rows) or 1
    span = _WIDTH - _LABEL - 48
    height = _ROW * len(rows) + 4
    parts = [
        f'<svg viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img" '
        f'aria-labelledby="{_slug(title)}" '
        f'preserveAspectRatio="xMinYMin meet" class="chart">'
    ]
    for i, (label, value, css) in enumerate(rows):
        y = i * _ROW + 2
        width = 0 if value == 0 else max(2, round(span * value / top))
        parts.append(
            f'<text x="0" y="{y + 17}" class="chart-label">{escape(label[:20])}</text>'
            f'<rect x="{_LABEL}" y="{y + 4}" width="{width}" height="16" rx="2" '
            f'class="bar {escape(css)}"></rect>'
            f'<text x="{_LABEL + width + 6}" y="{y + 17}" class="chart-value">{value}</text>'
        )
    parts.append("</svg>")
    summary = ", ".join(f"{label}: {value}" for label, value, _css in rows)
    # Every piece of text in it went through escape() above.
    return Markup(  # noqa: S704
        f'<figure class="chart-box"><figcaption id="{_slug(title)}">{escape(title)}'
        f'<span class="visually-hidden"> — {escape(summary)}</span></figcaption>'
        f"{''.join(parts)}</figure>"
    )


def _slug(title: str) -> str:
    return "chart-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())[:40]
