"""Images of the vision arena: validation, re-encoding without metadata, bombs, bad bytes, GIF
first frame, the hash block-list and the content-addressed store."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from openarena.errors import DataError
from openarena.serving.images import HashBlockList, ImageLimits, ImageRefused, clean_image, decode_data_url, load_block_list, screen
from openarena.storage.images import ImageStore, default_image_dir, sniff_mime


def _jpeg_with_gps() -> bytes:
    """A 64 × 48 JPEG carrying EXIF: a GPS position (48°51'N 2°21'E), a camera make, and an
    orientation of 6 (rotate 90° clockwise to view)."""
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, 32, 48))  # left half blue: tells the orientation apart
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0112] = 6  # Orientation
    gps = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif, quality=95, comment=b"secret comment")
    return out.getvalue()


def test_re_encoding_strips_exif_gps_and_applies_the_orientation():
    raw = _jpeg_with_gps()
    src = Image.open(io.BytesIO(raw))
    assert src.getexif().get_ifd(0x8825)[2] == (48.0, 51.0, 24.0)  # the planted position is there
    assert b"SpyCam" in raw and b"secret comment" in raw
    clean = clean_image(raw)
    assert clean.mime == "image/jpeg" and clean.source_format == "JPEG"
    out = Image.open(io.BytesIO(clean.data))
    assert not out.getexif() and "exif" not in out.info and "comment" not in out.info and "icc_profile" not in out.info
    assert b"SpyCam" not in clean.data and b"secret comment" not in clean.data and b"Exif" not in clean.data
    # orientation 6 applied to the pixels: 64 × 48 becomes 48 × 64, the blue left half on top
    assert (clean.width, clean.height) == out.size == (48, 64)
    top, bottom = np.asarray(out)[5, 24], np.asarray(out)[58, 24]
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]
    assert clean.sha256 == hashlib.sha256(clean.data).hexdigest() and clean.upload_sha256 == hashlib.sha256(raw).hexdigest()


def test_png_text_chunks_are_dropped_and_transparency_is_kept():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Roe, 12 Secret Street")
    img = Image.new("RGBA", (10, 10), (0, 255, 0, 0))
    img.putpixel((3, 3), (255, 0, 0, 255))
    out = io.BytesIO()
    img.save(out, format="PNG", pnginfo=info)
    clean = clean_image(out.getvalue())
    assert b"Secret Street" not in clean.data and clean.mime == "image/png"
    back = Image.open(io.BytesIO(clean.data))
    assert back.mode == "RGBA" and back.getpixel((3, 3)) == (255, 0, 0, 255) and back.getpixel((0, 0))[3] == 0
    assert not back.text


def test_gif_keeps_the_first_frame_only():
    frames = [Image.new("P", (8, 6), i) for i in (1, 2, 3)]
    for f, colour in zip(frames, ((255, 0, 0), (0, 255, 0), (0, 0, 255))):
        f.putpalette(list(colour) * 256)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(out.getvalue())).n_frames == 3
    clean = clean_image(out.getvalue())
    back = Image.open(io.BytesIO(clean.data))
    assert clean.source_format == "GIF" and clean.mime == "image/png" and getattr(back, "n_frames", 1) == 1
    assert back.convert("RGB").getpixel((4, 3)) == (255, 0, 0)  # the first frame's colour


def test_webp_is_accepted_and_re_encoded_as_png():
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (10, 200, 10)).save(out, format="WEBP", lossless=True)
    clean = clean_image(out.getvalue())
    assert clean.source_format == "WEBP" and clean.mime == "image/png" and (clean.width, clean.height) == (20, 10)
    assert Image.open(io.BytesIO(clean.data)).getpixel((5, 5)) == (10, 200, 10)


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width × height`` pixels (a decompression bomb's
    header; its data is one compressed row of zeros)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_decoding():
    bomb = _png_declaring(60_000, 60_000)  # 3.6 gigapixels declared in a few hundred bytes
    assert len(bomb) < 1000
    with pytest.raises(ImageRefused) as e:
        clean_image(bomb)
    assert e.value.code == "too_many_pixels" and "too many pixels" in str(e.value)
    # under Pillow's own guard but over ours
    with pytest.raises(ImageRefused) as e:
        clean_image(_png_declaring(6000, 5000), ImageLimits(max_pixels=10_000_000))
    assert e.value.code == "too_many_pixels" and "6,000 × 5,000" in str(e.value)


def test_bad_bytes_are_refused_with_a_clear_message():
    with pytest.raises(ImageRefused) as e:
        clean_image(b"this is not an image at all, just text")
    assert e.value.code == "bad_image" and str(e.value) == "This file is not an image the arena can read: send a PNG, JPEG, WebP or GIF file."
    good = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(good, format="PNG")
    truncated = good.getvalue()[:120]
    with pytest.raises(ImageRefused) as e:
        clean_image(truncated)
    assert e.value.code == "bad_image" and "damaged" in str(e.value)
    bmp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(bmp, format="BMP")
    with pytest.raises(ImageRefused) as e:
        clean_image(bmp.getvalue())
    assert e.value.code in ("bad_format", "bad_image") and "PNG, JPEG, WebP or GIF" in str(e.value)
    with pytest.raises(ImageRefused) as e:
        clean_image(b"")
    assert e.value.code == "bad_image"


def test_size_limit_and_data_urls():
    big = b"\x89PNG" + b"\x00" * 2000
    with pytest.raises(ImageRefused) as e:
        clean_image(big, ImageLimits(max_bytes=1000))
    assert e.value.code == "too_large" and "at most 1 KB" in str(e.value)
    # the data URL is measured before it is decoded
    url = "data:image/png;base64," + "A" * 4_000_000
    with pytest.raises(ImageRefused) as e:
        decode_data_url(url, ImageLimits(max_bytes=1_000_000))
    assert e.value.code == "too_large"
    for bad in ("http://example.com/x.png", "data:text/plain,hello", "data:image/png;base64,@@@@", 42):
        with pytest.raises(ImageRefused) as e:
            decode_data_url(bad)
        assert e.value.code == "bad_image"
    png = io.BytesIO()
    Image.new("RGB", (3, 3)).save(png, format="PNG")
    assert decode_data_url("data:image/png;base64," + base64.b64encode(png.getvalue()).decode()) == png.getvalue()


def test_large_images_are_shrunk_to_max_side():
    out = io.BytesIO()
    Image.new("RGB", (1000, 500), (9, 9, 9)).save(out, format="PNG")
    clean = clean_image(out.getvalue(), ImageLimits(max_side=256))
    assert (clean.width, clean.height) == (256, 128)


def test_block_list_refuses_listed_images(tmp_path):
    raw = _jpeg_with_gps()
    clean = clean_image(raw)
    f = tmp_path / "blocked.txt"
    f.write_text(f"# known abusive files\n{hashlib.sha256(raw).hexdigest().upper()}  upload.jpg\n\n")
    bl = load_block_list(f)
    assert len(bl) == 1 and bl.check(clean) == "on the block-list"
    with pytest.raises(ImageRefused) as e:
        screen(clean, bl)
    assert e.value.code == "blocked" and str(e.value) == "This image cannot be used in the arena. Try another image."
    # the re-encoded file's hash is matched too; another image passes
    assert HashBlockList([clean.sha256]).check(clean) == "on the block-list"
    other = io.BytesIO()
    Image.new("RGB", (5, 5), (1, 1, 1)).save(other, format="PNG")
    screen(clean_image(other.getvalue()), bl)
    screen(clean, None)
    f.write_text("abc\n")
    with pytest.raises(DataError) as e:
        load_block_list(f)
    assert "row 1" in str(e.value) and "sha256" in str(e.value) and "64 hexadecimal" in str(e.value)
    with pytest.raises(DataError, match="file not found"):
        load_block_list(tmp_path / "missing.txt")


def test_store_is_content_addressed_and_refuses_paths(tmp_path):
    store = ImageStore(tmp_path / "images")
    clean = clean_image(_jpeg_with_gps())
    sha = store.put(clean.data)
    assert sha == clean.sha256 and store.put(clean.data) == sha
    assert store.path(sha) == tmp_path / "images" / sha[:2] / sha and store.get(sha) == clean.data
    assert sha in store and "0" * 64 not in store and store.get("0" * 64) is None
    assert sniff_mime(clean.data) == "image/jpeg"
    for bad in ("../../etc/passwd", "A" * 64, sha[:10]):
        with pytest.raises(ValueError):
            store.path(bad)
        assert bad not in store
    assert [p.name for p in (tmp_path / "images").rglob("*") if p.is_file()] == [sha]  # no temporary left
    assert default_image_dir(f"sqlite:///{tmp_path}/db/arena.db") == (tmp_path / "db" / "images").resolve()
    assert default_image_dir("postgresql+psycopg://u@h/db", tmp_path / "data") == tmp_path / "data" / "images"


def test_serve_refuses_a_bad_block_list_before_starting(tmp_path):
    from typer.testing import CliRunner

    from openarena.cli.main import app
    from openarena.demo import DEMO_REGISTRY

    base = ["serve", "--port", "0", "--registry", str(DEMO_REGISTRY), "--data-dir", str(tmp_path)]
    res = CliRunner().invoke(app, base + ["--image-block-list", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2 and "file not found" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.txt"
    bad.write_text("0" * 64 + "\nnot-a-hash\n")
    res = CliRunner().invoke(app, base + ["--image-block-list", str(bad)])
    assert res.exit_code == 2 and "row 2" in res.output and "not a SHA-256" in res.output


def test_the_block_list_catches_a_blocked_image_in_another_container_but_not_a_lossy_re_save():
    """What an exact-hash block-list can and cannot do (documented in HashBlockList)."""
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))

    def enc(fmt, **kw):
        out = io.BytesIO()
        img.save(out, format=fmt, **kw)
        return out.getvalue()

    blocked = clean_image(enc("PNG"))
    bl = HashBlockList([blocked.sha256, blocked.upload_sha256])
    for raw in (enc("PNG", compress_level=1), enc("WEBP", lossless=True)):  # same pixels, other bytes
        assert bl.check(clean_image(raw)) == "on the block-list"
    assert bl.check(clean_image(enc("JPEG", quality=95))) is None  # lossy: a perceptual hash would be needed
