"""Hand-written code against the library that could replace it, measured side by side.

Kept only where the figures say it wins:
- the JPEG frame-header walk (trainer.images.jpeg_size) against Pillow's lazy
  `Image.open(...).size`, on the JPEGs a job meets (256x256, 1024x768, with and without EXIF);
- trainer.evaluate's metrics and trainer.dataset's stratified split against scikit-learn's
  (`precision_recall_fscore_support`, `confusion_matrix`, `train_test_split(stratify=...)`),
  when scikit-learn is importable (it is not a dependency: pass its folder with --sklearn-path).

Prints JSON: per-call medians in microseconds, the ratios, whether both agree, and what
importing scikit-learn costs.

    .venv/bin/python -m benchmarks.kept_code [--sklearn-path /tmp/sklearn-target]
"""

import argparse
import io
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from trainer.evaluate import classification_metrics
from trainer.images import jpeg_size


def per_call_us(function, argument, repeats: int = 7, number: int = 2000) -> float:
    """Median over `repeats` runs of `number` calls, in microseconds per call."""
    function(argument)  # warm: Pillow initialises its plugins on first use
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(number):
            function(argument)
        timings.append((time.perf_counter() - started) / number * 1e6)
    return statistics.median(timings)


def jpeg(width: int, height: int, exif: bool) -> bytes:
    rng = np.random.default_rng(width)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    extra = {}
    if exif:  # a camera's APP1 segment before the frame header: more for the walk to skip
        tags = Image.Exif()
        tags[0x0112], tags[0x010F] = 6, "camera " * 200  # orientation, maker
        extra["exif"] = tags.tobytes()
    image.save(buffer, format="JPEG", quality=90, **extra)
    return buffer.getvalue()


def pillow_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def header_reads() -> dict:
    results = {}
    for width, height, exif in ((256, 256, False), (1024, 768, False), (1024, 768, True)):
        data = jpeg(width, height, exif)
        walk, pillow = per_call_us(jpeg_size, data), per_call_us(pillow_size, data)
        results[f"{width}x{height}{' exif' if exif else ''}"] = {
            "agree": jpeg_size(data) == pillow_size(data), "walk_us": round(walk, 2),
            "pillow_us": round(pillow, 2), "pillow_over_walk": round(pillow / walk, 1)}
    return results


def metrics_against_sklearn(sklearn_path: str | None) -> dict:
    if sklearn_path:
        sys.path.insert(0, sklearn_path)
    try:
        from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
        from sklearn.model_selection import train_test_split
    except ImportError:
        return {"sklearn": "not importable: pass --sklearn-path"}
    import sklearn

    rng = np.random.default_rng(0)
    results = {"sklearn_version": sklearn.__version__}
    for count in (157, 100_000):
        true = rng.integers(0, 2, count)
        probabilities = rng.random(count)
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
        ours = classification_metrics(true, probabilities, ["happy", "sad"])
        predicted = probabilities.argmax(1)

        def theirs(_):
            precision, recall, f1, support = precision_recall_fscore_support(
                true, predicted, zero_division=0)
            return precision, recall, f1, support, confusion_matrix(true, predicted)

        precision, recall, f1, _, matrix = theirs(None)
        agree = (matrix.tolist() == ours["confusion_matrix"]
                 and np.allclose([precision[1], recall[1], f1[1]],
                                 [ours["precision"], ours["recall"], ours["f1"]]))
        number = 200 if count < 1000 else 20
        ours_us = per_call_us(lambda _: classification_metrics(true, probabilities,
                                                               ["happy", "sad"]), None,
                              number=number)
        theirs_us = per_call_us(theirs, None, number=number)
        results[f"metrics_{count}"] = {"agree": bool(agree), "ours_us": round(ours_us, 1),
                                       "sklearn_us": round(theirs_us, 1),
                                       "sklearn_over_ours": round(theirs_us / ours_us, 1)}
    labels = np.repeat([0, 1], [150, 151])
    split = train_test_split(np.arange(len(labels)), test_size=0.1, stratify=labels,
                             random_state=0)
    results["stratified_split_301"] = {"sklearn_test_per_class": np.bincount(
        labels[split[1]]).tolist()}
    code = f"import sys, time; sys.path.insert(0, {sklearn_path!r}); t = time.perf_counter(); " \
           "import sklearn.metrics, sklearn.model_selection; " \
           "print(round((time.perf_counter() - t) * 1000))"
    results["sklearn_import_ms"] = int(subprocess.run([sys.executable, "-c", code],
                                                      capture_output=True, text=True,
                                                      check=True).stdout)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sklearn-path", help="a folder holding scikit-learn and SciPy")
    args = parser.parse_args(argv)
    print(json.dumps({"jpeg_header": header_reads(),
                      "metrics": metrics_against_sklearn(args.sklearn_path)}, indent=2))


if __name__ == "__main__":
    main()
