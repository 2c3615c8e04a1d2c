"""The reduced-precision check: a precision whose labels move is refused with its figures, one
that keeps labels and accuracy is allowed, and a CPU without the hardware does not offer it."""

import logging

import numpy as np
import pytest

from trainer.conversion import tensorflow_runner
from trainer.precision import (ACCURACY_DROP_ALLOWED, AGREEMENT_NEEDED, check_reduced_precision,
                               judge)

SIZE = 32


def test_the_thresholds_are_labels_agreeing_and_accuracy_held():
    reference = np.tile([[0.9, 0.1]], (1000, 1))
    labels = np.zeros(1000, int)
    assert judge("bf16", reference, reference, labels).passed
    few = reference.copy()
    few[:5] = [0.1, 0.9]  # 99.5% agree, but accuracy drops by exactly half a point
    verdict = judge("bf16", reference, few, labels)
    assert verdict.label_agreement == AGREEMENT_NEEDED
    assert verdict.accuracy_fp32 - verdict.accuracy == pytest.approx(ACCURACY_DROP_ALLOWED)
    assert verdict.passed
    few[5] = [0.1, 0.9]
    assert not judge("bf16", reference, few, labels).passed
    assert not judge("bf16", reference, np.full_like(reference, np.nan), labels).passed


def test_a_candidate_whose_labels_change_is_refused_with_its_figures(caplog):
    """The candidate is the same model with its head's bias shifted: its labels move."""
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(11)
    model = build_model("baseline", SIZE, 2)
    perturbed = keras.models.clone_model(model)
    perturbed.set_weights(model.get_weights())
    head = perturbed.get_layer("class_probabilities")
    kernel, bias = head.get_weights()
    images = np.random.default_rng(0).integers(0, 256, (60, SIZE, SIZE, 3), np.uint8)
    reference = tensorflow_runner(model)
    labels = (reference({"image": images})["class_probabilities"].ravel() > 0.5).astype(int)
    logits = np.log(reference({"image": images})["class_probabilities"].ravel())
    head.set_weights([kernel, bias + (np.median(logits) - logits.max()) - 0.1])
    candidates = {"bf16": tensorflow_runner(perturbed)}

    with caplog.at_level(logging.INFO, logger="trainer.precision"):
        record = check_reduced_precision(model, candidates, reference, images, labels, 2,
                                         flags={"avx512_bf16"})
    verdict = record["bf16"]
    assert not verdict["passed"]
    assert verdict["label_agreement"] < AGREEMENT_NEEDED and verdict["images"] == 60 + 16
    assert verdict["accuracy_fp32"] == 1.0 and verdict["accuracy"] < 1.0
    refusal = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusal) == 1 and "of labels agree with fp32" in refusal[0]

    same = check_reduced_precision(model, {"bf16": reference}, reference, images, labels, 2,
                                   flags={"amx_bf16"})
    assert same["bf16"]["passed"] and same["bf16"]["label_agreement"] == 1.0
    absent = check_reduced_precision(model, candidates, reference, images, labels, 2,
                                     flags={"avx2", "fma"})
    assert not absent["bf16"]["passed"] and "not a candidate" in absent["bf16"]["why"]


def test_fp32_parity_is_judged_on_the_test_images_every_output_within_its_tolerance():
    """Registration checks an fp32 runtime on the version's held-out images (a face-reading
    model answers the worker's probes all alike); one that moves a probability by more than the
    tolerance, or cannot run, is refused, and then a worker is offered no OpenVINO at all."""
    import keras

    from trainer.model import build_model
    from trainer.precision import PROBABILITY_TOLERANCE, check_fp32_parity
    from worker.engine import openvino_candidates

    keras.utils.set_random_seed(11)
    model = build_model("baseline", SIZE, 2)
    images = np.random.default_rng(1).integers(0, 256, (12, SIZE, SIZE, 3), np.uint8)
    reference = tensorflow_runner(model)

    def shifted(inputs):
        return {name: value + 3 * PROBABILITY_TOLERANCE
                for name, value in reference(inputs).items()}

    def broken(inputs):
        raise RuntimeError("no kernel for this layer")

    assert check_fp32_parity(model, reference, reference, images)["passed"]
    refused = check_fp32_parity(model, shifted, reference, images)
    assert not refused["passed"] and "12 test images" in refused["why"]
    assert not check_fp32_parity(model, broken, reference, images)["passed"]
    record = {"openvino": {"fp32_parity": refused,
                           "reduced_precision": {"bf16": {"passed": True}}}}
    assert openvino_candidates({}, record, flags={"avx512_bf16"}) == []
