"""The names of a model's inputs, and their sizes: the contract between the architectures
(trainer.model), what a model is called with (trainer.faces.model_batch) and the runtimes that
feed it (trainer.conversion, worker.engine). Every model has the image; a face-reading model
also has its face crop, whether the crop is a photo's face, and whether it is a drawn one."""

IMAGE_INPUT = "image"  # (n, size, size, 3) RGB, as trainer.images decodes it
FACE_INPUT = "face"  # (n, FACE_SIZE, FACE_SIZE, 1) grey crop (trainer.faces)
FOUND_INPUT = "face_found"  # (n, 1): 1 where the crop is a face found in a photo
DRAWN_INPUT = "drawn_found"  # (n, 1): 1 where it is a drawn face (a smiley, an emoji)
FACE_SIZE = 64  # the expression network's input: 64x64 grey


def reads_faces(model) -> bool:
    """Whether a Keras model takes a face crop beside the image."""
    return any(tensor.name == FACE_INPUT for tensor in model.inputs)
