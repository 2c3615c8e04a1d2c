"""The face in an image, for models that read expressions: the largest face MTCNN finds in the
decoded image, or else a drawn face (a smiley, an emoji, a cartoon), cropped square, grey, at
the expression network's input size.

Training (`face_inputs`) and serving (`model_batch`) cut the same crops from the same decoded
pixels (trainer.images), so the crops a model was fitted on and the crops it is served cannot
drift apart. Beside the crop, two flags say what was found: `face_found` (a face in a photo,
MTCNN's) and `drawn_found` (a drawn face, looked for where MTCNN found none; and a sticker sheet,
several figures on a plain background, is drawn faces even where MTCNN finds one of its glossy
emoji: none of the three photo sets' images with an MTCNN face is one). An image with
neither gets a blank crop; a model must treat that as no evidence either way (trainer.model).
A model is fitted on each image's largest face; it is called once per drawn face of an image
with several (a sticker sheet), and the image's outputs are the mean over its faces.

MTCNN (the `mtcnn` package, MIT, its weights inside) runs on the decoded image shrunk to
DETECTION_SIZE pixels: faces smaller than MIN_FACE_PIXELS there are not looked for.

Drawn faces are not faces to a detector trained on photos. They are looked for at
DRAWN_SEARCH_SIZE in two ways, the first that finds one wins:
- a figure on a plain background: the image's border is mostly one colour (DRAWN_BORDER_SHARE
  within DRAWN_TOLERANCE of its median), and the largest shape that differs from it, its holes
  filled (a line drawing's outline encloses the face), is roundish and fills its box like a
  disc (emoji, stickers, line-drawn smileys on any flat background); on a sticker sheet, the
  largest of several such shapes side by side, apart or touching;
- a round outline (a Hough circle) of at least DRAWN_RADII[0] of the image whose inside is
  mostly one flat colour (DRAWN_FLATNESS; the round things of photos are textured): smileys on
  busy backgrounds.
A drawn face's box is its whole head (the figure's box, the circle's), so its crop is cut
tighter than a photo face's (DRAWN_MARGIN), whose box holds only the features.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from trainer.inputs import (DRAWN_INPUT, FACE_INPUT, FACE_SIZE, FOUND_INPUT, IMAGE_INPUT,
                            reads_faces)

DETECTION_SIZE = 200
MIN_FACE_PIXELS = 20  # at DETECTION_SIZE: MTCNN's own default
MIN_CONFIDENCE = 0.9
MARGIN = 0.1  # of the face box's longer side, added on each side (the expression data's framing)
DRAWN_MARGIN = -0.05  # a drawn face's box is its whole head: cut 5% off each side
DETECTION_BATCH = 32
DRAWN_SEARCH_SIZE = 130  # drawn faces are looked for at this size: 8x cheaper than at 260 px
DRAWN_BORDER_SHARE = 0.9  # a plain background: this share of the border within the tolerance
DRAWN_SHAPE_AREA = (0.02, 0.97)  # the figure's share of the image
DRAWN_SHAPE_ASPECT = (0.6, 1.6)  # width over height of a roundish figure
DRAWN_SHAPE_FILL = 0.45  # of its box (a disc fills 0.79 of it)
DRAWN_SPLIT_RADII = (2, 4, 6)  # erosions (pixels at DRAWN_SEARCH_SIZE) that part touching figures
# Several figures side by side (a sticker sheet): the second largest at least this share of the
# first's size, and all of them, as discs, this share of what differs from the background.
DRAWN_SEVERAL_SIMILAR = 0.5
DRAWN_SEVERAL_COVER = 0.6
DRAWN_RADII = (0.15, 0.55)  # of the image's side
DRAWN_FLATNESS = 0.7  # the share of the inside within DRAWN_TOLERANCE of its median colour
DRAWN_TOLERANCE = 20  # per RGB channel, of 255
MOST_DRAWN_FACES = 9  # of a sticker sheet, read one by one: its 9 largest


@lru_cache(maxsize=1)
def _detector():
    """One MTCNN per process, made on first use: the package's three networks (their weights
    load from the package) run by trainer.face_detector, which traces them on first call and
    keeps their OpenVINO conversions in HAPPYSAD_CACHE_DIR for the next process."""
    from mtcnn import MTCNN

    from db.settings import get_settings
    from trainer.face_detector import FaceDetector

    return FaceDetector(MTCNN(device="CPU:0").stages, get_settings().cache_dir / "face-search")


def photo_faces(pixels: np.ndarray) -> np.ndarray:
    """(n, 4) float32 boxes (x, y, width, height) in `pixels`' coordinates of the largest
    confident MTCNN face of each image; all zeros where there is none."""
    import cv2

    boxes = np.zeros((len(pixels), 4), np.float32)
    if not len(pixels):
        return boxes
    size = pixels.shape[1]
    scale = size / DETECTION_SIZE
    small = np.stack([cv2.resize(image, (DETECTION_SIZE, DETECTION_SIZE),
                                 interpolation=cv2.INTER_AREA)
                      if size != DETECTION_SIZE else image
                      for image in np.asarray(pixels, np.uint8)])
    for start in range(0, len(small), DETECTION_BATCH):
        chunk = small[start:start + DETECTION_BATCH]
        found = _detector().detect(chunk, min_face_size=MIN_FACE_PIXELS)
        boxes[start:start + len(chunk)] = largest_faces(found, len(chunk)) * scale
    return boxes


def largest_faces(found: np.ndarray, count: int) -> np.ndarray:
    """(count, 4) float32 boxes (x, y, width, height) of the largest face with MIN_CONFIDENCE
    of each image among MTCNN's rows [image, x1, y1, x2, y2, confidence]; zeros for none. The
    package's rounding (its JSON boxes: corner, width and height each rounded to whole pixels)
    and its order (the first of equal areas) decide, as when its JSON was read."""
    boxes = np.zeros((count, 4), np.float32)
    confident = found[found[:, 5] >= MIN_CONFIDENCE]
    left, top = confident[:, 1], confident[:, 2]
    rounded = np.stack([left, top, confident[:, 3] - left, confident[:, 4] - top], axis=1)
    rounded = rounded.round().astype(np.float32)
    areas = rounded[:, 2] * rounded[:, 3]
    for index in np.unique(confident[:, 0]).astype(int):
        rows = np.flatnonzero(confident[:, 0] == index)
        boxes[index] = rounded[rows[np.argmax(areas[rows])]]
    return boxes


def _search_image(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image at DRAWN_SEARCH_SIZE (uint8 RGB) and the factor back to its own size."""
    import cv2

    image = np.asarray(image, np.uint8)
    scale = max(1.0, image.shape[0] / DRAWN_SEARCH_SIZE)
    if scale > 1:
        image = cv2.resize(image, (DRAWN_SEARCH_SIZE, DRAWN_SEARCH_SIZE),
                           interpolation=cv2.INTER_AREA)
    return image, scale


