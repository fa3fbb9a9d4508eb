"""Honest stand-in images: the input's subject over a generated, visibly labelled backdrop.

Nothing here pretends to be AI output. The subject is cut out (alpha channel, or the
near-uniform studio background flooded from the border), the backdrop is a gradient
with soft shapes whose colours follow a hash of the prompt, and every result carries an
"EMULATOR" label.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

from PIL import (
    Image,
    ImageChops,
    ImageDraw,
    ImageFilter,
    ImageFont,
    ImageOps,
    UnidentifiedImageError,
)

# Bigger inputs are scaled down first: the emulator must stay fast, and nobody judges
# stand-in pixels at full resolution.
MAX_SIDE = 2048

INPUT_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})

OutputFormat = Literal["JPEG", "PNG", "WEBP"]
CONTENT_TYPES: dict[OutputFormat, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}

# Border flood fill: searched on a small copy (pure Python BFS), refined at full size.
_SEARCH_SIDE = 160
_TOLERANCE = 32
_NEAR_LUT = [255 if value <= _TOLERANCE else 0 for value in range(256)]


class UnsupportedImage(ValueError):
    """Bytes that are not a JPEG, PNG or WEBP image."""


class BrokenImage(ValueError):
    """Bytes that claim to be an image but cannot be decoded."""


@dataclass(frozen=True)
class Cutout:
    """The input in RGB and its subject mask (L, 255 = subject), same size."""

    image: Image.Image
    mask: Image.Image

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def subject_box(self) -> tuple[int, int, int, int]:
        return self.mask.getbbox() or (0, 0, *self.size)


def open_image(data: bytes) -> Image.Image:
    """Decode and fully load an input image, or say why not."""
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise UnsupportedImage("not a JPEG, PNG or WEBP image") from error
    if image.format not in INPUT_FORMATS:
        raise UnsupportedImage(f"{image.format} images are not supported; send JPEG, PNG or WEBP")
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise BrokenImage(f"the {image.format} image cannot be decoded: {error}") from error
    # Phone shots carry their orientation in EXIF; results should stand upright.
    return ImageOps.exif_transpose(image)


def cut_out(image: Image.Image) -> Cutout:
    """Separate the subject: from the alpha channel if it has one, else from the border."""
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        low, _ = alpha.getextrema()
        if isinstance(low, int) and low < 255:
            return Cutout(rgba.convert("RGB"), alpha)
        image = rgba  # an alpha channel that hides nothing says nothing
    rgb = image.convert("RGB")
    return Cutout(rgb, _mask_from_border(rgb))


def _mask_from_border(rgb: Image.Image) -> Image.Image:
    small = rgb.copy()
    small.thumbnail((_SEARCH_SIDE, _SEARCH_SIDE), Image.Resampling.BILINEAR)
    colour = _border_colour(small)
    reachable = _reachable_from_border(_near(small, colour))
    # Grow a little before scaling up so thin background next to the subject is covered;
    # the full-size colour test below keeps the subject's edge sharp.
    grown = reachable.filter(ImageFilter.MaxFilter(3)).resize(rgb.size, Image.Resampling.BILINEAR)
    grown = grown.point([255 if value >= 64 else 0 for value in range(256)])
    background = ImageChops.multiply(grown, _near(rgb, colour))
    mask = ImageChops.invert(background).filter(ImageFilter.MedianFilter(3))
    return mask.filter(ImageFilter.GaussianBlur(0.8))


def _border_colour(image: Image.Image) -> tuple[int, int, int]:
    width, height = image.size
    strips = (
        (0, 0, width, 1),
        (0, height - 1, width, height),
        (0, 0, 1, height),
        (width - 1, 0, width, height),
    )
    data = b"".join(image.crop(box).tobytes() for box in strips)  # packed RGB triples
    red, green, blue = (statistics.median_low(data[band::3]) for band in range(3))
    return red, green, blue


def _near(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """L mask, 255 where every channel is within the tolerance of `colour`."""
    difference = ImageChops.difference(image, Image.new("RGB", image.size, colour))
    red, green, blue = difference.split()
    return ImageChops.lighter(ImageChops.lighter(red, green), blue).point(_NEAR_LUT)


def _reachable_from_border(near: Image.Image) -> Image.Image:
    """L mask of the `near` pixels connected (4-neighbours) to the image border."""
    width, height = near.size
    data = near.tobytes()
    total = width * height
    seen = bytearray(total)
    queue: deque[int] = deque()
    border = [*range(width), *range(total - width, total)]
    border += [row * width for row in range(height)]
    border += [row * width + width - 1 for row in range(height)]
    for index in border:
        if data[index] and not seen[index]:
            seen[index] = 255
            queue.append(index)
    while queue:
        index = queue.popleft()
        column = index % width
        for neighbour, inside in (
            (index - 1, column > 0),
            (index + 1, column < width - 1),
            (index - width, index >= width),
            (index + width, index + width < total),
        ):
            if inside and data[neighbour] and not seen[neighbour]:
                seen[neighbour] = 255
                queue.append(neighbour)
    return Image.frombytes("L", (width, height), bytes(seen))


def arrange(
    cutout: Cutout,
    size: tuple[int, int],
    *,
    around_subject: bool,
    padding: float = 0.0,
) -> Cutout:
    """Fit the subject box (or the whole input) into `size`, centred, keeping its proportions."""
    region = cutout.subject_box() if around_subject else (0, 0, *cutout.size)
    if region == (0, 0, *cutout.size) and size == cutout.size and padding == 0:
        return cutout  # unchanged pixels when nothing moves
    left, top, right, bottom = region
    region_width, region_height = right - left, bottom - top
    room_width = max(1.0, size[0] * (1 - 2 * padding))
    room_height = max(1.0, size[1] * (1 - 2 * padding))
    scale = min(room_width / region_width, room_height / region_height)
    placed = (max(1, round(region_width * scale)), max(1, round(region_height * scale)))
    offset = ((size[0] - placed[0]) // 2, (size[1] - placed[1]) // 2)
    image = Image.new("RGB", size)
    mask = Image.new("L", size, 0)
    image.paste(cutout.image.crop(region).resize(placed, Image.Resampling.LANCZOS), offset)
    mask.paste(cutout.mask.crop(region).resize(placed, Image.Resampling.LANCZOS), offset)
    return Cutout(image, mask)


def backdrop(
    size: tuple[int, int],
    prompt: str,
    seed: int,
    index: int = 0,
    *,
    guidance: Image.Image | None = None,
    guidance_scale: float = 0.6,
) -> Image.Image:
    """A deterministic scene: the palette follows the prompt, the layout the seed and index."""
    palette = hashlib.sha256(" ".join(prompt.lower().split()).encode()).digest()
    layout = random.Random(hashlib.sha256(f"{prompt}\0{seed}\0{index}".encode()).digest())
    hue = palette[0] / 255
    wall = _colour(hue, 0.20 + palette[1] / 255 * 0.30, 0.90)
    shade = _colour(hue + (palette[2] / 255 - 0.5) * 0.2, 0.40 + palette[3] / 255 * 0.35, 0.50)
    accent = _colour(hue + 0.5, 0.35 + palette[4] / 255 * 0.4, 0.85)

    # Everything is smooth, so draw small and scale up: cheap at any output size.
    scale = max(size) / 256
    small = (max(1, round(size[0] / scale)), max(1, round(size[1] / scale)))
    gradient = (
        Image.linear_gradient("L")
        .resize((512, 512))
        .rotate(layout.uniform(-25, 25), resample=Image.Resampling.BILINEAR)
        .crop((128, 128, 384, 384))
        .resize(small)
    )
    scene = Image.composite(
        Image.new("RGB", small, shade), Image.new("RGB", small, wall), gradient
    ).convert("RGBA")

    shapes = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    side = min(small)
    for _ in range(layout.randint(3, 6)):
        radius = side * layout.uniform(0.10, 0.35)
        x, y = layout.uniform(0, small[0]), layout.uniform(0, small[1] * 0.7)
        colour = accent if layout.random() < 0.5 else wall
        fill = (*colour, layout.randint(90, 170))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    horizon = small[1] * layout.uniform(0.62, 0.80)
    floor = tuple((a + b) // 2 for a, b in zip(wall, shade, strict=True))
    draw.rectangle((0, horizon, small[0], small[1]), fill=(*floor, 150))
    shapes = shapes.filter(ImageFilter.GaussianBlur(max(1.0, side / 20)))
    scene = (
        Image.alpha_composite(scene, shapes).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    )
    if guidance is not None and guidance_scale > 0:
        guide = ImageOps.fit(guidance.convert("RGB"), size, Image.Resampling.BILINEAR)
        scene = Image.blend(scene, guide, min(1.0, guidance_scale))
    return scene


def fill_backdrop(size: tuple[int, int], background: Image.Image) -> Image.Image:
    """A given background image, cropped to fill `size`."""
    return ImageOps.fit(background.convert("RGB"), size, Image.Resampling.BILINEAR)


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, min(saturation, 1.0), min(value, 1.0))
    return round(red * 255), round(green * 255), round(blue * 255)


def composite(cutout: Cutout, scene: Image.Image) -> Image.Image:
    """The subject over `scene` (same size), with a soft contact shadow to seat it."""
    width, height = cutout.size
    blur = max(2, round(min(width, height) / 60))
    shadow = cutout.mask.point([value * 45 // 100 for value in range(256)])
    shadow = shadow.filter(ImageFilter.GaussianBlur(blur))
    shadow_mask = Image.new("L", cutout.size, 0)
    shadow_mask.paste(shadow, (max(1, width // 160), max(1, height // 80)))
    result = scene.copy()
    result.paste((20, 20, 28), (0, 0, width, height), shadow_mask)
    result.paste(cutout.image, (0, 0), cutout.mask)
    return result


def transparent(cutout: Cutout) -> Image.Image:
    """The subject alone on transparency (an edit call that asks for no background)."""
    result = cutout.image.convert("RGBA")
    result.putalpha(cutout.mask)
    return result


def label(image: Image.Image, text: str = "EMULATOR") -> Image.Image:
    """A small, always visible tag in the bottom-right corner saying what made the image."""
    result = image.copy()
    width, height = result.size
    size = max(10, round(min(width, height) / 22))
    font = _font(size)
    box = [math.floor(edge) for edge in ImageDraw.Draw(result).textbbox((0, 0), text, font=font)]
    pad, margin = max(2, size // 3), max(1, size // 2)
    tag_size = (box[2] - box[0] + 2 * pad + 1, box[3] - box[1] + 2 * pad + 1)
    tag = Image.new("RGBA", tag_size, (0, 0, 0, 170))
    ImageDraw.Draw(tag).text(
        (pad - box[0], pad - box[1]), text, font=font, fill=(255, 255, 255, 255)
    )
    corner = (max(0, width - margin - tag_size[0]), max(0, height - margin - tag_size[1]))
    if result.mode == "RGBA":
        result.alpha_composite(tag, corner)
    else:
        result.paste(tag, corner, tag)
    return result


def watermark(image: Image.Image, text: str = "SANDBOX") -> Image.Image:
    """Photoroom sandbox keys get free but watermarked results: diagonal rows of `text`."""
    result = image.copy()
    width, height = result.size
    side = math.ceil(math.hypot(width, height))
    size = max(12, side // 12)
    layer = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(layer)
    font = _font(size)
    row = "   ".join([text] * (side // (size * 4) + 2))
    for number, top in enumerate(range(0, side, size * 3)):
        draw.text((-(number % 2) * size * 2, top), row, font=font, fill=110)
    layer = layer.rotate(30, resample=Image.Resampling.BILINEAR)
    left, top = (side - width) // 2, (side - height) // 2
    layer = layer.crop((left, top, left + width, top + height))
    if result.mode == "RGBA":
        white = Image.new("RGBA", result.size, (255, 255, 255, 255))
        white.putalpha(layer)
        result.alpha_composite(white)
    else:
        result.paste((255, 255, 255), (0, 0, width, height), layer)
    return result


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except ImportError:  # Pillow built without FreeType: the small bitmap font still shows
        return ImageFont.load_default()


def edge_share(mask: Image.Image) -> float:
    """Share of the subject's pixels that are only partly subject: how unsure the cut is."""
    histogram = mask.histogram()
    soft, solid = sum(histogram[1:255]), histogram[255]
    return soft / max(1, soft + solid)


def encode(image: Image.Image, image_format: OutputFormat, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        if image.mode == "RGBA":  # JPEG has no alpha: show the cut-out on white
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, (0, 0), image)
            image = flat
        image.convert("RGB").save(buffer, "JPEG", quality=quality)
    elif image_format == "WEBP":
        image.save(buffer, "WEBP", quality=quality)
    else:
        # Level 3 keeps large PNGs fast; the smooth backdrop compresses well anyway.
        image.save(buffer, "PNG", compress_level=3)
    return buffer.getvalue()
