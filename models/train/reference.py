"""The analyst's check: recompute a nodal run's per-case scores in Python and compare.

    python reference.py --store DIR --card models/<name>/card.json --predictions predictions.csv
                        [--tolerance 1e-5] [--json OUT]

For every row of predictions.csv: the case's stored tiles (read from the store
folder DIR by the manifest of the row's archive_id), decoded with Pillow,
normalised per the card, run through onnxruntime, aggregated per the card
(mean of tile outputs), against the row's score columns. Prints the largest
absolute difference and exits 1 when it exceeds the tolerance. Needs only
Pillow, numpy and onnxruntime (scripts/setup.sh pyref).
"""

import argparse
import csv
import json
import os
import sys

import numpy as np
import onnxruntime as ort

from nodal_train import tiles as stored

BATCH = 64


def score_columns(card):
    if card["task"] == "binary":
        return ["score"]
    return [f"score_{c}" for c in card["classes"]]


def manifest_case_id(row):
    """The manifest's case id of a row: predictions.csv qualifies ids that repeat
    across archives as `site:case` or `archive_id:case`."""
    for prefix in (row["archive_id"] + ":", row["site"] + ":"):
        if row["case_id"].startswith(prefix):
            return row["case_id"][len(prefix):]
    return row["case_id"]


def run_case(session, card, tile_arrays, report):
    """Per-card aggregation of the score output over a case's tiles (float64 mean)."""
    score = next(o for o in card["outputs"] if o["role"] == "score")
    image = next(i["name"] for i in card["inputs"] if i["kind"] == "image")
    rows = []
    for start in range(0, len(tile_arrays), BATCH):
        x = stored.to_input(np.stack(tile_arrays[start:start + BATCH]), card["normalisation"])
        feeds = {image: x}
        if report is not None:
            name = next(i["name"] for i in card["inputs"] if i["kind"] == "report")
            feeds[name] = np.repeat(report[None, :], len(x), axis=0)
        out = session.run([score["name"]], feeds)[0]
        if score["activation"] == "logits":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out = out / out.sum(axis=1, keepdims=True)
        rows.append(out.astype(np.float64))
    rows = np.concatenate(rows)
    if card["aggregation"] == "max":
        return rows.max(axis=0)
    return rows.mean(axis=0)


def compare(store, card_path, predictions):
    """(max |difference|, cases compared, tiles) over the rows of `predictions`."""
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    session = ort.InferenceSession(os.path.join(os.path.dirname(card_path), card["onnx_file"]),
                                   providers=["CPUExecutionProvider"])
    with open(predictions, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    manifests, worst, n_tiles = {}, 0.0, 0
    columns = score_columns(card)
    for line, row in enumerate(rows, start=2):
        archive = row["archive_id"]
        if archive not in manifests:
            m = stored.load_manifest(store, archive)
            manifests[archive] = {c["case_id"]: c for c in m["cases"]}
        case = manifests[archive].get(manifest_case_id(row))
        if case is None:
            sys.exit(f"{predictions}:{line}: case {row['case_id']!r} is not in archive {archive}")
        tiles = stored.case_tiles(case)
        arrays = [stored.read_tile(stored.read_stored(store, archive, t)) for t in tiles]
        report = stored.encode_report(case["report"], card["report_features"]) if card["report_features"] else None
        ours = run_case(session, card, arrays, report)
        theirs = np.array([float(row[c]) for c in columns])
        worst = max(worst, float(np.abs(ours - theirs).max()))
        n_tiles += len(tiles)
    return worst, len(rows), n_tiles


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="folder holding archives/<id>/manifest.json and the tile shards")
    ap.add_argument("--card", required=True, help="the model's card.json (model.onnx beside it)")
    ap.add_argument("--predictions", required=True, help="the run's predictions.csv")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--json", help="write {max_abs_diff, cases, tiles} here")
    args = ap.parse_args()
    worst, cases, n_tiles = compare(args.store, args.card, args.predictions)
    result = {"max_abs_diff": worst, "cases": cases, "tiles": n_tiles, "tolerance": args.tolerance}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    if cases == 0 or worst > args.tolerance:
        sys.exit(f"nodal's scores and the Python reference differ by {worst} (tolerance {args.tolerance}) "
                 f"over {cases} cases")


if __name__ == "__main__":
    main()
