"""Draw the sample product photos used by the local demo.

Run once after changing a drawing: `python -m backdrop_local.samples.make_samples`.
The three cover the inputs the emulator must handle: a cut-out with an alpha channel
(mug), a studio shot on white without alpha (sneaker) and one on a light grey gradient
with a white label inside the subject (bottle).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 512
# Drawn larger, then scaled down: Pillow's shapes have no anti-aliasing of their own.
_SCALE = 3
HERE = Path(__file__).resolve().parent


def _canvas(mode: str, colour: tuple[int, ...]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new(mode, (SIZE * _SCALE, SIZE * _SCALE), colour)
    return image, ImageDraw.Draw(image)


def _box(*points: float) -> list[float]:
    return [value * _SCALE for value in points]


def _finish(image: Image.Image) -> Image.Image:
    return image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def mug() -> Image.Image:
    """A teal mug with a handle, on transparency."""
    image, draw = _canvas("RGBA", (0, 0, 0, 0))
    body, dark, coffee = (38, 139, 150, 255), (24, 98, 108, 255), (92, 56, 34, 255)
    draw.ellipse(_box(300, 190, 430, 360), outline=dark, width=30 * _SCALE)  # handle
    draw.rounded_rectangle(_box(110, 140, 350, 430), radius=36 * _SCALE, fill=body)
    draw.ellipse(_box(110, 115, 350, 165), fill=dark)  # rim
    draw.ellipse(_box(124, 124, 336, 158), fill=coffee)
    highlight = (96, 178, 186, 255)
    draw.rounded_rectangle(_box(140, 190, 162, 390), radius=10 * _SCALE, fill=highlight)
    return _finish(image)


def sneaker() -> Image.Image:
    """A blue sneaker in profile on a white studio background (no alpha)."""
    image, draw = _canvas("RGB", (250, 250, 250))
    upper, accent, lace = (40, 84, 196), (245, 180, 40), (240, 240, 244)
    gum, midsole = (196, 150, 96), (226, 222, 214)
    draw.polygon(
        _box(70, 335, 72, 205, 118, 172, 186, 184, 262, 238, 380, 258, 452, 286, 470, 335),
        fill=upper,
    )
    draw.polygon(_box(150, 305, 262, 252, 372, 276, 300, 310), fill=accent)  # side stripe
    draw.ellipse(_box(58, 196, 96, 234), fill=accent)  # heel tab
    for step in range(5):  # laces across the instep
        x, y = 196 + step * 15, 194 + step * 10.5
        draw.line(_box(x, y, x - 16, y + 26), fill=lace, width=7 * _SCALE)
    draw.rounded_rectangle(_box(52, 328, 476, 352), radius=10 * _SCALE, fill=midsole)
    draw.rounded_rectangle(_box(48, 348, 480, 378), radius=14 * _SCALE, fill=gum)
    return _finish(image)


def bottle() -> Image.Image:
    """A green glass bottle with a white label, on a light grey gradient (no alpha)."""
    image, draw = _canvas("RGB", (236, 236, 238))
    for row in range(0, SIZE * _SCALE, _SCALE):  # gentle studio falloff, top to bottom
        shade = 244 - round(12 * row / (SIZE * _SCALE))
        draw.line([(0, row), (SIZE * _SCALE, row)], fill=(shade, shade, shade + 2), width=_SCALE)
    glass, cap, label = (46, 120, 74), (170, 40, 40), (252, 252, 250)
    draw.rounded_rectangle(_box(176, 200, 336, 470), radius=30 * _SCALE, fill=glass)  # body
    draw.polygon(_box(176, 232, 226, 150, 286, 150, 336, 232), fill=glass)  # shoulders
    draw.rectangle(_box(226, 70, 286, 160), fill=glass)  # neck
    draw.rounded_rectangle(_box(220, 40, 292, 82), radius=6 * _SCALE, fill=cap)
    draw.rectangle(_box(196, 215, 208, 450), fill=(90, 165, 115))  # highlight
    draw.rectangle(_box(186, 280, 326, 390), fill=label)  # inset: glass frames it
    draw.rectangle(_box(196, 305, 316, 318), fill=glass)  # "brand" line
    draw.rectangle(_box(216, 338, 296, 348), fill=(150, 150, 150))
    return _finish(image)


SAMPLES = {"mug.png": mug, "sneaker.png": sneaker, "bottle.png": bottle}


def main() -> None:
    for name, draw in SAMPLES.items():
        path = HERE / name
        draw().save(path, "PNG", optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
