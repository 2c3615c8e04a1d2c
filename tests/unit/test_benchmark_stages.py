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
