"""The pretrained backbone: the checkpoint reader accepts tensors and nothing else, and
EfficientNet-Lite saved and reloaded (safe mode) gives identical outputs.

The checkpoint fixtures are written here, opcode by opcode, in PyTorch's two layouts (the zip
archive and the older single stream), so the tests need neither PyTorch nor the weight packages.
"""

import pickle
import struct
import zipfile

import numpy as np
import pytest

from tests.helpers.models import reloaded_identical
from trainer.backbones.checkpoint import LEGACY_MAGIC, CheckpointError, load_tensors


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def tensor_dict_pickle(tensors: dict[str, tuple[str, np.ndarray]], legacy: bool) -> bytes:
    """An OrderedDict name -> tensor as torch.save pickles it: _rebuild_tensor_v2(storage,
    offset, size, stride, requires_grad, hooks), each storage a persistent reference by key."""
    body = b"\x80\x02" + _global("collections", "OrderedDict") + b")R("
    for name, (key, array) in tensors.items():
        reference = [_text("storage"), _global("torch", "FloatStorage"), _text(key),
                     _text("cpu"), _int(array.size)] + ([b"N"] if legacy else [])
        strides = [s // array.itemsize for s in array.strides]
        body += (_text(name) + _global("torch._utils", "_rebuild_tensor_v2")
                 + _tuple(_tuple(*reference) + b"Q", _int(0), _tuple(*map(_int, array.shape)),
                          _tuple(*map(_int, strides)), b"\x89",
                          _global("collections", "OrderedDict") + b")R")
                 + b"R")
    return body + b"u."


def write_legacy(path, tensors: dict[str, np.ndarray]) -> None:
    keyed = {name: (str(100 + index), array.astype("<f4"))
             for index, (name, array) in enumerate(tensors.items())}
    with open(path, "wb") as stream:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                            "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, stream, protocol=2)
        stream.write(tensor_dict_pickle(keyed, legacy=True))
        pickle.dump([key for key, _ in keyed.values()], stream, protocol=2)
        for key, array in keyed.values():
            stream.write(struct.pack("<q", array.size) + array.tobytes())


def write_zip(path, tensors: dict[str, np.ndarray]) -> None:
    keyed = {name: (str(index), array.astype("<f4"))
             for index, (name, array) in enumerate(tensors.items())}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", tensor_dict_pickle(keyed, legacy=False))
        archive.writestr("archive/byteorder", "little")
        for key, array in keyed.values():
            archive.writestr(f"archive/data/{key}", array.tobytes())


TENSORS = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
           "bn.running_var": np.array([0.5, 2.0], np.float32),
           "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}


@pytest.mark.parametrize("write", [write_legacy, write_zip])
def test_reads_the_tensors_it_was_given(tmp_path, write):
    path = tmp_path / "weights.pth"
    write(path, TENSORS)
    loaded = load_tensors(path)
    assert list(loaded) == list(TENSORS)
    for name, array in TENSORS.items():
        assert loaded[name].dtype == np.float32
        np.testing.assert_array_equal(loaded[name], array)


def test_reads_a_transposed_view_by_its_strides(tmp_path):
    stored = np.arange(6, dtype="<f4").reshape(2, 3)
    path = tmp_path / "weights.pth"
    with zipfile.ZipFile(path, "w") as archive:
        # (3, 2) with strides (1, 3) over the stored (2, 3)
        archive.writestr("archive/data.pkl", tensor_dict_pickle({"t": ("0", stored.T)},
                                                                legacy=False))
        archive.writestr("archive/data/0", stored.tobytes())
    np.testing.assert_array_equal(load_tensors(path)["t"], stored.T)


def _evil_pickles(marker) -> dict[str, bytes]:
    command = _text(f"touch {marker}")
    return {
        "os.system": b"\x80\x02" + _global("os", "system") + command + b"\x85R.",
        "builtins.eval": b"\x80\x02" + _global("builtins", "eval")
        + _text(f"open('{marker}', 'w')") + b"\x85R.",
        "subprocess in a tensor's place": b"\x80\x02" + _global("collections", "OrderedDict")
        + b")R(" + _text("w") + _global("subprocess", "call") + b"(" + command + b"\x85tR" + b"u.",
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "subprocess in a tensor's place"])
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_refuses_a_pickle_that_is_not_tensors_without_running_it(tmp_path, kind, layout):
    marker = tmp_path / "ran"
    payload = _evil_pickles(marker)[kind]
    path = tmp_path / "weights.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("archive/data.pkl", payload)
    else:
        with open(path, "wb") as stream:
            for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
                pickle.dump(header, stream, protocol=2)
            stream.write(payload)
    with pytest.raises(CheckpointError, match="not a tensor, refused"):
        load_tensors(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x80\x02J\x01\x00\x00\x00."])
def test_a_damaged_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_tensors(path)


def test_a_tensor_reaching_outside_its_storage_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", tensor_dict_pickle(
            {"t": ("0", np.zeros((4, 4), np.float32))}, legacy=False))
        archive.writestr("archive/data/0", np.zeros(4, "<f4").tobytes())  # 4 of 16 values
    with pytest.raises(CheckpointError):
        load_tensors(path)


