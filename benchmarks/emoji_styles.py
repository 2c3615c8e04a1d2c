"""Labelled happy/sad folders of emoji in other drawing styles than ../shared/datasets/
emoji-glyphs/: the same 36 code points and the same labels (from their Unicode names), drawn by
other artists, for checking a model on drawings nobody chose a recipe on.

The images come from npm packages that ship them (fetched with `npm pack`, which downloads
nothing at run time of the project; the folders are written outside it, never into it):

    npm pack emoji-datasource-apple@16.0.0 emoji-datasource-facebook@16.0.0 \\
        @lobehub/fluent-emoji-3d@1.1.0 openmoji@17.0.0     # then tar xzf each into its folder
    python -m benchmarks.emoji_styles fluent-3d EXTRACTED/package/assets OUT/fluent-3d

STYLE picks the file pattern: apple-64 and facebook-64 (64 px PNGs, glossy; twitter-64 is
the same pattern), fluent-3d (Microsoft's Fluent 3D, 256 px WebP), openmoji (outlined flat
SVGs, rasterised with `rsvg-convert` from Debian's librsvg2-bin). Two more read other packages'
formats: iconify (SOURCE is an Iconify JSON set's icons.json, its icons named by the emoji's
CLDR name, e.g. `@iconify-json/fluent-emoji-high-contrast`) and unifont (SOURCE is the folder
of Debian's fonts-unifont OpenType files: GNU Unifont's 16 px black glyphs, scaled by 16 without
smoothing). Each emoji goes on two backgrounds (white; a pale diagonal gradient, unlike
emoji-glyphs/'s flat blue) at two scales (85% and 50% of 256 px): 144 images a style.

The styles trainer.drawn_prior is fitted on come from here too (its docstring says which).
"""

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

HAPPY = ("1F600 1F601 1F602 1F603 1F604 1F606 1F607 1F609 1F60A 1F60B 1F60D 1F60E 1F638 1F63A "
         "1F63B 1F642 1F917 263A").split()
SAD = ("1F613 1F614 1F615 1F616 1F61E 1F61F 1F622 1F623 1F625 1F626 1F627 1F629 1F62B 1F62D "
       "1F630 1F63F 1F641 2639").split()
PATTERNS = {"apple-64": "{lower}.png", "facebook-64": "{lower}.png", "twitter-64": "{lower}.png",
            "fluent-3d": "{lower}.webp", "openmoji": "{upper}.svg"}
# The code points' CLDR short names, as Iconify's emoji sets name their icons (a few older sets
# say "cat-face" where CLDR says "cat").
CLDR_NAMES = {
    "1F600": "grinning-face", "1F601": "beaming-face-with-smiling-eyes",
    "1F602": "face-with-tears-of-joy", "1F603": "grinning-face-with-big-eyes",
    "1F604": "grinning-face-with-smiling-eyes", "1F606": "grinning-squinting-face",
    "1F607": "smiling-face-with-halo", "1F609": "winking-face",
    "1F60A": "smiling-face-with-smiling-eyes", "1F60B": "face-savoring-food",
    "1F60D": "smiling-face-with-heart-eyes", "1F60E": "smiling-face-with-sunglasses",
    "1F638": "grinning-cat-with-smiling-eyes", "1F63A": "grinning-cat",
    "1F63B": "smiling-cat-with-heart-eyes", "1F642": "slightly-smiling-face",
    "1F917": "hugging-face", "263A": "smiling-face",
    "1F613": "downcast-face-with-sweat", "1F614": "pensive-face", "1F615": "confused-face",
    "1F616": "confounded-face", "1F61E": "disappointed-face", "1F61F": "worried-face",
    "1F622": "crying-face", "1F623": "persevering-face", "1F625": "sad-but-relieved-face",
    "1F626": "frowning-face-with-open-mouth", "1F627": "anguished-face", "1F629": "weary-face",
    "1F62B": "tired-face", "1F62D": "loudly-crying-face", "1F630": "anxious-face-with-sweat",
    "1F63F": "crying-cat", "1F641": "slightly-frowning-face", "2639": "frowning-face",
}
STYLES = (*PATTERNS, "iconify", "unifont")
UNIFONT_PIXELS = 16
SIZE = 256
SCALES = (0.85, 0.5)


def backgrounds() -> list[np.ndarray]:
    white = np.full((SIZE, SIZE, 3), 255, np.float32)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (2 * SIZE - 2)
    t = (x + y)[..., None]
    gradient = (1 - t) * np.float32([200, 235, 210]) + t * np.float32([170, 215, 245])
    return [white, gradient.astype(np.float32)]


