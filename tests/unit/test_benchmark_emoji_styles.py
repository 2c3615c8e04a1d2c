"""benchmarks.emoji_styles: every code point of both classes found (U+263A and U+2639 under
their emoji-selector names too), each on two backgrounds at two scales, composited by alpha,
and the package's folder only read."""

import cv2
import numpy as np


def test_each_emoji_is_written_on_two_backgrounds_at_two_scales(tmp_path):
    from benchmarks.emoji_styles import HAPPY, SAD, SIZE, main

    source = tmp_path / "package" / "64"
    source.mkdir(parents=True)
    glyph = np.zeros((64, 64, 4), np.uint8)
    glyph[16:48, 16:48] = (0, 0, 255, 255)  # an opaque red square on a transparent ground
    for point in HAPPY + SAD:
        name = f"{point.lower()}-fe0f" if point in ("263A", "2639") else point.lower()
        cv2.imwrite(str(source / f"{name}.png"), glyph)
    before = {path: path.read_bytes() for path in source.iterdir()}

    main(["apple-64", str(source), str(tmp_path / "out")])
    for label, points in (("happy", HAPPY), ("sad", SAD)):
        written = sorted(path.name for path in (tmp_path / "out" / label).iterdir())
        assert written == sorted(f"apple-64__u{point}_b{b}_s{s}.png" for point in points
                                 for b in (0, 1) for s in (0, 1))
    image = cv2.imread(str(tmp_path / "out" / "happy" / "apple-64__u1F600_b0_s0.png"))
    assert image.shape == (SIZE, SIZE, 3)
    assert tuple(image[SIZE // 2, SIZE // 2]) == (0, 0, 255)  # the glyph where it is opaque
    assert tuple(image[2, 2]) == (255, 255, 255)  # the white ground where it is transparent
    gradient = cv2.imread(str(tmp_path / "out" / "sad" / "apple-64__u2639_b1_s1.png"))
    assert tuple(gradient[2, 2]) != (255, 255, 255)
    assert before == {path: path.read_bytes() for path in source.iterdir()}


def test_an_iconify_set_gives_each_code_point_its_icon_by_cldr_name(tmp_path, monkeypatch):
    """Icons are found by the emoji's CLDR name, through an alias, or by the older "cat-face"
    name; each is rasterised from its own SVG body in the set's view box. (rsvg-convert, from
    Debian's librsvg2-bin, is not among the tests' dependencies: the rasteriser is replaced by
    one that reads back which icon it was given.)"""
    import json

    from benchmarks import emoji_styles

    icons = {name: {"body": f'<path id="{point}"/>'} for point, name
             in emoji_styles.CLDR_NAMES.items()}
    icons["grinning-cat-face"] = icons.pop("grinning-cat")  # an older name for U+1F63A
    icons["beaming"] = icons.pop("beaming-face-with-smiling-eyes")
    source = tmp_path / "icons.json"
    source.write_text(json.dumps({"icons": icons, "width": 36, "height": 36, "aliases": {
        "beaming-face-with-smiling-eyes": {"parent": "beaming"}}}))
    drawn = []

    def rasterise(svg_path):
        svg = svg_path.read_text()
        assert 'viewBox="0 0 36 36"' in svg
        drawn.append(svg.split('id="')[1].split('"')[0])
        glyph = np.zeros((64, 64, 4), np.uint8)
        glyph[..., 3] = 255
        return glyph

    monkeypatch.setattr(emoji_styles, "read_rgba", rasterise)
    emoji_styles.main(["iconify", str(source), str(tmp_path / "out"), "--name", "some-set"])
    assert drawn == emoji_styles.HAPPY + emoji_styles.SAD
    assert len(list((tmp_path / "out" / "happy").glob("some-set__u*_b*_s*.png"))) == 4 * len(
        emoji_styles.HAPPY)
