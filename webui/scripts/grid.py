"""Labelled grids for the scripts: a CJK-capable font, wrapped labels around the cells, Z as a row of sub-grids."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

# Fonts that cover Chinese as well as Latin text, searched in this order (Debian's fonts-wqy-zenhei first).
CJK_FONTS = ("truetype/wqy/wqy-zenhei.ttc", "truetype/wqy/wqy-microhei.ttc", "opentype/noto/NotoSansCJK-Regular.ttc",
             "truetype/droid/DroidSansFallbackFull.ttf")
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
MIN_FONT_SIZE = 14  # A1111's (w+h)/25 is unreadable on small pictures
ACTIVE, INACTIVE = (0, 0, 0), (153, 153, 153)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Label:
    """One label line; inactive ones (a prompt-matrix part left out) are grey and struck through."""

    text: str
    active: bool = True


def find_cjk_font() -> Path | None:
    for folder in FONT_DIRS:
        for relative in CJK_FONTS:
            if (folder / relative).is_file():
                return folder / relative
    return None


def label_font(size: int) -> Font:
    """The CJK font at `size`; PIL's own font (Latin only) when none is installed, with a log line saying so."""
    path = find_cjk_font()
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError as error:
            log.warning("Could not open the label font %s (%s); using PIL's default font", path, error)
    else:
        log.warning("No CJK font found (install fonts-wqy-zenhei); grid labels use PIL's default font")
    return ImageFont.load_default(size)


def wrap(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> list[str]:
    """Lines no wider than `width`: break at spaces, and inside words (Chinese has no spaces) when needed."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:  # a word wider than the cell: break it by characters
                if line and draw.textlength(line + char, font=font) > width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


@dataclass
class _Block:
    lines: list[Label]
    heights: list[int]

    @property
    def height(self) -> int:
        return sum(self.heights)


def _layout(draw: ImageDraw.ImageDraw, labels: list[Label], font: Font, width: int, spacing: int) -> _Block:
    lines = [Label(text, label.active) for label in labels for text in wrap(draw, label.text, font, width)
             if label.text]
    heights = []
    for line in lines:
        box = draw.multiline_textbbox((0, 0), line.text or " ", font=font)
        heights.append(int(box[3] - box[1]) + spacing)
    return _Block(lines, heights)


def _draw_block(draw: ImageDraw.ImageDraw, centre_x: float, top: float, block: _Block, font: Font) -> None:
    y = top
    for line, height in zip(block.lines, block.heights, strict=False):
        colour = ACTIVE if line.active else INACTIVE
        draw.text((centre_x, y), line.text, font=font, fill=colour, anchor="mt")
        if not line.active:
            length = draw.textlength(line.text, font=font)
            middle = y + (height - height // 4) / 2
            draw.line((centre_x - length / 2, middle, centre_x + length / 2, middle), fill=colour, width=1)
        y += height


def font_size_for(cell_w: int, cell_h: int) -> int:
    return max(MIN_FONT_SIZE, (cell_w + cell_h) // 25)


def annotate(cells: Sequence[Image.Image], cols: int, rows: int, columns: list[list[Label]],
             row_labels: list[list[Label]], margin: int = 0) -> Image.Image:
    """Cells laid out `cols` × `rows` with `margin` px between them, column labels above, row labels left."""
    cell_w = max(image.width for image in cells)
    cell_h = max(image.height for image in cells)
    size = font_size_for(cell_w, cell_h)
    font, spacing = label_font(size), size // 2
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    has_rows = any(label.text for labels in row_labels for label in labels)
    pad_left = max(cell_w * 3 // 4, size * 6) if has_rows else 0
    top_blocks = [_layout(measure, labels, font, cell_w, spacing) for labels in columns]
    left_blocks = [_layout(measure, labels, font, pad_left, spacing) for labels in row_labels]
    tallest = max((block.height for block in top_blocks), default=0)
    pad_top = tallest + spacing * 2 if tallest else 0
    result = Image.new("RGB", (pad_left + cols * cell_w + margin * (cols - 1),
                               pad_top + rows * cell_h + margin * (rows - 1)), "white")
    for index, image in enumerate(cells):
        col, row = index % cols, index // cols
        x = pad_left + (cell_w + margin) * col + (cell_w - image.width) // 2
        y = pad_top + (cell_h + margin) * row + (cell_h - image.height) // 2
        result.paste(image, (x, y))
    draw = ImageDraw.Draw(result)
    for col, block in enumerate(top_blocks):
        _draw_block(draw, pad_left + (cell_w + margin) * col + cell_w / 2, pad_top / 2 - block.height / 2, block,
                    font)
    for row, block in enumerate(left_blocks):
        _draw_block(draw, pad_left / 2, pad_top + (cell_h + margin) * row + cell_h / 2 - block.height / 2, block,
                    font)
    return result


def labelled_grid(cells: Sequence[Image.Image], cols: int, x_labels: list[str], y_labels: list[str],
                  legend: bool = True, margin: int = 0) -> Image.Image:
    """One X × Y grid; without a legend (or labels) it is the plain grid with margins."""
    rows = len(cells) // cols
    if not legend:
        x_labels, y_labels = [""] * cols, [""] * rows
    return annotate(cells, cols, rows, [[Label(text)] for text in x_labels], [[Label(text)] for text in y_labels],
                    margin)


def row_of_grids(grids: Sequence[Image.Image], titles: list[str], legend: bool = True,
                 margin: int = 0) -> Image.Image:
    """Z: the sub-grids side by side, each titled with its Z value; a single grid is returned as it is."""
    if len(grids) == 1:
        return grids[0]
    titles = titles if legend else [""] * len(grids)
    return annotate(grids, len(grids), 1, [[Label(title)] for title in titles], [[Label("")]], margin)