def read_rgba(path: Path) -> np.ndarray:
    if path.suffix == ".svg":
        with tempfile.TemporaryDirectory() as scratch:
            png = Path(scratch) / "glyph.png"
            subprocess.run(["rsvg-convert", "-w", str(SIZE), "-h", str(SIZE), str(path),
                            "-o", str(png)], check=True)
            return read_rgba(png)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    if image.shape[2] == 3:
        image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    return image


def place(rgba: np.ndarray, background: np.ndarray, scale: float) -> np.ndarray:
    side = int(SIZE * scale)
    interpolation = cv2.INTER_CUBIC if rgba.shape[0] < side else cv2.INTER_AREA
    glyph = cv2.resize(rgba, (side, side), interpolation=interpolation).astype(np.float32)
    out, top = background.copy(), (SIZE - side) // 2
    alpha = glyph[..., 3:4] / 255.0
    region = out[top:top + side, top:top + side]
    out[top:top + side, top:top + side] = alpha * glyph[..., :3] + (1 - alpha) * region
    return np.clip(out, 0, 255).astype(np.uint8)


def iconify_reader(icons_json: Path):
    """point -> RGBA of an Iconify JSON set's icon for it (its SVG body, rasterised)."""
    icon_set = json.loads(icons_json.read_text())
    icons, aliases = icon_set["icons"], icon_set.get("aliases", {})

    def read(point: str) -> np.ndarray:
        name = CLDR_NAMES[point]
        for candidate in (name, re.sub(r"-cat\b", "-cat-face", name)):
            candidate = aliases.get(candidate, {}).get("parent", candidate)
            if candidate in icons:
                icon = icons[candidate]
                break
        else:
            raise SystemExit(f"{icons_json} has no icon named {name}")
        width = icon.get("width", icon_set.get("width", 16))
        height = icon.get("height", icon_set.get("height", 16))
        with tempfile.TemporaryDirectory() as scratch:
            svg = Path(scratch) / "icon.svg"
            svg.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
                           f'{height}">{icon["body"]}</svg>')
            return read_rgba(svg)
    return read


def unifont_reader(fonts: Path):
    """point -> RGBA of GNU Unifont's glyph: black where the 16 px bitmap is set, scaled up
    without smoothing (the plane-1 emoji are in unifont_upper.otf)."""
    from PIL import Image, ImageDraw, ImageFont

    def read(point: str) -> np.ndarray:
        code = int(point, 16)
        font = ImageFont.truetype(str(fonts / ("unifont_upper.otf" if code > 0xFFFF
                                               else "unifont.otf")), UNIFONT_PIXELS)
        bitmap = Image.new("L", (UNIFONT_PIXELS, UNIFONT_PIXELS), 0)
        ImageDraw.Draw(bitmap).text((0, 0), chr(code), fill=255, font=font)
        ink = np.asarray(bitmap)
        rows, columns = np.nonzero(ink)
        ink = ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
        ink = np.kron(ink, np.ones((UNIFONT_PIXELS, UNIFONT_PIXELS), np.uint8))
        return np.dstack([np.zeros_like(ink)] * 3 + [ink])
    return read


def style_reader(style: str, source: Path):
    """point -> RGBA image of that emoji in `style` from the package's files at `source`."""
    if style == "iconify":
        return iconify_reader(source)
    if style == "unifont":
        return unifont_reader(source)
    return lambda point: read_rgba(source_path(source, PATTERNS[style], point))


def source_path(source: Path, pattern: str, point: str) -> Path:
    path = source / pattern.format(lower=point.lower(), upper=point)
    if path.exists():
        return path  # U+263A and U+2639 are named with their emoji selector in some packages
    return source / pattern.format(lower=point.lower() + "-fe0f", upper=point + "-FE0F")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("style", choices=sorted(STYLES))
    parser.add_argument("source", type=Path, help="the package's folder of per-emoji images "
                        "(iconify: its icons.json; unifont: the folder of its .otf files)")
    parser.add_argument("--name", help="the file-name prefix (default: the style)")
    parser.add_argument("out", type=Path, help="the labelled folder to write (happy/, sad/)")
    args = parser.parse_args(argv)
    grounds, written = backgrounds(), 0
    read, prefix = style_reader(args.style, args.source), args.name or args.style
    for label, points in (("happy", HAPPY), ("sad", SAD)):
        (args.out / label).mkdir(parents=True, exist_ok=True)
        for point in points:
            rgba = read(point)
            for b, background in enumerate(grounds):
                for s, scale in enumerate(SCALES):
                    name = f"{prefix}__u{point}_b{b}_s{s}.png"
                    cv2.imwrite(str(args.out / label / name), place(rgba, background, scale))
                    written += 1
    print(f"{args.out}: {written} images")


if __name__ == "__main__":
    main()
