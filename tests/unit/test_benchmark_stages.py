"""The throughput benchmark's physical limit counts a model's multiply-adds right, nested
models included (the default model's backbone is one)."""


def test_multiply_adds_of_convolutions_and_dense_layers():
    import keras

    from benchmarks.throughput.stages import multiply_adds

    inner_input = keras.Input((8, 8, 3))
    inner = keras.Model(inner_input, keras.layers.DepthwiseConv2D(3, padding="same")(
        keras.layers.Conv2D(4, 3, padding="same")(inner_input)))
    image = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inner(image)))
    model = keras.Model(image, outputs)
    convolution, depthwise, dense = 8 * 8 * 4 * 3 * 3 * 3, 8 * 8 * 4 * 3 * 3, 4 * 2
    assert multiply_adds(model) == convolution + depthwise + dense


def test_photos_are_copied_once_then_linked_under_distinct_names(tmp_path):
    """--photos: the shared sets are read, never linked or changed; a job of any size is made
    of hard links to one copy of each photo, every name distinct and keeping its extension."""
    from benchmarks.throughput.common import copy_photos, link_repeated

    shared = tmp_path / "shared"
    for relative in ("happy/a.jpg", "happy/b.PNG", "sad/c.webp", "sad/notes.txt", "sad/.d.jpg"):
        (shared / relative).parent.mkdir(parents=True, exist_ok=True)
        (shared / relative).write_bytes(relative.encode())
    photos = copy_photos([shared], tmp_path / "work" / "originals")
    assert sorted(path.read_bytes() for path in photos) == [b"happy/a.jpg", b"happy/b.PNG",
                                                            b"sad/c.webp"]
    source = link_repeated(photos, tmp_path / "work" / "job", 7)
    names = sorted(path.name for path in source.iterdir())
    assert len(names) == 7 and len({name.split(".")[0] for name in names}) == 7
    assert {path.suffix for path in source.iterdir()} == {".jpg", ".png", ".webp"}
    assert sorted(path.stat().st_nlink for path in photos) == [3, 3, 4]  # 1 + 7 links in turn
    assert all(path.stat().st_nlink == 1 for path in shared.rglob("*") if path.is_file())
