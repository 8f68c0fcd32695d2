"""Deskewing and the image pipeline that turns people's photos into MNIST-style inputs."""

import numpy as np
import pytest
from PIL import Image

from mnist_softmax.errors import DataFormatError
from mnist_softmax.preprocess import MAX_PIXELS, deskew, read_image, to_model_input


def slanted_bar(alpha=0.5, h=28, w=28):
    img = np.zeros((h, w), np.float32)
    for y in range(4, 24):
        x = 14 + alpha * (y - 14)
        img[y, int(np.floor(x))] = 1 - (x - np.floor(x))
        img[y, int(np.floor(x)) + 1] = x - np.floor(x)
    return img


def moments(img):
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    m = img.sum()
    cy, cx = (ys * img).sum() / m, (xs * img).sum() / m
    return cy, cx, ((ys - cy) * (xs - cx) * img).sum() / m


def test_deskew_straightens_and_centres():
    img = np.roll(slanted_bar(0.5), 2, axis=1)
    out = deskew(img[None])[0]
    cy, cx, cov = moments(out)
    assert abs(moments(img)[2]) > 1  # it was slanted
    assert abs(cov) < 0.05 * abs(moments(img)[2])  # and no longer is
    assert cy == pytest.approx(14, abs=0.05) and cx == pytest.approx(14, abs=0.05)  # centre of mass at the centre
    assert out.min() >= 0 and out.max() <= 1


def test_deskew_keeps_blank_images_and_range():
    blank = np.zeros((3, 28, 28), np.float32)
    assert np.array_equal(deskew(blank), blank)
    rng = np.random.default_rng(0)
    noisy = rng.random((50, 28, 28)).astype(np.float32)
    out = deskew(noisy)
    assert out.shape == noisy.shape and out.min() >= 0 and out.max() <= 1 and np.isfinite(out).all()


def test_deskew_matches_an_independent_affine_transform():
    from scipy.ndimage import affine_transform

    rng = np.random.default_rng(1)
    img = np.zeros((28, 28))
    img[6:22, 10:18] = rng.random((16, 8))
    img = affine_transform(img, np.array([[1, 0], [0.3, 1]]), offset=(0, -4), order=1)  # slant it
    cy, cx, cov = moments(img)
    var_y = (((np.arange(28) - cy) ** 2)[:, None] * img).sum() / img.sum()
    alpha = cov / var_y
    matrix = np.array([[1, 0], [alpha, 1]])
    expected = affine_transform(img, matrix, offset=np.array([cy, cx]) - matrix @ [14, 14], order=1)
    np.testing.assert_allclose(deskew(img[None])[0], expected, atol=1e-5)


def digit_image(tmp_path, name, *, invert=True, mode="L", size=(300, 220), offset=(40, 30)):
    """A bold '1'-like stroke drawn on paper: dark ink on light (invert) or light on dark."""
    ink = np.zeros(size[::-1], np.float32)
    ink[offset[1] : offset[1] + 150, offset[0] + 60 : offset[0] + 85] = 1
    pixels = (1 - ink) * 220 + 20 if invert else ink * 235 + 10
    image = Image.fromarray(pixels.astype(np.uint8)).convert(mode)
    path = tmp_path / name
    image.save(path)
    return path


@pytest.mark.parametrize("name, invert, mode", [
    ("dark.png", True, "L"), ("light.jpg", False, "RGB"), ("scan.bmp", True, "RGB"), ("x.gif", True, "L"),
    ("x.tiff", False, "L"),
])
def test_to_model_input_makes_mnist_style_digits(tmp_path, name, invert, mode):
    out = to_model_input(read_image(digit_image(tmp_path, name, invert=invert, mode=mode)))
    assert out.shape == (28, 28) and out.min() >= 0 and out.max() == pytest.approx(1)
    rows, cols = np.nonzero(out > 0.05)
    assert rows.max() - rows.min() + 1 <= 21  # fitted into the 20x20 box (anti-aliasing may add an edge)
    cy, cx, _ = moments(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5  # centred by centre of mass


def test_transparent_drawing_is_ink_on_white(tmp_path):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55] = (0, 0, 0, 255)  # a black stroke on a transparent canvas
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    out = to_model_input(read_image(tmp_path / "t.png"))
    assert out is not None and out.max() == pytest.approx(1)


def test_blank_images_give_none(tmp_path):
    Image.new("L", (200, 100), 235).save(tmp_path / "blank.png")
    assert to_model_input(read_image(tmp_path / "blank.png")) is None
    noise = np.random.default_rng(0).normal(230, 3, (100, 100)).clip(0, 255).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "paper.png")
    assert to_model_input(read_image(tmp_path / "paper.png")) is None


