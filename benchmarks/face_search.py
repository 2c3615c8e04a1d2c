"""What the face search costs an image, side by side in one process: trainer.faces.photo_faces
(the package's networks run by trainer.face_detector) against the `mtcnn` package's own
`detect_faces` as photo_faces called it before, on the same decoded images in the worker's
chunks, with one TensorFlow thread as a worker process has; and whether they agree (the same
images with a face, the largest box difference). The drawn-face search is timed too.

    PYTHONPATH=. .venv/bin/python -m benchmarks.face_search FOLDER [FOLDER ...]
        [--image-size 260] [--repeats 5]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

CHUNK = 16  # the worker's model call (worker.classify.INFERENCE_CHUNK)


def package_photo_faces(pixels: np.ndarray) -> np.ndarray:
    """photo_faces as it was before trainer.face_detector: the package's `detect_faces`."""
    import cv2

    from trainer.faces import (DETECTION_BATCH, DETECTION_SIZE, MIN_CONFIDENCE,
                               MIN_FACE_PIXELS)

    boxes = np.zeros((len(pixels), 4), np.float32)
    scale = pixels.shape[1] / DETECTION_SIZE
    small = [cv2.resize(image, (DETECTION_SIZE, DETECTION_SIZE), interpolation=cv2.INTER_AREA)
             for image in pixels]
    for start in range(0, len(small), DETECTION_BATCH):
        chunk = small[start:start + DETECTION_BATCH]
        found = package_detector().detect_faces(chunk if len(chunk) > 1 else chunk[0],
                                                min_face_size=MIN_FACE_PIXELS)
        for offset, faces in enumerate(found if len(chunk) > 1 else [found]):
            faces = [face for face in faces if face["confidence"] >= MIN_CONFIDENCE]
            if faces:
                largest = max(faces, key=lambda face: face["box"][2] * face["box"][3])
                boxes[start + offset] = np.asarray(largest["box"], np.float32) * scale
    return boxes


_package_detector = []


def package_detector():
    if not _package_detector:
        from mtcnn import MTCNN

        _package_detector.append(MTCNN(device="CPU:0"))
    return _package_detector[0]


def decoded(folders: list[str], image_size: int) -> np.ndarray:
    """Every readable image under the folders, decoded as the model reads it."""
    from trainer.images import ImageError, decode_pixels

    images = []
    for folder in folders:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            try:
                images.append(decode_pixels(path.read_bytes(), image_size))
            except ImageError:
                pass
    return np.stack(images)


def timed(search, pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The boxes, and the wall and the CPU (this process's, every thread) ms an image of one
    pass over all chunks: on a shared machine the CPU time is the steadier of the two."""
    started, cpu_started = time.perf_counter(), time.process_time()
    boxes = np.concatenate([search(pixels[i:i + CHUNK]) for i in range(0, len(pixels), CHUNK)])
    return (boxes, (time.perf_counter() - started) * 1000 / len(pixels),
            (time.process_time() - cpu_started) * 1000 / len(pixels))


def compare(pixels: np.ndarray, repeats: int) -> dict:
    from trainer.faces import drawn_face, photo_faces

    photo_faces(pixels[:CHUNK])  # trace and warm both before timing
    package_photo_faces(pixels[:CHUNK])
    result = {"images": len(pixels)}
    runs, cpu = {}, {}
    for _ in range(repeats):  # alternate, so both see the same machine load
        for name, search in (("package", package_photo_faces), ("ours", photo_faces)):
            boxes, ms, cpu_ms = timed(search, pixels)
            runs.setdefault(name, []).append(ms)
            cpu.setdefault(name, []).append(cpu_ms)
            result[f"{name}_boxes"] = boxes
    before, after = result.pop("package_boxes"), result.pop("ours_boxes")
    found_before, found_after = before[:, 2] > 0, after[:, 2] > 0
    both = found_before & found_after
    result.update({
        "package_ms_per_image": round(statistics.median(runs["package"]), 2),
        "ours_ms_per_image": round(statistics.median(runs["ours"]), 2),
        "package_cpu_ms_per_image": round(statistics.median(cpu["package"]), 2),
        "ours_cpu_ms_per_image": round(statistics.median(cpu["ours"]), 2),
        "package_runs": [round(ms, 2) for ms in runs["package"]],
        "ours_runs": [round(ms, 2) for ms in runs["ours"]],
        "faces_before": int(found_before.sum()), "faces_after": int(found_after.sum()),
        "found_differs": int((found_before != found_after).sum()),
        "max_box_difference_px": float(np.abs(before[both] - after[both]).max(initial=0)),
    })
    started = time.perf_counter()
    for image in pixels:
        drawn_face(image)
    result["drawn_face_ms_per_image"] = round((time.perf_counter() - started) * 1000
                                              / len(pixels), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--image-size", type=int, default=260)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
    arguments = parser.parse_args()
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(1)  # as worker.classify.configure_threads
    tf.config.threading.set_intra_op_parallelism_threads(arguments.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for folder in arguments.folders:
        pixels = decoded([folder], arguments.image_size)
        print(json.dumps({"folder": folder, **compare(pixels, arguments.repeats)}), flush=True)


if __name__ == "__main__":
    main()