def figure_on_plain_background(image: np.ndarray) -> np.ndarray:
    """The box (x, y, width, height) of the largest roundish figure on a plain background in a
    uint8 RGB image; all zeros where the background is not plain or no such figure stands out."""
    figures = figures_on_plain_background(image)
    return figures[0] if len(figures) else np.zeros(4, np.float32)


def figures_on_plain_background(image: np.ndarray) -> np.ndarray:
    """(k, 4) boxes (x, y, width, height), largest first, of the roundish figures on a plain
    background in a uint8 RGB image: none where the background is not plain or no such figure
    stands out; one for a single figure; several side by side (a sticker sheet), apart or
    touching, each at least DRAWN_SEVERAL_SIMILAR of the largest's size. A single figure is
    looked for with a line drawing's broken outline closed, and figures that touch are parted
    by erosion (DRAWN_SPLIT_RADII)."""
    import cv2

    small, scale = _search_image(image)
    border = np.concatenate([small[:3].reshape(-1, 3), small[-3:].reshape(-1, 3),
                             small[:, :3].reshape(-1, 3), small[:, -3:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    border_distance = np.abs(border.astype(np.int16) - background).max(axis=1)
    if np.mean(border_distance < DRAWN_TOLERANCE) < DRAWN_BORDER_SHARE:
        return np.zeros((0, 4), np.float32)
    drawn = (np.abs(small.astype(np.int16) - background).max(axis=2)
             > 2 * DRAWN_TOLERANCE).astype(np.uint8)
    apart = _holes_filled(drawn)
    pieces = _roundish_boxes(apart)
    several = _several(pieces, apart)
    if not several:  # one figure, or one drawn in broken lines: close them
        closed = cv2.morphologyEx(apart, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        pieces = _roundish_boxes(_holes_filled(closed)) or pieces
        for radius in DRAWN_SPLIT_RADII:  # unless it is several that touch
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
            # holes filled after: the gap that touching discs enclose is no hole in either
            parted = _roundish_boxes(_holes_filled(cv2.erode(drawn, disc)), grown_by=radius)
            if _several(parted, apart):
                pieces, several = parted, True
                break
    if several:
        largest = pieces[0][2] * pieces[0][3]
        pieces = [box for box in pieces if box[2] * box[3] >= DRAWN_SEVERAL_SIMILAR * largest]
    else:
        pieces = pieces[:1]
    return np.asarray(pieces, np.float32).reshape(-1, 4) * scale


def _several(pieces: list[np.ndarray], figures: np.ndarray) -> bool:
    """Whether roundish pieces (largest first) are several figures side by side, as on a sticker
    sheet: at least two, the second at least DRAWN_SEVERAL_SIMILAR of the first's size, and
    together, as discs, DRAWN_SEVERAL_COVER of the figures' mask (a face's eyes, or a highlight
    that breaks one face in two, are not)."""
    if len(pieces) < 2:
        return False
    discs = [np.pi / 4 * width * height for _, _, width, height in pieces]
    return (discs[1] >= DRAWN_SEVERAL_SIMILAR * discs[0]
            and sum(discs) >= DRAWN_SEVERAL_COVER * figures.sum())


def _holes_filled(figure: np.ndarray) -> np.ndarray:
    """A figure mask with every patch of background that does not reach the image's edge filled
    in: what a line drawing's outline, or a face's rim around white eyes and teeth, encloses."""
    import cv2

    _, regions = cv2.connectedComponents((1 - figure).astype(np.uint8), connectivity=4)
    outside = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0],
                                        regions[:, -1]]))
    return np.where((figure == 0) & ~np.isin(regions, outside), 1, figure).astype(np.uint8)


