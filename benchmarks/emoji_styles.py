"""Labelled happy/sad folders of emoji in other drawing styles than ../shared/datasets/
emoji-glyphs/: the same 36 code points and the same labels (from their Unicode names), drawn by
other artists, for checking a model on drawings nobody chose a recipe on.

The images come from npm packages that ship them (fetched with `npm pack`, which downloads
nothing at run time of the project; the folders are written outside it, never into it):

    npm pack emoji-datasource-apple@16.0.0 emoji-datasource-facebook@16.0.0 \\
        @lobehub/fluent-emoji-3d@1.1.0 openmoji@17.0.0     # then tar xzf each into its folder
    python -m benchmarks.emoji_styles fluent-3d EXTRACTED/package/assets OUT/fluent-3d

STYLE picks the file pattern: apple-64 and facebook-64 (64 px PNGs, glossy), fluent-3d
(Microsoft's Fluent 3D, 256 px WebP), openmoji (outlined flat SVGs, rasterised with
`rsvg-convert` from Debian's librsvg2-bin). Each emoji goes on two backgrounds (white; a pale
diagonal gradient, unlike emoji-glyphs/'s flat blue) at two scales (85% and 50% of 256 px):
144 images a style.
"""

import argparse
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

HAPPY = ("1F600 1F601 1F602 1F603 1F604 1F606 1F607 1F609 1F60A 1F60B 1F60D 1F60E 1F638 1F63A "
         "1F63B 1F642 1F917 263A").split()
SAD = ("1F613 1F614 1F615 1F616 1F61E 1F61F 1F622 1F623 1F625 1F626 1F627 1F629 1F62B 1F62D "
       "1F630 1F63F 1F641 2639").split()
PATTERNS = {"apple-64": "{lower}.png", "facebook-64": "{lower}.png",
            "fluent-3d": "{lower}.webp", "openmoji": "{upper}.svg"}
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


def source_path(source: Path, pattern: str, point: str) -> Path:
    path = source / pattern.format(lower=point.lower(), upper=point)
    if path.exists():
        return path  # U+263A and U+2639 are named with their emoji selector in some packages
    return source / pattern.format(lower=point.lower() + "-fe0f", upper=point + "-FE0F")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("style", choices=sorted(PATTERNS))
    parser.add_argument("source", type=Path, help="the package's folder of per-emoji images")
    parser.add_argument("out", type=Path, help="the labelled folder to write (happy/, sad/)")
    args = parser.parse_args(argv)
    grounds, written = backgrounds(), 0
    for label, points in (("happy", HAPPY), ("sad", SAD)):
        (args.out / label).mkdir(parents=True, exist_ok=True)
        for point in points:
            rgba = read_rgba(source_path(args.source, PATTERNS[args.style], point))
            for b, background in enumerate(grounds):
                for s, scale in enumerate(SCALES):
                    name = f"{args.style}__u{point}_b{b}_s{s}.png"
                    cv2.imwrite(str(args.out / label / name), place(rgba, background, scale))
                    written += 1
    print(f"{args.out}: {written} images")


if __name__ == "__main__":
    main()
