"""JPEG reference tiles: stored tiles, their Pillow decodes, and what onnxruntime gives for them.

Written into models/<name>/reference/ beside the lossless PNG references.
worker/tests/models.rs decodes each `jpeg-<k>.jpg` with the worker's codec and
checks the pixels against `jpeg-<k>.png` bit for bit and the model's outputs
against the recorded ones within 1e-5.
"""

import os

import numpy as np
from PIL import Image

from . import tiles as stored


def write_jpeg_references(ref_dir, store, picks, card, session):
    """`picks`: (archive_id, case_id, manifest tile, report dict or None). Returns reference.json's jpeg part."""
    os.makedirs(ref_dir, exist_ok=True)
    arrays, inputs, reports = [], [], []
    for k, (archive_id, case_id, tile, report) in enumerate(picks):
        jpeg, png = f"jpeg-{k}.jpg", f"jpeg-{k}.png"
        data = stored.read_stored(store, archive_id, tile)
        with open(os.path.join(ref_dir, jpeg), "wb") as f:
            f.write(data)
        pixels = stored.read_tile(data)
        Image.fromarray(pixels).save(os.path.join(ref_dir, png), format="PNG")
        arrays.append(pixels)
        entry = {"jpeg": jpeg, "decoded": png, "archive_id": archive_id, "case_id": case_id, "tile": tile["name"]}
        if card["report_features"]:
            vector = stored.encode_report(report, card["report_features"])
            entry["report"] = report
            entry["report_vector"] = vector.tolist()
            reports.append(vector)
        inputs.append(entry)
    feeds = {next(i["name"] for i in card["inputs"] if i["kind"] == "image"):
             stored.to_input(np.stack(arrays), card["normalisation"])}
    if reports:
        feeds[next(i["name"] for i in card["inputs"] if i["kind"] == "report")] = np.stack(reports)
    names = [o["name"] for o in card["outputs"]]
    outs = session.run(names, feeds)
    return {"jpeg_inputs": inputs, "jpeg_outputs": {n: o.tolist() for n, o in zip(names, outs)}}
