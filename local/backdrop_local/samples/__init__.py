"""Sample product photos for the local demo (mug.png, sneaker.png, bottle.png)."""

from pathlib import Path

SAMPLES_DIR = Path(__file__).parent
