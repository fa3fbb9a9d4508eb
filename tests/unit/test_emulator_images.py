"""The emulator's stand-in images and the demo samples, without HTTP."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from backdrop_local.emulator import images

SAMPLES = Path(images.__file__).resolve().parents[1] / "samples"


def studio_shot(size: int = 256) -> Image.Image:
    """A blue body with a white label inside it, on near-white."""
    image = Image.new("RGB", (size, size), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 4, size // 8, size * 3 // 4, size * 7 // 8), fill=(30, 60, 200))
    draw.rectangle((size * 7 // 16, size * 7 // 16, size * 9 // 16, size * 9 // 16), fill="white")
    return image


def test_border_flood_fill_finds_the_background_but_not_white_inside_the_subject() -> None:
    cutout = images.cut_out(studio_shot())

    assert cutout.mask.getpixel((2, 2)) == 0  # background
    assert cutout.mask.getpixel((128, 60)) == 255  # blue body
    assert cutout.mask.getpixel((128, 128)) == 255  # white label, enclosed by the body


def test_alpha_channel_is_the_mask_unless_it_hides_nothing() -> None:
    cut = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(cut).rectangle((16, 16, 48, 48), fill=(10, 200, 10, 255))
    opaque = studio_shot(64).convert("RGBA")

    assert images.cut_out(cut).mask.getpixel((2, 2)) == 0
    assert images.cut_out(cut).mask.getpixel((32, 32)) == 255
    # An all-opaque alpha channel falls back to the border search
    assert images.cut_out(opaque).mask.getpixel((2, 2)) == 0


def test_backdrop_is_deterministic_and_follows_prompt_seed_and_index() -> None:
    def render(prompt: str, seed: int, index: int) -> bytes:
        return images.backdrop((96, 64), prompt, seed, index).tobytes()

    assert render("beach", 1, 0) == render("beach", 1, 0)
    assert len({render("beach", 1, 0), render("beach", 2, 0), render("beach", 1, 1)}) == 3
    assert render("beach", 1, 0) != render("forest", 1, 0)


def test_non_images_and_unsupported_formats_are_told_apart() -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(png, "PNG")

    with pytest.raises(images.UnsupportedImage):
        images.open_image(b"hello")
    with pytest.raises(images.UnsupportedImage):
        images.open_image(gif.getvalue())
    with pytest.raises(images.BrokenImage):
        images.open_image(png.getvalue()[:60])


def test_a_1024_pixel_result_renders_quickly() -> None:
    source = io.BytesIO()
    studio_shot(1024).save(source, "JPEG")

    started = time.perf_counter()
    cutout = images.cut_out(images.open_image(source.getvalue()))
    picture = images.label(images.composite(cutout, images.backdrop(cutout.size, "beach", 1)))
    images.encode(picture, "JPEG")
    elapsed = time.perf_counter() - started

    # About 0.1 s on a laptop; the bound leaves room for slow CI machines.
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("name", "has_alpha"), [("mug", True), ("sneaker", False), ("bottle", False)]
)
def test_samples_are_small_pngs_the_emulator_can_cut_out(name: str, has_alpha: bool) -> None:
    path = SAMPLES / f"{name}.png"
    image = Image.open(path)

    assert image.format == "PNG"
    assert path.stat().st_size < 60_000
    assert max(image.size) == 512
    assert ("A" in image.getbands()) is has_alpha
    cutout = images.cut_out(image)
    assert cutout.mask.getpixel((2, 2)) == 0
    assert cutout.mask.getpixel((256, 300)) == 255  # every sample has its subject there
