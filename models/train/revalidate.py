"""Re-validate the shipped models on what nodal itself computes, and write JPEG references.

    python revalidate.py --demo DIR --models ../ [--version V] --command "nodal demo ..."

DIR is the output of `nodal demo --out DIR` (validate.sh runs it): the real
submit, coordinator, worker and statistics over `nodal synth` archives. For
each model this replaces the card's `held_out` with the figures of
DIR/results/<study>/validation/metrics.json (so the card says what nodal
computes, not what a Python re-implementation of the pipeline computed),
records the archives' tile codec in `tile.codec`, recomputes every predicted
case's score in Python from the stored tiles (reference.py) and records the
largest difference, and writes JPEG reference tiles (references.py). The
ONNX weights are not touched.
"""

import argparse
import csv
import json
import os

import onnxruntime as ort

import reference
from nodal_train import data, references
from nodal_train import tiles as stored

MODELS = {"cytology-origin": "cytology", "ptc-ln": "ultrasound"}
JPEG_REFERENCES = {"cytology-origin": 6, "ptc-ln": 4}


def est(value):
    """The estimate of an interval (or a bare number), None when missing."""
    if isinstance(value, dict):
        return value.get("estimate")
    return value


def held_out_cytology(m):
    return {
        "n_cases": m["n"],
        "macro_auc": m["macro_auc"],
        "top1_accuracy": est(m["top1_accuracy"]),
        "top3_accuracy": est(m["top3_accuracy"]),
        "per_class_auc": {c: est(v["auc"]) for c, v in m["per_class"].items()},
        "per_site_top1": {s: est(v["top1_accuracy"]) for s, v in m["per_site"].items()},
    }


def held_out_ultrasound(m):
    held = {
        "n_cases": m["n"],
        "prevalence": est(m["prevalence"]),
        "auc": est(m["auc"]),
        "per_site_auc": {s: est(v["auc"]) for s, v in m["per_site"].items()},
    }
    if m.get("threshold_source") == "training_split":
        held["threshold"] = m["threshold"]
        held["threshold_method"] = "Youden on the training split"
    for key, name in [("stage_agreement", "stage"), ("t_agreement", "t"), ("n_agreement", "n")]:
        block = m.get(key)
        if block:
            held[f"{name}_n"] = block["n"]
            held[f"{name}_accuracy"] = block["accuracy"]
            held[f"{name}_kappa_linear"] = block["kappa_linear"]
            held[f"{name}_kappa_quadratic"] = block["kappa_quadratic"]
            held[f"{name}_kappa_quadratic_interval"] = block["kappa_quadratic_interval"]
    return held


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def revalidate(name, args):
    study = MODELS[name]
    model_dir = os.path.join(args.models, name)
    card_path = os.path.join(model_dir, "card.json")
    store = os.path.join(args.demo, "store")
    results = os.path.join(args.demo, "results", study)
    with open(card_path, encoding="utf-8") as f:
        card = json.load(f)
    with open(os.path.join(results, "validation", "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    with open(os.path.join(args.demo, "archives", "synth.json"), encoding="utf-8") as f:
        synth = json.load(f)

    worst, cases, n_tiles = reference.compare(store, card_path, os.path.join(results, "predictions.csv"))
    print(f"{name}: Python reference over {cases} cases ({n_tiles} stored tiles): max |diff| {worst:.3g}")
    if worst > 1e-5:
        raise SystemExit(f"{name}: nodal and the Python reference differ by {worst}")

    if args.version:
        card["version"] = args.version
    card["tile"]["codec"] = data.tile_codec(store, study)
    held = held_out_cytology(metrics) if study == "cytology" else held_out_ultrasound(metrics)
    old = card["held_out"]
    card["held_out"] = {"split": "validation", "level": "case", "aggregation": "mean of tile probabilities",
                        **held, "onnx_vs_jax_max_abs_diff": old["onnx_vs_jax_max_abs_diff"]}
    card["validation"] = {
        "computed_by": args.command,
        "result": f"results/{study}/validation/metrics.json",
        "synth": {"seed": synth["seed"], "scale": synth["scale"], "nodal_version": synth["nodal_version"]},
        "python_reference": {"max_abs_diff": worst, "cases": cases, "tiles": n_tiles,
                             "stack": "Pillow 13.0.0 (libjpeg-turbo 3.2.0) + numpy + onnxruntime 1.31.1"},
    }

    val = [r for r in rows(os.path.join(results, "predictions.csv")) if r["split"] == "validation"]
    step = max(1, len(val) // JPEG_REFERENCES[name])
    picks = []
    for r in val[::step][:JPEG_REFERENCES[name]]:
        case = {c["case_id"]: c for c in stored.load_manifest(store, r["archive_id"])["cases"]}[r["case_id"]]
        picks.append((r["archive_id"], r["case_id"], stored.case_tiles(case)[0], case["report"]))
    session = ort.InferenceSession(os.path.join(model_dir, card["onnx_file"]), providers=["CPUExecutionProvider"])
    ref_dir = os.path.join(model_dir, "reference")
    ref_path = os.path.join(ref_dir, "reference.json")
    with open(ref_path, encoding="utf-8") as f:
        ref = json.load(f)
    ref.update(references.write_jpeg_references(ref_dir, store, picks, card, session))
    write_json(ref_path, ref)
    write_json(card_path, card)
    print(f"{name}: card {card['version']} written with nodal's held-out figures; {len(picks)} JPEG references")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", required=True, help="the folder `nodal demo --out` wrote")
    ap.add_argument("--models", required=True, help="the models/ folder")
    ap.add_argument("--version", help="a new card version (default: keep each card's)")
    ap.add_argument("--command", required=True, help="the nodal command that made DIR, for the card")
    ap.add_argument("--only", choices=sorted(MODELS))
    args = ap.parse_args()
    for name in MODELS:
        if args.only in (None, name):
            revalidate(name, args)


if __name__ == "__main__":
    main()