def _roundish_boxes(figure: np.ndarray, grown_by: int = 0) -> list[np.ndarray]:
    """The boxes (x, y, width, height), largest first, of the connected figures in a square mask
    that are roundish and fill their box like a disc (DRAWN_SHAPE_*), each grown by `grown_by`
    pixels on each side (what an erosion took off)."""
    import cv2

    side = figure.shape[0]
    _, _, stats, _ = cv2.connectedComponentsWithStats(figure, connectivity=8)
    boxes = []
    for x, y, width, height, area in sorted(stats[1:], key=lambda row: -row[4]):
        # an eroded disc is a disc: its shape is judged as it is, its size as it was
        grown_area = area * ((width + 2 * grown_by) * (height + 2 * grown_by)) / (width * height)
        if (DRAWN_SHAPE_AREA[0] <= grown_area / side ** 2 <= DRAWN_SHAPE_AREA[1]
                and DRAWN_SHAPE_ASPECT[0] < width / height < DRAWN_SHAPE_ASPECT[1]
                and DRAWN_SHAPE_FILL < area / (width * height)):
            boxes.append(np.asarray([x - grown_by, y - grown_by, width + 2 * grown_by,
                                     height + 2 * grown_by], np.float32))
    return boxes


def flat_round_outline(image: np.ndarray) -> np.ndarray:
    """The box (x, y, width, height) of the largest round outline with a flat-coloured inside
    in a uint8 RGB image; all zeros where there is none."""
    import cv2

    small, scale = _search_image(image)
    side = small.shape[0]
    grey = cv2.medianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), 5)
    circles = cv2.HoughCircles(grey, cv2.HOUGH_GRADIENT, dp=1.5, minDist=max(1, side // 5),
                               param1=100, param2=60, minRadius=round(DRAWN_RADII[0] * side),
                               maxRadius=round(DRAWN_RADII[1] * side))
    if circles is None:
        return np.zeros(4, np.float32)
    x, y, radius = max(circles[0], key=lambda circle: circle[2])
    rows, columns = np.ogrid[:side, :small.shape[1]]
    inside = small[(columns - x) ** 2 + (rows - y) ** 2 < (0.9 * radius) ** 2].astype(np.int16)
    median = np.median(inside, axis=0)
    flat = np.mean(np.abs(inside - median).max(axis=1) < DRAWN_TOLERANCE) if len(inside) else 0
    if flat <= DRAWN_FLATNESS:
        return np.zeros(4, np.float32)
    return np.asarray([x - radius, y - radius, 2 * radius, 2 * radius], np.float32) * scale


def drawn_faces(image: np.ndarray, figures: np.ndarray | None = None) -> np.ndarray:
    """(k, 4) boxes (x, y, width, height), largest first, of the drawn faces in a uint8 RGB
    image: every face of a sticker sheet (at most MOST_DRAWN_FACES), one drawn face, or none.
    `figures`: the image's figures_on_plain_background, where already found."""
    if figures is None:
        figures = figures_on_plain_background(image)
    boxes = figures[:MOST_DRAWN_FACES]
    if len(boxes):
        return boxes
    box = flat_round_outline(image)
    return box[None] if box[2] > 0 else np.zeros((0, 4), np.float32)


def drawn_face(image: np.ndarray) -> np.ndarray:
    """The box (x, y, width, height) of the largest drawn face in a uint8 RGB image; zeros for
    none."""
    boxes = drawn_faces(image)
    return boxes[0] if len(boxes) else np.zeros(4, np.float32)


def crop_faces(pixels: np.ndarray, boxes: np.ndarray,
               margins: np.ndarray | float = MARGIN) -> np.ndarray:
    """(n, FACE_SIZE, FACE_SIZE, 1) uint8 grey crops, square around each box with its margin
    (a share of the box's longer side on each side; edges repeated where the square leaves the
    image); blank where the box is empty."""
    import cv2

    margins = np.broadcast_to(np.asarray(margins, np.float32), (len(pixels),))
    crops = np.zeros((len(pixels), FACE_SIZE, FACE_SIZE, 1), np.uint8)
    for index, (x, y, width, height) in enumerate(boxes):
        if width <= 0 or height <= 0:
            continue
        side = max(width, height) * (1 + 2 * margins[index])
        zoom = FACE_SIZE / side
        centre_x, centre_y = x + width / 2, y + height / 2
        warp = np.float32([[zoom, 0, FACE_SIZE / 2 - centre_x * zoom],
                           [0, zoom, FACE_SIZE / 2 - centre_y * zoom]])
        crop = cv2.warpAffine(np.asarray(pixels[index], np.uint8), warp, (FACE_SIZE, FACE_SIZE),
                              flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        crops[index, :, :, 0] = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return crops


def face_inputs(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """A face-reading model's face inputs for decoded RGB pixels, one row per image, its largest
    face: the crops (n, 64, 64, 1) uint8, and (n, 1) float32 flags for a photo's face and for a
    drawn face. (What a model is fitted on; what it is called with is `model_batch`.)"""
    return _face_rows(np.asarray(pixels).astype(np.uint8), every_drawn=False)[0]


def _face_rows(pixels: np.ndarray, every_drawn: bool) -> tuple[dict[str, np.ndarray],
                                                               np.ndarray]:
    """The face inputs (as face_inputs) and the image of each row: one row per image, or with
    `every_drawn`, one per drawn face of an image that has several (a sticker sheet)."""
    owners, boxes, found, drawn = [], [np.zeros((0, 4), np.float32)], [], []
    for index, photo_box in enumerate(photo_faces(pixels)):
        figures = None
        if photo_box[2] > 0:  # unless the image is a sticker sheet: MTCNN finds glossy emoji
            figures = figures_on_plain_background(pixels[index])
        is_found = photo_box[2] > 0 and len(figures) < 2
        faces = photo_box[None] if is_found else drawn_faces(pixels[index], figures)
        is_drawn = not is_found and len(faces) > 0
        faces = (faces if every_drawn else faces[:1]) if len(faces) else np.zeros((1, 4))
        owners += [index] * len(faces)
        boxes.append(np.asarray(faces, np.float32))
        found += [is_found] * len(faces)
        drawn += [is_drawn] * len(faces)
    owners, drawn = np.asarray(owners, np.int64), np.asarray(drawn, bool)
    crops = crop_faces(_rows_of(pixels, owners), np.concatenate(boxes),
                       np.where(drawn, DRAWN_MARGIN, MARGIN))
    return {FACE_INPUT: crops, FOUND_INPUT: np.asarray(found, np.float32).reshape(-1, 1),
            DRAWN_INPUT: drawn.astype(np.float32).reshape(-1, 1)}, owners


def _rows_of(images: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Each row's image: `images` itself where every image has one row (no copy of a batch of
    photos), else a copy repeating each image for each of its rows."""
    return images if len(owners) == len(images) else images[owners]


@dataclass(frozen=True)
class ModelBatch:
    """What a model is called with for `count` images: `inputs`, a row per face read (an image
    with several drawn faces, a sticker sheet, has one per face, each beside the whole image),
    and `owners`, the image of each row. `per_image` folds outputs back to one per image: the
    mean over its rows, so a sheet is read by all its faces, not by its largest alone."""
    inputs: dict | np.ndarray
    owners: np.ndarray
    count: int

    def per_image(self, values) -> np.ndarray:
        values = np.asarray(values)
        if len(values) == self.count:
            return values  # a row per image: nothing to fold
        sums = np.zeros((self.count, *values.shape[1:]), np.float64)
        np.add.at(sums, self.owners, values)
        rows = np.bincount(self.owners, minlength=self.count)
        return (sums / rows.reshape(-1, *[1] * (values.ndim - 1))).astype(values.dtype)

    def outputs(self, run) -> dict[str, np.ndarray]:
        """Every output of `run` (named inputs -> {name: array}) per image, `run` called on at
        most as many rows as there are images (or MOST_DRAWN_FACES): a batch of sheets takes
        no more memory at once than a batch of photos."""
        rows = len(self.owners)
        step = max(self.count, MOST_DRAWN_FACES)
        if rows <= step:
            return {name: self.per_image(value) for name, value in run(self.inputs).items()}
        parts = [run({name: value[start:start + step] for name, value in self.inputs.items()})
                 for start in range(0, rows, step)]  # several rows per image: named inputs
        return {name: self.per_image(np.concatenate([part[name] for part in parts]))
                for name in parts[0]}


def model_batch(model, images: np.ndarray) -> ModelBatch:
    """What `model` is called with for these decoded images: the images alone, or with their
    face inputs for a model that reads faces (the names it has: a model made before drawn faces
    were told apart takes any face as found)."""
    count = len(images)
    if not reads_faces(model):
        return ModelBatch(images, np.arange(count), count)
    faces, owners = _face_rows(np.asarray(images).astype(np.uint8), every_drawn=True)
    names = {tensor.name for tensor in model.inputs}
    if DRAWN_INPUT not in names:
        faces[FOUND_INPUT] = faces[FOUND_INPUT] + faces.pop(DRAWN_INPUT)
    faces[FACE_INPUT] = faces[FACE_INPUT].astype(np.float32)
    return ModelBatch({IMAGE_INPUT: _rows_of(images, owners), **faces}, owners, count)
