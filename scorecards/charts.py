"""The scorecard email's charts as small PNG images drawn with Pillow (mail clients run no JavaScript,
so the dashboards' Plotly charts cannot travel). Deterministic: the same figures give the same bytes
(no timestamps, fixed size and font), so a re-sent email is identical. Every chart's figures are also
a table in the email, for readers who cannot see images."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

WIDTH = 560
BAND_COLOURS = {
    "red": (192, 57, 43),
    "yellow": (224, 170, 0),
    "grey": (127, 140, 141),
    "green": (39, 133, 84),
    "none": (213, 216, 220),
}
BAND_TEXT = {"red": "white", "yellow": "black", "grey": "white", "green": "white", "none": "black"}
INK = (33, 37, 41)
MUTED = (108, 117, 125)
GRID = (222, 226, 230)
MET, MISSED, NO_DATA = (39, 133, 84), (192, 57, 43), (173, 181, 189)
LABEL_WIDTH = 170  # KPI names
PERIOD_WIDTH = 50  # "W48" before each band bar


@functools.cache
def _font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled default font (no system font files: the same image on every machine)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _png(image: Image.Image) -> bytes:
    """A 32-colour palette PNG: the charts hold a handful of flat colours plus anti-aliased text, so
    this is a few kB (the RGB original is 15) and takes ~2 ms, where optimize=True took ~15 ms per
    chart: a thousand emails a week make that count."""
    buffer = io.BytesIO()
    image.quantize(colors=32, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG")
    return buffer.getvalue()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """`text` shortened with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def band_chart(groups: Sequence[tuple[str, Sequence[tuple[str, dict[str, int]]]]], *, bands: Sequence[str]) -> bytes:
    """Stacked horizontal bars of accounts per health band. `groups`: one (segment name, bars) per
    segment, each bar a (period label, {band: accounts}) such as ("W48", {...}), ("W47", {...}). The
    segment's name is written above its bars, so long names are never cut. All bars share one scale
    (the largest total), so segments compare by size; each stack is labelled with its count when the
    count fits inside it, and each bar with its total."""
    font, small = _font(12), _font(11)
    name_h, row_h, gap, top, legend_h = 16, 16, 4, 6, 22
    height = top + sum(name_h + len(bars) * (row_h + gap) + 4 for _, bars in groups) + legend_h
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    scale_max = max([sum(counts.get(b, 0) for b in bands) for _, bars in groups for _, counts in bars] + [1])
    x0, x1 = PERIOD_WIDTH, WIDTH - 44
    y = top
    for segment, bars in groups:
        draw.text((6, y + 1), _fit(draw, segment, WIDTH - 12, font), fill=INK, font=font)
        y += name_h
        for period, counts in bars:
            draw.text((10, y + 2), period, fill=MUTED, font=small)
            x, total = x0, 0
            for band in bands:
                n = counts.get(band, 0)
                total += n
                if not n:
                    continue
                w = max(1, round(n * (x1 - x0) / scale_max))
                draw.rectangle((x, y, x + w - 1, y + row_h - 1), fill=BAND_COLOURS[band])
                text = str(n)
                if draw.textlength(text, font=small) + 4 <= w:
                    draw.text((x + 3, y + 2), text, fill=BAND_TEXT[band], font=small)
                x += w
            draw.text((x + 4, y + 2), str(total) if total else "no accounts", fill=MUTED, font=small)
            y += row_h + gap
        y += 4
    # Legend: colour swatch and band name (colour is never the only cue: the tables name the bands).
    x = 6
    for band in bands:
        draw.rectangle((x, y + 3, x + 10, y + 13), fill=BAND_COLOURS[band])
        name = "not scored" if band == "none" else band
        draw.text((x + 14, y + 1), name, fill=INK, font=small)
        x += 24 + round(draw.textlength(name, font=small)) + 10
    return _png(image)


def kpi_chart(rows: Sequence[tuple[str, float | None, bool | None]]) -> bytes:
    """Horizontal bars of KPI attainment (share of reporting accounts on target, 0-100 %), one per
    (KPI name, attainment, met) row: green when the mean meets the target, red when it misses, grey
    and "no data" when no account reported."""
    font, small = _font(12), _font(11)
    row_h, gap, top, axis_h = 16, 6, 8, 16
    height = top + max(len(rows), 1) * (row_h + gap) + axis_h
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    x0, x1 = LABEL_WIDTH + 10, WIDTH - 50
    for pct in (0, 50, 100):
        x = x0 + round(pct * (x1 - x0) / 100)
        draw.line((x, top - 2, x, height - axis_h), fill=GRID)
        draw.text((x - 8, height - axis_h + 2), f"{pct}%", fill=MUTED, font=small)
    y = top
    for name, attainment, met in rows:
        draw.text((6, y + 2), _fit(draw, name, LABEL_WIDTH, font), fill=INK, font=font)
        if attainment is None:
            draw.text((x0 + 4, y + 2), "no data", fill=MUTED, font=small)
        else:
            w = round(max(0.0, min(100.0, attainment)) * (x1 - x0) / 100)
            colour = MET if met else MISSED if met is False else NO_DATA
            if w:
                draw.rectangle((x0, y, x0 + w - 1, y + row_h - 1), fill=colour)
            draw.text((x0 + w + 4, y + 2), f"{attainment:.1f}%", fill=INK, font=small)
        y += row_h + gap
    if not rows:
        draw.text((x0 + 4, y - row_h - gap + 2), "no KPIs defined", fill=MUTED, font=small)
    return _png(image)
