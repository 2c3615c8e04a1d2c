"""The face in a photo, for models that read expressions: the largest face MTCNN finds in the
decoded image, cropped square with a margin, grey, at the expression network's input size.

Training and serving call `face_inputs` on the same decoded pixels (trainer.images), so the
crops a model was fitted on and the crops it is served cannot drift apart. A photo without a
face gets a blank crop and `face_found` 0; the model's head learns what that means.

MTCNN (the `mtcnn` package, MIT, its weights inside) runs on the decoded image shrunk to
DETECTION_SIZE pixels: faces smaller than MIN_FACE_PIXELS there are not looked for.
"""

from functools import lru_cache

import numpy as np

FACE_INPUT = "face"  # the model input names of a face-reading model
FOUND_INPUT = "face_found"
FACE_SIZE = 64  # the expression network's input: 64x64 grey
DETECTION_SIZE = 200
MIN_FACE_PIXELS = 20  # at DETECTION_SIZE: MTCNN's own default
MIN_CONFIDENCE = 0.9
MARGIN = 0.1  # of the face box's longer side, added on each side (the expression data's framing)
DETECTION_BATCH = 32


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
    return boxes


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
    return {"image": images, FACE_INPUT: faces.astype(np.float32), FOUND_INPUT: found}