def test_bad_files_get_clear_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good = digit_image(tmp_path, "good.png")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])
    for name, message in [("empty.png", "the file is empty"), ("text.jpg", "not an image file"),
                          ("cut.png", "cannot decode the image"), ("absent.png", "no such file")]:
        with pytest.raises(DataFormatError, match=message):
            read_image(tmp_path / name)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
           + chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(DataFormatError, match=f"too large .more than {MAX_PIXELS:,} pixels"):
        read_image(tmp_path / "bomb.png")


def test_only_regular_files_are_read(tmp_path):
    import os
    import threading

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    done = threading.Event()
    errors = []

    def read():
        try:
            read_image(fifo)
        except DataFormatError as exc:
            errors.append(str(exc))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(5), "reading a FIFO hung"
    assert errors and "not a regular file" in errors[0]
    with pytest.raises(DataFormatError, match="is a directory"):
        read_image(tmp_path)


def test_16_bit_and_floating_point_images_are_scaled_not_clipped(tmp_path):
    ink = np.zeros((60, 40), np.float32)
    ink[10:50, 16:24] = 1
    deep = (3000 + ink * 50000).astype(np.uint16)  # light ink on a dark ground, all above 255
    Image.fromarray(deep).save(tmp_path / "deep.png")
    got = read_image(tmp_path / "deep.png")
    assert got.max() == pytest.approx(53000 / 65535, abs=1e-3) and got.min() == pytest.approx(3000 / 65535, abs=1e-3)
    Image.fromarray(ink * 7.5 - 2).save(tmp_path / "float.tif")  # 32-bit float, outside [0, 1]
    got = read_image(tmp_path / "float.tif")
    np.testing.assert_allclose(got, ink, atol=1e-6)
    assert to_model_input(got) is not None


def test_a_very_long_strip_is_read_in_bounded_memory(tmp_path):
    import tracemalloc

    strip = np.full((1, 30_000_000), 255, np.uint8)
    strip[0, 10_000_000:20_000_000:3] = 0
    Image.fromarray(strip).save(tmp_path / "strip.png")
    tracemalloc.start()
    try:
        out = to_model_input(read_image(tmp_path / "strip.png"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out is not None and out.shape == (28, 28)
    assert peak < 1.2e9, f"{peak / 1e9:.1f} GB"  # the image is 30 MB as bytes, 120 MB as float32


def test_c_library_messages_do_not_reach_stderr(tmp_path, capfd):
    import os

    from mnist_softmax.preprocess import _quiet_stderr

    with _quiet_stderr():
        os.write(2, b"TIFFReadDirectory: Warning, Unknown field with tag 65000\n")  # as libtiff writes
    tiff = tmp_path / "x.tif"
    Image.fromarray(np.eye(40, dtype=np.uint8) * 255).save(tiff, compression="tiff_lzw")
    assert read_image(tiff).shape == (40, 40)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_exif_orientation_is_applied(tmp_path, suffix):
    """A picture stored sideways with an EXIF orientation tag (as phones save them) is read the right way up,
    whichever format carries the tag; without the tag it is read as stored."""
    from mnist_softmax.preprocess import load_pixels

    stored = np.full((40, 60), 255, np.uint8)
    stored[2:12, 2:22] = 0  # a dark block in the top-left corner of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored image is to be turned 90 degrees clockwise to be seen
    path, plain = tmp_path / f"tagged{suffix}", tmp_path / f"plain{suffix}"
    quality = {"quality": 95} if suffix in (".jpg", ".webp") else {}
    Image.fromarray(stored).save(path, exif=exif, **quality)
    Image.fromarray(stored).save(plain, **quality)
    seen, _ = load_pixels(path, photo=False)
    as_stored, _ = load_pixels(plain, photo=False)
    assert seen.shape == (60, 40) and as_stored.shape == (40, 60)
    np.testing.assert_allclose(seen, np.rot90(as_stored, -1), atol=0.05)  # turned clockwise: the block top-right
    assert seen[2:12, -12:-2].mean() < 0.2 and as_stored[2:12, 2:12].mean() < 0.2


def test_unreadable_exif_leaves_the_image_readable(tmp_path):
    """A PNG whose eXIf chunk is garbage is read as stored (the orientation cannot be known), not refused."""
    from mnist_softmax.preprocess import load_pixels

    stored = np.full((40, 60), 255, np.uint8)
    stored[2:12, 2:22] = 0
    path = tmp_path / "bad-exif.png"
    Image.fromarray(stored).save(path, exif=b"Exif\x00\x00garbage-not-tiff")
    seen, _ = load_pixels(path, photo=False)
    np.testing.assert_allclose(seen, stored / 255, atol=1e-6)
