"""Training and validation cases from a nodal store: the tiles `nodal submit` stored.

train.sh submits every site of the `nodal synth` output to a local store
folder with the real `nodal submit` (validation, eligibility, QC, tiling, the
tile codec), and the training script reads the cases and their stored JPEG
tiles from the manifests there, decoding them with Pillow (tiles.read_tile).
So the model is trained and validated on exactly the tiles production runs
it on: no Python re-implementation of the tiling rule or of the codec.
"""

import glob
import json
import os
from dataclasses import dataclass, field

import numpy as np

from . import tiles as stored
from .tiles import encode_report  # noqa: F401  (the training script's report encoder)

CYTOLOGY_CLASSES = ["lung", "breast", "thyroid", "nasopharynx", "oesophagus", "stomach", "colorectum", "other"]
# AJCC 8 categories of the ptc-ln heads (nodal_types::ajcc spells them the same).
T_CATEGORIES = ["T1a", "T1b", "T2", "T3a", "T3b", "T4a", "T4b"]
N_CATEGORIES = ["N0", "N1a", "N1b"]


def manifests(store: str, study: str):
    """The manifests of `study` in the store folder, by archive id."""
    out = []
    for path in sorted(glob.glob(os.path.join(store, "archives", "*", "manifest.json"))):
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        if m["study"] == study:
            out.append(m)
    return out


def runnable(case) -> bool:
    """Eligible and with at least one stored tile, as the coordinator's plan requires."""
    return case["eligibility"]["verdict"] == "eligible" and bool(stored.case_tiles(case))


def tile_codec(store: str, study: str) -> dict:
    """The one codec the study's archives were tiled with (the card records it)."""
    codecs = {json.dumps(m["tiling"]["codec"], sort_keys=True) for m in manifests(store, study)}
    if len(codecs) != 1:
        raise SystemExit(f"{store}: the {study} archives were tiled with {len(codecs)} codecs: {sorted(codecs)}")
    return json.loads(codecs.pop())


@dataclass
class CytologyCase:
    site: str
    archive_id: str
    case_id: str
    split: str
    label: int
    tiles: list = field(default_factory=list)  # uint8 [224,224,3], the stored tiles decoded


def load_cytology(store: str, split: str, max_tiles_per_image: int | None = None, rng=None):
    """Runnable labelled cases of the split with their stored tiles (at most `max_tiles_per_image` per image)."""
    cases = []
    for m in manifests(store, "cytology"):
        for c in m["cases"]:
            if c["split"] != split or c["label"] not in CYTOLOGY_CLASSES or not runnable(c):
                continue
            case = CytologyCase(m["site"], m["archive_id"], c["case_id"], split, CYTOLOGY_CLASSES.index(c["label"]))
            for image in c["images"]:
                tiles = image["tiles"] if image["qc"]["passed"] else []
                if max_tiles_per_image is not None and len(tiles) > max_tiles_per_image:
                    keep = rng.choice(len(tiles), max_tiles_per_image, replace=False)
                    tiles = [tiles[i] for i in sorted(keep)]
                case.tiles.extend(stored.read_tile(stored.read_stored(store, m["archive_id"], t)) for t in tiles)
            cases.append(case)
    return cases


# The report features of ptc-ln, in input order: numeric (standardised) then one-hot.
NUMERIC_FEATURES = ["max_diameter_mm", "aspect_ratio"]
CATEGORICAL_FEATURES = {
    "composition": ["solid", "mixed", "cystic"],
    "echogenicity": ["anechoic", "hyperechoic", "isoechoic", "hypoechoic", "very-hypoechoic"],
    "margin": ["smooth", "ill-defined", "lobulated", "irregular", "extrathyroidal"],
    "calcification": ["none", "macrocalcification", "rim", "microcalcification"],
    "vascularity": ["none", "peripheral", "central", "mixed"],
    "tirads": ["1", "2", "3", "4", "5"],
}


def report_feature_spec(reports):
    """The card's report_features, with means and standard deviations from `reports`."""
    spec = []
    for name in NUMERIC_FEATURES:
        v = np.array([float(r[name]) for r in reports], dtype=np.float64)
        spec.append({"kind": "numeric", "name": name, "mean": float(np.float32(v.mean())),
                     "std": float(np.float32(v.std()))})
    for name, levels in CATEGORICAL_FEATURES.items():
        spec.append({"kind": "categorical", "name": name, "levels": levels})
    return spec


@dataclass
class UltrasoundCase:
    site: str
    archive_id: str
    case_id: str
    split: str
    label: int
    t: int  # index into T_CATEGORIES, -1 when unknown
    n: int  # index into N_CATEGORIES, -1 when unknown
    report: dict
    tile: np.ndarray  # uint8 [224,224,3], the stored whole-image tile decoded
    tile_ref: dict = field(default_factory=dict)  # the manifest's entry of the stored tile


def load_ultrasound(store: str, split: str):
    """Runnable labelled cases of the split (one stored tile each)."""
    cases = []
    for m in manifests(store, "ultrasound"):
        for c in m["cases"]:
            if c["split"] != split or c["label"] not in ("0", "1") or not runnable(c):
                continue
            first = stored.case_tiles(c)[0]
            tile = stored.read_tile(stored.read_stored(store, m["archive_id"], first))
            clinical = c["clinical"]
            t = T_CATEGORIES.index(clinical["pt"]) if clinical.get("pt") in T_CATEGORIES else -1
            n = N_CATEGORIES.index(clinical["pn"]) if clinical.get("pn") in N_CATEGORIES else -1
            cases.append(UltrasoundCase(m["site"], m["archive_id"], c["case_id"], split, int(c["label"]), t, n,
                                        c["report"], tile, first))
    return cases
