"""The one decode path: colour order, range, size, and a clear error for every bad file."""

import numpy as np
import pytest
from PIL import Image

from tests.helpers.images import encode, pil_bytes, png_header_only, solid_rgb
from trainer.formats import looks_like_image
from trainer.images import ImageError, decode_image, jpeg_size, read_header


def decoded_unit(data, image_size):
    """The model's input (float32 pixels in [0, 255]) in [0, 1], for thresholds that read easily."""
    return decode_image(data, image_size) / 255


def test_decodes_to_float_pixels_the_model_scales_itself():
    tensor = decode_image(encode(solid_rgb(40, 30, (255, 0, 0))), 16)
    assert tensor.dtype == np.float32 and tensor.max() == 255.0 and tensor.min() == 0.0


def test_decodes_to_rgb_in_unit_range():
    tensor = decoded_unit(encode(solid_rgb(40, 30, (255, 0, 0))), 16)
    assert tensor.shape == (16, 16, 3)
    # RGB, not OpenCV's BGR: the red channel is first (the tutorial's serving bug).
    assert tensor[..., 0].min() > 0.99 and tensor[..., 2].max() < 0.01


def test_reduced_jpeg_decode_for_large_images_keeps_colour():
    big = encode(solid_rgb(1024, 768, (10, 200, 30)), ".jpg")
    assert read_header(big) == ("JPEG", 1024, 768)
    tensor = decoded_unit(big, 64)
    assert tensor.shape == (64, 64, 3)
    assert np.allclose(tensor.mean(axis=(0, 1)), np.array([10, 200, 30]) / 255, atol=0.03)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK"])
def test_other_pixel_formats_decode_to_three_channels(mode):
    base = Image.new("RGB", (32, 24), (0, 0, 255))
    image = base.convert(mode) if mode != "I;16" else Image.new("I;16", (32, 24), 40000)
    data = pil_bytes(image, "JPEG" if mode == "CMYK" else "PNG")
    tensor = decoded_unit(data, 8)
    assert tensor.shape == (8, 8, 3) and 0 <= tensor.min() and tensor.max() <= 1


def test_exif_orientation_is_applied():
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 255, 255)  # left half white, landscape
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    tensor = decoded_unit(pil_bytes(image, "JPEG", exif=exif, quality=95), 20)
    # After rotation the white half is on top.
    assert tensor[:8].mean() > 0.9 and tensor[-8:].mean() < 0.1


def test_gif_webp_bmp_decode():
    image = Image.new("RGB", (30, 30), (0, 255, 0))
    for format in ("GIF", "WEBP", "BMP", "TIFF"):
        tensor = decoded_unit(pil_bytes(image, format), 10)
        assert tensor[..., 1].mean() > 0.9, format


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"hello, I am text named photo.jpg\n", "not a recognised image"),
    (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
])
def test_non_images_get_clear_errors(data, message):
    with pytest.raises(ImageError, match=message):
        decoded_unit(data, 16)


def test_decompression_bomb_refused_from_header():
    with pytest.raises(ImageError, match="30000x30000|too large"):
        decoded_unit(png_header_only(30000, 30000), 16)
    with pytest.raises(ImageError):
        decoded_unit(png_header_only(200000, 200000), 16)


def test_truncated_files_are_errors_or_decode():
    for data in (encode(solid_rgb(64, 64), ".png"), encode(solid_rgb(64, 64), ".jpg")):
        truncated = data[: len(data) // 3]
        try:
            tensor = decoded_unit(truncated, 16)
        except ImageError as error:
            assert "corrupt" in str(error) or "not a recognised" in str(error)
        else:
            assert tensor.shape == (16, 16, 3)


def test_looks_like_image_sniff():
    assert looks_like_image(encode(solid_rgb(4, 4), ".png")[:16])
    assert looks_like_image(encode(solid_rgb(4, 4), ".jpg")[:16])
    assert not looks_like_image(b"just some text")


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"quality": 30, "optimize": True},
                                     {"exif": b"Exif\x00\x00" + b"\x00" * 64},
                                     {"icc_profile": b"\x00" * 3000}])
def test_jpeg_size_from_the_frame_header_agrees_with_pillow(options):
    """The fast header walk finds the same size as Pillow, past EXIF, ICC and other segments."""
    import io

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8))
    data = pil_bytes(image, "JPEG", **options)
    assert jpeg_size(data) == Image.open(io.BytesIO(data)).size == (53, 37)
    assert read_header(data) == ("JPEG", 53, 37)


def test_jpeg_size_gives_up_on_a_broken_walk():
    data = pil_bytes(Image.new("RGB", (20, 10)), "JPEG")
    assert jpeg_size(data[:30]) is None  # cut before the frame header: Pillow decides
    assert jpeg_size(data[:2] + b"\x00" * 40) is None  # not a marker where one must be
