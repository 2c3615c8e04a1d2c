"""Two labelled happy/sad check folders made from drawn and photo folders, for checking a model
on what real folders hold rather than on one kind of image at a time. Written outside the
project (never into it); the sources are only read.

    python -m benchmarks.check_folders sheets OUT DRAWN [DRAWN ...]
    python -m benchmarks.check_folders wild OUT --photos PHOTOS DRAWN [DRAWN ...]

DRAWN folders are labelled folders of single emoji named as benchmarks.emoji_styles and
../shared/datasets/emoji-glyphs/ name them (`STYLE__uCODEPOINT_bB_sS.png`: the style before
"__", background B, scale S).

- `sheets`: sticker sheets, 2x2, 3x3 and 4x4 emoji of one class on white, 4, 8 or 16 px apart
  on a 256 px sheet, two sheets of each per style and class, drawn at random (seed 5) from the
  style's white-ground, larger-scale images (b0_s0), each cut to what differs from white.
- `wild`: a folder like the one issue 27 describes: most happy images drawn, most sad ones
  photos. Happy: every (style, code point) of the drawn folders once (a random variant), then
  more variants up to WILD_HAPPY_DRAWN, and WILD_HAPPY_PHOTOS photos; sad: WILD_SAD_DRAWN
  (style, code point) pairs and WILD_SAD_PHOTOS photos (random, seed 27). Files are copied,
  named SOURCE-FOLDER__FILE.
"""

import argparse
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

LABELS = ("happy", "sad")
SHEET_SIZE = 256
SHEET_SIDES = (2, 3, 4)
SHEET_GAPS = (4, 8, 16)
SHEETS_PER_KIND = 2
WHITE_CUT = 235  # a pixel whose every channel is at least this is the white ground
WILD_HAPPY_DRAWN, WILD_HAPPY_PHOTOS = 134, 50
WILD_SAD_DRAWN, WILD_SAD_PHOTOS = 40, 110


def style_of(path: Path) -> str:
    return path.name.split("__")[0]


def code_point(path: Path) -> str:
    return re.search(r"u([0-9A-F]+)", path.name).group(1)


def cut_from_white(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    rows, columns = np.nonzero(image.min(axis=2) < WHITE_CUT)
    return image[rows.min():rows.max() + 1, columns.min():columns.max() + 1]


def sheet(paths: list[Path], per_side: int, gap: int) -> np.ndarray:
    cell = (SHEET_SIZE - gap * (per_side + 1)) // per_side
    image = np.full((SHEET_SIZE, SHEET_SIZE, 3), 255, np.uint8)
    for index, path in enumerate(paths):
        emoji = cut_from_white(path)
        height, width = emoji.shape[:2]
        zoom = cell / max(height, width)
        emoji = cv2.resize(emoji, (max(1, round(width * zoom)), max(1, round(height * zoom))),
                           interpolation=cv2.INTER_AREA)
        row, column = divmod(index, per_side)
        top, left = gap + row * (cell + gap), gap + column * (cell + gap)
        image[top:top + emoji.shape[0], left:left + emoji.shape[1]] = emoji
    return image


def write_sheets(out: Path, drawn: list[Path]) -> int:
    rng, written = random.Random(5), 0
    for label in LABELS:
        (out / label).mkdir(parents=True)
        styles = defaultdict(list)
        for folder in drawn:
            for path in sorted((folder / label).iterdir()):
                if "_b0_s0" in path.name:
                    styles[style_of(path)].append(path)
        for style, paths in styles.items():
            for per_side in SHEET_SIDES:
                for gap in SHEET_GAPS:
                    for number in range(SHEETS_PER_KIND):
                        image = sheet(rng.sample(paths, per_side ** 2), per_side, gap)
                        name = f"{style}__{per_side}x{per_side}_gap{gap}_{number}.png"
                        cv2.imwrite(str(out / label / name), image)
                        written += 1
    return written


def variants(drawn: list[Path], label: str) -> dict[tuple[str, str], list[Path]]:
    """Each (style, code point)'s images of one class: its backgrounds and scales."""
    found = defaultdict(list)
    for folder in drawn:
        for path in sorted((folder / label).iterdir()):
            found[(style_of(path), code_point(path))].append(path)
    return found


def write_wild(out: Path, photos: Path, drawn: list[Path]) -> int:
    rng = random.Random(27)
    happy = variants(drawn, "happy")
    first = [rng.choice(paths) for _, paths in sorted(happy.items())]
    rest = [path for _, paths in sorted(happy.items()) for path in paths if path not in first]
    picked = {"happy": first + rng.sample(rest, WILD_HAPPY_DRAWN - len(first))}
    sad = variants(drawn, "sad")
    picked["sad"] = [rng.choice(paths) for _, paths in rng.sample(sorted(sad.items()),
                                                                  WILD_SAD_DRAWN)]
    own = {label: sorted((photos / label).iterdir()) for label in LABELS}
    picked["happy"] += rng.sample(own["happy"], WILD_HAPPY_PHOTOS)
    picked["sad"] += rng.sample(own["sad"], WILD_SAD_PHOTOS)
    for label, paths in picked.items():
        (out / label).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, out / label / f"{path.parent.parent.name}__{path.name}")
    return sum(len(paths) for paths in picked.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("sheets", "wild"))
    parser.add_argument("out", type=Path, help="the labelled folder to write (must not exist)")
    parser.add_argument("drawn", type=Path, nargs="+", help="labelled folders of single emoji")
    parser.add_argument("--photos", type=Path, help="wild: the labelled folder of photos")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists: choose a new folder")
    if args.kind == "wild" and args.photos is None:
        parser.error("wild needs --photos")
    written = (write_sheets(args.out, args.drawn) if args.kind == "sheets"
               else write_wild(args.out, args.photos, args.drawn))
    print(f"{args.out}: {written} images")


if __name__ == "__main__":
    main()
