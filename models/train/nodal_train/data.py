"""Reading `nodal synth` archives and cutting tiles exactly as `nodal submit` does.

The rules come from docs/archive-format.md ("Tiling"):
- cytology: 224x224 grid anchored at (0, 0), partial edge tiles dropped; a pixel
  is tissue when max(R,G,B) - min(R,G,B) >= 25 or (R+G+B)/3 < 200; a tile with
  fewer than 20 % tissue pixels is skipped;
- ultrasound: the whole image resized to 224x224 with a triangle (bilinear,
  antialiased) filter;
- tiles are stored as JPEG quality 90, 4:2:0, so training sees that round trip.
"""

import csv
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

TILE = 224
TISSUE_MIN_FRACTION = 0.20
CYTOLOGY_CLASSES = ["lung", "breast", "thyroid", "nasopharynx", "oesophagus", "stomach", "colorectum", "other"]
STAGES = ["I", "II", "III", "IV"]


def jpeg_round_trip(tile: np.ndarray) -> np.ndarray:
    """Encode as the stored tile (JPEG q90, 4:2:0) and decode again."""
    buf = io.BytesIO()
    Image.fromarray(tile).save(buf, format="JPEG", quality=90, subsampling=2)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def tissue_mask(img: np.ndarray) -> np.ndarray:
    a = img.astype(np.int32)
    return ((a.max(axis=2) - a.min(axis=2)) >= 25) | (a.sum(axis=2) < 600)


def grid_tiles(img: np.ndarray):
    """Yield (x, y, tile) for the kept grid tiles of an RGB image."""
    mask = tissue_mask(img)
    h, w = mask.shape
    for ty in range(h // TILE):
        for tx in range(w // TILE):
            y, x = ty * TILE, tx * TILE
            if mask[y:y + TILE, x:x + TILE].mean() >= TISSUE_MIN_FRACTION:
                yield x, y, img[y:y + TILE, x:x + TILE]


def whole_tile(path: str) -> np.ndarray:
    img = Image.open(path).convert("RGB").resize((TILE, TILE), Image.BILINEAR)
    return np.asarray(img)


def read_csv(path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def planted_images(study_dir: str) -> set:
    """(site, image path) of images synth planted as defective: they stand in for QC failures."""
    rows = read_csv(os.path.join(study_dir, "planted.csv"))
    return {(r["site"], r["image"]) for r in rows if r["image"]}


def sites(study_dir: str):
    return sorted(d for d in os.listdir(study_dir) if os.path.isdir(os.path.join(study_dir, d)))


@dataclass
class CytologyCase:
    site: str
    case_id: str
    split: str
    label: int
    tiles: list = field(default_factory=list)  # uint8 [224,224,3] after the JPEG round trip


def load_cytology(study_dir: str, split: str, max_tiles_per_image: int | None = None, rng=None):
    """Eligible cases of the split with their kept tiles (QC-failed images left out)."""
    bad = planted_images(study_dir)
    cases = []
    for site in sites(study_dir):
        for row in read_csv(os.path.join(study_dir, site, "cases.csv")):
            if row["split"] != split or row["origin"] not in CYTOLOGY_CLASSES:
                continue
            case = CytologyCase(site, row["case_id"], split, CYTOLOGY_CLASSES.index(row["origin"]))
            for rel in row["images"].split(";"):
                if (site, rel) in bad:
                    continue
                img = np.asarray(Image.open(os.path.join(study_dir, site, rel)).convert("RGB"))
                tiles = [t for _, _, t in grid_tiles(img)]
                if max_tiles_per_image is not None and len(tiles) > max_tiles_per_image:
                    keep = rng.choice(len(tiles), max_tiles_per_image, replace=False)
                    tiles = [tiles[i] for i in sorted(keep)]
                case.tiles.extend(jpeg_round_trip(t) for t in tiles)
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


@dataclass
class UltrasoundCase:
    site: str
    case_id: str
    split: str
    label: int
    stage: int  # index into STAGES, -1 when unknown
    report: dict
    tile: np.ndarray  # uint8 [224,224,3] after resize and JPEG round trip


def eligible_us(row) -> bool:
    age = int(row["age"])
    return (18 <= age <= 80 and row["first_diagnosis"] == "yes" and row["ln_dissection"] == "yes"
            and row["prior_thyroid_surgery"] == "no" and row["concurrent_tumour"] == "no")


def load_ultrasound(study_dir: str, split: str):
    """Eligible, labelled cases of the split (QC-failed frames left out)."""
    bad = planted_images(study_dir)
    cases = []
    for site in sites(study_dir):
        for row in read_csv(os.path.join(study_dir, site, "cases.csv")):
            if row["split"] != split or not eligible_us(row) or row["ln_metastasis"] == "":
                continue
            if (site, row["image"]) in bad:
                continue
            with open(os.path.join(study_dir, site, row["report"]), encoding="utf-8") as f:
                report = json.load(f)
            tile = jpeg_round_trip(whole_tile(os.path.join(study_dir, site, row["image"])))
            stage = STAGES.index(row["stage"]) if row["stage"] in STAGES else -1
            cases.append(UltrasoundCase(site, row["case_id"], split, int(row["ln_metastasis"]), stage, report, tile))
    return cases