# --- EfficientNet-Lite in Keras --------------------------------------------------------------

SIZE = 32  # the backbone runs at any size; 32 px keeps these tests quick


def test_every_backbone_layer_takes_its_checkpoint_tensor_transposed_for_keras():
    """The name mapping, on made-up tensors of PyTorch's shapes: each Keras kernel is its
    PyTorch tensor transposed, each batch normalisation its four vectors."""
    from trainer.backbones.efficientnet_lite import load_pretrained_weights, torch_names
    from trainer.model import build_pretrained

    model = build_pretrained(SIZE, 2, backbone="lite0", pretrained_weights=False)
    rng = np.random.default_rng(0)
    tensors = {}
    for layer_name, (torch_name, depthwise) in torch_names(model, "lite0").items():
        shapes = [w.shape for w in model.get_layer(layer_name).get_weights()]
        if len(shapes) == 4:
            for key, shape in zip(("weight", "bias", "running_mean", "running_var"), shapes):
                tensors[f"{torch_name}.{key}"] = rng.random(shape, dtype=np.float32)
        else:
            h, w, a, b = shapes[0]
            shape = (a, b, h, w) if depthwise else (b, a, h, w)
            tensors[f"{torch_name}.weight"] = rng.random(shape, dtype=np.float32)
    load_pretrained_weights(model, "lite0", tensors)
    kernel = model.get_layer("block3_expand_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, tensors["_blocks.3._expand_conv.weight"].transpose(2, 3, 1, 0))
    depthwise = model.get_layer("block3_depthwise").get_weights()[0]
    np.testing.assert_array_equal(depthwise,
                                  tensors["_blocks.3._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(model.get_layer("head_bn").get_weights()[3],
                                  tensors["_bn1.running_var"])


def test_the_packaged_checkpoint_fits_the_keras_graph():
    """The installed lite2 package's weights load into the graph, every shape checked."""
    from trainer.model import build_pretrained

    model = build_pretrained(SIZE, 2, backbone="lite2")
    assert np.abs(model.get_layer("stem_conv").get_weights()[0]).sum() > 0


@pytest.mark.parametrize("class_count", [2, 3])
def test_saved_and_reloaded_in_safe_mode_the_outputs_are_identical(tmp_path, class_count):
    import keras

    from trainer.model import build_pretrained
    from worker.engine import probe_images

    keras.utils.set_random_seed(0)
    model = build_pretrained(SIZE, class_count, backbone="lite0", pretrained_weights=False)
    pixels = probe_images(SIZE).astype(np.float32)
    model.get_layer("feature_standardisation").adapt(
        keras.Model(model.input, model.get_layer("backbone_pooling").output)(pixels))
    reloaded = reloaded_identical(model, pixels, tmp_path, class_count)
    assert reloaded.get_layer("backbone_normalisation").offset != 0  # its preprocessing inside
