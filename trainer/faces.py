"""The face in a photo, for models that read expressions: the largest face MTCNN finds in the
decoded image, cropped square with a margin, grey, at the expression network's input size.

Training and serving call `face_inputs` on the same decoded pixels (trainer.images), so the
crops a model was fitted on and the crops it is served cannot drift apart. A photo without a
face gets a blank crop and `face_found` 0; the model's head learns what that means.

MTCNN (the `mtcnn` package, MIT, its weights inside) runs on the decoded image shrunk to
DETECTION_SIZE pixels: faces smaller than MIN_FACE_PIXELS there are not looked for.

Drawn faces (smileys, emoji) are not faces to a detector trained on photos. Where MTCNN finds
none, a drawn face is looked for: a round outline (a Hough circle) of at least DRAWN_RADII[0]
of the image, the inside of which is mostly one flat colour (DRAWN_FLATNESS; the round things
of photos are textured). Its crop is the inner DRAWN_CROP of the circle: the features, not the
outline, as a photo's face box holds the features, not the head.
"""

from functools import lru_cache

import numpy as np

IMAGE_INPUT = "image"  # the model input names: every model's image; a face-reading model's
FACE_INPUT = "face"  # face crop and whether there was a face
FOUND_INPUT = "face_found"
FACE_SIZE = 64  # the expression network's input: 64x64 grey
DETECTION_SIZE = 200
MIN_FACE_PIXELS = 20  # at DETECTION_SIZE: MTCNN's own default
MIN_CONFIDENCE = 0.9
MARGIN = 0.1  # of the face box's longer side, added on each side (the expression data's framing)
DETECTION_BATCH = 32
DRAWN_SEARCH_SIZE = 130  # the outline is looked for at this size: 8x cheaper than at 260 px,
# and fewer photos' round things pass (3 of 458 photos against 16; 200 of 200 drawings either way)
DRAWN_RADII = (0.15, 0.55)  # of the image's side
DRAWN_FLATNESS = 0.7  # the share of the inside within DRAWN_TOLERANCE of its median colour
DRAWN_TOLERANCE = 20  # per RGB channel, of 255
DRAWN_CROP = 0.8  # of the circle's diameter


def reads_faces(model) -> bool:
    """Whether a Keras model takes a face crop beside the image."""
    return any(tensor.name == FACE_INPUT for tensor in model.inputs)


@lru_cache(maxsize=1)
def _detector():
    """One MTCNN per process, made on first use (its three networks load from the package)."""
    from mtcnn import MTCNN

    return MTCNN(device="CPU:0")


def largest_faces(pixels: np.ndarray) -> np.ndarray:
    """(n, 4) float32 boxes (x, y, width, height) in `pixels`' coordinates of the largest
    confident face of each image; all zeros where there is none."""
    import cv2

    boxes = np.zeros((len(pixels), 4), np.float32)
    if not len(pixels):
        return boxes
    size = pixels.shape[1]
    scale = size / DETECTION_SIZE
    small = [cv2.resize(image, (DETECTION_SIZE, DETECTION_SIZE), interpolation=cv2.INTER_AREA)
             if size != DETECTION_SIZE else image for image in np.asarray(pixels, np.uint8)]
    for start in range(0, len(small), DETECTION_BATCH):
        chunk = small[start:start + DETECTION_BATCH]
        found = _detector().detect_faces(chunk if len(chunk) > 1 else chunk[0],
                                         min_face_size=MIN_FACE_PIXELS)
        if len(chunk) == 1:
            found = [found]
        for offset, faces in enumerate(found):
            faces = [face for face in faces if face["confidence"] >= MIN_CONFIDENCE]
            if faces:
                largest = max(faces, key=lambda face: face["box"][2] * face["box"][3])
                boxes[start + offset] = np.asarray(largest["box"], np.float32) * scale
            else:
                boxes[start + offset] = drawn_face(pixels[start + offset])
    return boxes


def drawn_face(image: np.ndarray) -> np.ndarray:
    """The box (x, y, width, height) of a drawn face in a uint8 RGB image: its largest round
    outline with a flat-coloured inside; all zeros where there is none."""
    import cv2

    image = np.asarray(image, np.uint8)
    scale = max(1.0, image.shape[0] / DRAWN_SEARCH_SIZE)
    if scale > 1:
        image = cv2.resize(image, (DRAWN_SEARCH_SIZE, DRAWN_SEARCH_SIZE),
                           interpolation=cv2.INTER_AREA)
    side = image.shape[0]
    grey = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 5)
    circles = cv2.HoughCircles(grey, cv2.HOUGH_GRADIENT, dp=1.5, minDist=max(1, side // 5),
                               param1=100, param2=60, minRadius=round(DRAWN_RADII[0] * side),
                               maxRadius=round(DRAWN_RADII[1] * side))
    if circles is None:
        return np.zeros(4, np.float32)
    x, y, radius = max(circles[0], key=lambda circle: circle[2])
    rows, columns = np.ogrid[:side, :image.shape[1]]
    inside = image[(columns - x) ** 2 + (rows - y) ** 2 < (0.9 * radius) ** 2].astype(np.int16)
    median = np.median(inside, axis=0)
    flat = np.mean(np.abs(inside - median).max(axis=1) < DRAWN_TOLERANCE) if len(inside) else 0
    if flat <= DRAWN_FLATNESS:
        return np.zeros(4, np.float32)
    crop = 2 * radius * DRAWN_CROP
    return np.asarray([x - crop / 2, y - crop / 2, crop, crop], np.float32) * scale


def crop_faces(pixels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, FACE_SIZE, FACE_SIZE, 1) uint8 grey crops, square around each box with MARGIN (edges
    repeated where the square leaves the image); blank where the box is empty."""
    import cv2

    crops = np.zeros((len(pixels), FACE_SIZE, FACE_SIZE, 1), np.uint8)
    for index, (x, y, width, height) in enumerate(boxes):
        if width <= 0 or height <= 0:
            continue
        side = max(width, height) * (1 + 2 * MARGIN)
        zoom = FACE_SIZE / side
        centre_x, centre_y = x + width / 2, y + height / 2
        warp = np.float32([[zoom, 0, FACE_SIZE / 2 - centre_x * zoom],
                           [0, zoom, FACE_SIZE / 2 - centre_y * zoom]])
        crop = cv2.warpAffine(np.asarray(pixels[index], np.uint8), warp, (FACE_SIZE, FACE_SIZE),
                              flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        crops[index, :, :, 0] = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return crops


def face_inputs(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face crops (n, 64, 64, 1) uint8, face found (n, 1) float32) of decoded RGB pixels."""
    boxes = largest_faces(pixels)
    found = (boxes[:, 2] > 0).astype(np.float32)[:, None]
    return crop_faces(pixels, boxes), found


def model_inputs(model, images: np.ndarray):
    """What `model` is called with for these decoded images: the images alone, or with their
    face crops for a model that reads faces."""
    if not reads_faces(model):
        return images
    faces, found = face_inputs(np.asarray(images).astype(np.uint8))
    return {IMAGE_INPUT: images, FACE_INPUT: faces.astype(np.float32), FOUND_INPUT: found}
