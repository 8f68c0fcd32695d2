"""Letters that look like no digit, written in typefaces, for the refusal tests and benchmark.

Excluded are letters a person may write like a digit: O o D Q (0), I l i j J T t (1, 7), Z z (2), A (4), S s (5),
G b (6), B (8), g q a d y (9), and those a linear model cannot tell from a digit's outline by design (U u).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from photos import font_files

LETTERS = "CEFHKLMNPRVWXYcefhkmnprvwx"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
DEJAVU_FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf")


def letter_fonts() -> list[Path]:
    """DejaVu's sans and serif faces and the installed handwriting fonts."""
    return [DEJAVU / f for f in DEJAVU_FACES if (DEJAVU / f).exists()] + font_files()


def letter_image(font: Path, letter: str, size: int = 160) -> Image.Image:
    """`letter` in `font`, black on white, about `size` px tall, on a page 1.6 times its size."""
    face = ImageFont.truetype(str(font), size)
    page = Image.new("L", (int(size * 1.6), int(size * 1.6)), 255)
    ImageDraw.Draw(page).text((page.width / 2, page.height / 2), letter, font=face, fill=0, anchor="mm")
    return page


def write_letters(folder: Path, fonts=None, letters: str = LETTERS) -> list[Path]:
    """Every letter in every font as a PNG in `folder`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, font in enumerate(fonts if fonts is not None else letter_fonts()):
        for letter in letters:
            path = folder / f"f{i:02d}-{'U' if letter.isupper() else 'l'}{letter}.png"
            letter_image(font, letter).save(path)
            paths.append(path)
    return paths
