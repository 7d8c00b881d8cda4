"""Tiles as production stores them: the JPEG bytes `nodal submit` wrote, decoded with Pillow.

A nodal store folder holds `archives/<archive_id>/manifest.json` and the tiles,
packed end to end in `archives/<archive_id>/shards/<n>.bin` at the offset and
length the manifest gives (a `nodal demo` store is such a folder; so is an
s3s-fs bucket directory with the store prefix). Reading tiles from there,
rather than re-cutting and re-encoding the source images in Python, is what
keeps training, validation and any analyst's check on the pixels the worker
sees: both sides decode the same bytes with libjpeg-turbo (accurate DCT, fancy
upsampling), which gives the same pixels (docs/models.md, "Parity").
"""

import io
import json
import os

import numpy as np
from PIL import Image


def read_tile(data: bytes) -> np.ndarray:
    """Decode one stored tile (JPEG or PNG bytes) to uint8 RGB [H, W, 3], as the worker does."""
    # Pillow's JPEG defaults are libjpeg's: islow DCT, fancy upsampling, and the
    # YCbCr->RGB conversion inside libjpeg-turbo.
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def load_manifest(store: str, archive_id: str) -> dict:
    with open(os.path.join(store, "archives", archive_id, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def case_tiles(case: dict) -> list:
    """A case's tiles in manifest order: QC-passed images, each image's tiles."""
    return [t for image in case["images"] if image["qc"]["passed"] for t in image["tiles"]]


def shard_path(store: str, archive_id: str, shard: int) -> str:
    """The file of an archive's shard `shard` (mirror of nodal_types::layout::shard_key)."""
    return os.path.join(store, "archives", archive_id, "shards", f"{shard:06d}.bin")


def read_stored(store: str, archive_id: str, tile: dict) -> bytes:
    """A tile's stored bytes: `length` bytes at `offset` of its shard."""
    at = tile["at"]
    with open(shard_path(store, archive_id, at["shard"]), "rb") as f:
        f.seek(at["offset"])
        data = f.read(at["length"])
    if len(data) != at["length"]:
        raise ValueError(f"{archive_id}: tile {tile['name']}: its shard ends before byte {at['offset'] + at['length']}")
    return data


def encode_report(report: dict, spec) -> np.ndarray:
    """Mirror of nodal_common::model_card::ModelCard::encode_report (float32)."""
    out = []
    for f in spec:
        value = report[f["name"]]
        if f["kind"] == "numeric":
            out.append((np.float32(value) - np.float32(f["mean"])) / np.float32(f["std"]))
        else:
            level = str(int(value)) if isinstance(value, (int, float)) else value
            out.extend(np.float32(1.0 if level == lv else 0.0) for lv in f["levels"])
    return np.array(out, dtype=np.float32)


def to_input(tiles_uint8, normalisation) -> np.ndarray:
    """`(pixel / scale - mean[c]) / std[c]`, NCHW float32, as the worker's preprocess."""
    x = np.asarray(tiles_uint8, dtype=np.float32) / np.float32(normalisation["scale"])
    x = (x - np.asarray(normalisation["mean"], np.float32)) / np.asarray(normalisation["std"], np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
