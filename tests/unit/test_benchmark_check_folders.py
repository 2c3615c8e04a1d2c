"""benchmarks.check_folders: sticker sheets of one class and style each, cut from the white
ground; a wild folder with every (style, code point) of the happy drawings once, the counts
asked for, the same files whatever the paths are written as; the sources only read."""

import cv2
import numpy as np
import pytest


POINTS = [f"1F6{index:02X}" for index in range(16)]  # enough for a 4x4 sheet


def emoji_folders(root, styles=("alpha", "beta"), points=POINTS):
    """Labelled folders of single emoji named as benchmarks.emoji_styles names them: a coloured
    disc on white (b0) and on grey (b1), at two scales."""
    folders = []
    for style in styles:
        for label, colour in (("happy", (0, 200, 255)), ("sad", (255, 100, 0))):
            (root / style / label).mkdir(parents=True)
            for point in points:
                for ground in (0, 1):
                    for scale in (0, 1):
                        image = np.full((64, 64, 3), 255 if ground == 0 else 128, np.uint8)
                        cv2.circle(image, (32, 32), 24 - 8 * scale, colour, -1)
                        name = f"{style}__u{point}_b{ground}_s{scale}.png"
                        cv2.imwrite(str(root / style / label / name), image)
        folders.append(root / style)
    return folders


def contents(folder):
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_sheets_hold_one_class_and_style_cut_from_white(tmp_path):
    from benchmarks.check_folders import SHEET_GAPS, SHEET_SIDES, SHEETS_PER_KIND, main

    drawn = emoji_folders(tmp_path / "in")
    before = contents(tmp_path / "in")
    main(["sheets", str(tmp_path / "sheets"), *map(str, drawn)])
    for label, colour in (("happy", (0, 200, 255)), ("sad", (255, 100, 0))):
        sheets = sorted((tmp_path / "sheets" / label).iterdir())
        assert len(sheets) == 2 * len(SHEET_SIDES) * len(SHEET_GAPS) * SHEETS_PER_KIND
        two_by_two = cv2.imread(str(tmp_path / "sheets" / label / "alpha__2x2_gap4_0.png"))
        # the disc fills its cell (cut from the white ground), the gap stays white
        assert tuple(two_by_two[4 + 61, 4 + 61]) == colour
        assert tuple(two_by_two[2, 2]) == (255, 255, 255)
    assert contents(tmp_path / "in") == before


def test_the_wild_folder_is_mostly_drawn_happy_and_photo_sad(tmp_path, monkeypatch):
    import benchmarks.check_folders as check_folders

    monkeypatch.setattr(check_folders, "WILD_HAPPY_DRAWN", 40)
    monkeypatch.setattr(check_folders, "WILD_HAPPY_PHOTOS", 2)
    monkeypatch.setattr(check_folders, "WILD_SAD_DRAWN", 3)
    monkeypatch.setattr(check_folders, "WILD_SAD_PHOTOS", 5)
    drawn = emoji_folders(tmp_path / "in")
    photos = tmp_path / "in" / "photos"
    for label in ("happy", "sad"):
        (photos / label).mkdir(parents=True)
        for index in range(6):
            cv2.imwrite(str(photos / label / f"photo{index}.jpg"),
                        np.full((32, 32, 3), 40 * index, np.uint8))
    before = contents(tmp_path / "in")
    check_folders.main(["wild", str(tmp_path / "wild"), "--photos", str(photos),
                        *map(str, drawn)])
    happy = sorted(path.name for path in (tmp_path / "wild" / "happy").iterdir())
    sad = sorted(path.name for path in (tmp_path / "wild" / "sad").iterdir())
    assert sum(name.startswith("photos__") for name in happy) == 2
    assert sum(name.startswith("photos__") for name in sad) == 5
    drawn_happy = [name for name in happy if not name.startswith("photos__")]
    assert len(drawn_happy) == 40 and len(set(drawn_happy)) == 40
    assert {name.split("__")[1] + name.split("__u")[1][:5] for name in drawn_happy} == {
        style + point for style in ("alpha", "beta") for point in POINTS}  # every one once
    assert len(sad) == 3 + 5
    assert contents(tmp_path / "in") == before

    # the same files whatever the paths are written as
    monkeypatch.chdir(tmp_path)
    check_folders.main(["wild", "again", "--photos", "in/photos", "in/alpha", "in/beta"])
    assert sorted(path.name for path in (tmp_path / "again" / "happy").iterdir()) == happy
    assert sorted(path.name for path in (tmp_path / "again" / "sad").iterdir()) == sad


def test_an_existing_output_folder_is_refused(tmp_path, capsys):
    from benchmarks.check_folders import main

    drawn = emoji_folders(tmp_path / "in")
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as stopped:
        main(["sheets", str(tmp_path / "out"), *map(str, drawn)])
    assert stopped.value.code == 2
    assert "exists" in capsys.readouterr().err
