"""Train, export and verify nodal's shipped models from `nodal synth` archives.

    python train.py --store STORE --cytology DATA/cytology --ultrasound DATA/ultrasound --models ../ [--only ...]

Reads the cases and their stored tiles from STORE, a local nodal store folder
that `nodal submit` filled from the synth folders (train.sh does it), so the
model is trained and validated on the tiles production runs it on. Writes
models/<name>/model.onnx, card.json and reference/ for each model. See
docs/models.md; train.sh is the driver that makes the data and the venv, and
validate.sh then replaces the held-out figures with those nodal computes.
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import optax  # noqa: E402
import PIL  # noqa: E402
from PIL import Image  # noqa: E402

from nodal_train import data, export, metrics, net, references  # noqa: E402
from nodal_train import tiles as stored  # noqa: E402

CARD_VERSION = "1.1.0"
PTC_VERSION = "2.0.0"  # pT and pN heads; the stage group is derived (AJCC 8), not predicted


def log(msg):
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def augment(batch, rng):
    """Random flips and 90-degree rotations, per sample (uint8 NHWC)."""
    out = np.empty_like(batch)
    for i, img in enumerate(batch):
        k = rng.integers(4)
        img = np.rot90(img, k)
        if rng.integers(2):
            img = img[:, ::-1]
        out[i] = img
    return out


def train_loop(params, loss_fn, batches_per_epoch, make_batch, epochs, lr, seed):
    schedule = optax.cosine_decay_schedule(lr, epochs * batches_per_epoch)
    opt = optax.adamw(schedule, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, key, *batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    key = jax.random.PRNGKey(seed)
    for epoch in range(epochs):
        t0, losses = time.time(), []
        for b in range(batches_per_epoch):
            key, sub = jax.random.split(key)
            params, state, loss = step(params, state, sub, *make_batch(epoch, b))
            losses.append(float(loss))
        log(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)")
    return params


def colour_jitter(key, x):
    """Per-sample, per-channel gain and offset on the normalised input (stain/gain variation)."""
    k1, k2 = jax.random.split(key)
    gain = 1.0 + 0.08 * jax.random.normal(k1, (x.shape[0], 3, 1, 1))
    offset = 0.08 * jax.random.normal(k2, (x.shape[0], 3, 1, 1))
    return x * gain + offset


def channel_stats(tiles):
    x = np.stack(tiles[: min(len(tiles), 4000)]).astype(np.float64) / 255.0
    mean = x.mean(axis=(0, 1, 2))
    std = x.std(axis=(0, 1, 2))
    return [float(np.float32(v)) for v in mean], [float(np.float32(v)) for v in std]


def to_input(tiles_uint8, mean, std):
    x = np.asarray(tiles_uint8, dtype=np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def ort_session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def versions():
    return {"python": platform.python_version(), "jax": jax.__version__, "optax": optax.__version__,
            "numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            "pillow": PIL.__version__}


def synth_provenance(study_dir):
    with open(os.path.join(os.path.dirname(study_dir.rstrip("/")), "synth.json"), encoding="utf-8") as f:
        s = json.load(f)
    return {"seed": s["seed"], "scale": s["scale"], "nodal_version": s["nodal_version"]}


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")


def save_png(path, tile):
    Image.fromarray(tile).save(path, format="PNG")


def jpeg_reference_cases(store, cases, n):
    """Every k-th of `cases` (n of them) with its manifest entry, for the JPEG references."""
    picked = cases[:: max(1, len(cases) // n)][:n]
    by_archive = {}
    out = []
    for c in picked:
        if c.archive_id not in by_archive:
            by_archive[c.archive_id] = {m["case_id"]: m for m in stored.load_manifest(store, c.archive_id)["cases"]}
        out.append((c, by_archive[c.archive_id][c.case_id]))
    return out


# ----------------------------------------------------------------------------- cytology

def train_cytology(study_dir, out_dir, args):
    t_start = time.time()
    rng = np.random.default_rng(args.seed)
    log("cytology: loading training tiles")
    train_cases = data.load_cytology(args.store, "train", max_tiles_per_image=args.cy_tiles_per_image, rng=rng)
    tiles = np.stack([t for c in train_cases for t in c.tiles])
    labels = np.array([c.label for c in train_cases for _ in c.tiles], dtype=np.int32)
    log(f"cytology: {len(train_cases)} training cases, {len(tiles)} tiles")
    mean, std = channel_stats(list(tiles))
    n_classes = len(data.CYTOLOGY_CLASSES)
    params = net.init_cytology(jax.random.PRNGKey(args.seed), n_classes)
    bs = args.batch
    n_batches = len(tiles) // bs
    mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)

    def loss_fn(params, key, x, y):
        x = colour_jitter(key, net.normalise(x, mean_j, std_j))
        logits = net.cytology_logits(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    perm = {}

    def make_batch(epoch, b):
        if epoch not in perm:
            perm.clear()
            perm[epoch] = rng.permutation(len(tiles))
        idx = perm[epoch][b * bs:(b + 1) * bs]
        return augment(tiles[idx], rng), labels[idx]

    params = train_loop(params, loss_fn, n_batches, make_batch, args.cy_epochs, args.lr, args.seed)
    t_trained = time.time()

    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "model.onnx")
    onnx.save(export.cytology_model(jax.device_get(params), n_classes), onnx_path)
    session = ort_session(onnx_path)

    log("cytology: held-out evaluation with onnxruntime")
    val_cases = data.load_cytology(args.store, "validation")
    jax_fwd = jax.jit(lambda x: jax.nn.softmax(net.cytology_logits(params, x), axis=1))
    case_probs, case_labels, case_sites, max_diff = [], [], [], 0.0
    for c in val_cases:
        if not c.tiles:
            continue
        x = to_input(np.stack(c.tiles), mean, std)
        p = session.run(["probs"], {"image": x})[0]
        max_diff = max(max_diff, float(np.abs(p - np.asarray(jax_fwd(x))).max()))
        case_probs.append(p.mean(axis=0))
        case_labels.append(c.label)
        case_sites.append(c.site)
    case_probs, case_labels = np.array(case_probs), np.array(case_labels)
    m = metrics.multiclass(case_probs, case_labels, data.CYTOLOGY_CLASSES)
    sites = np.array(case_sites)
    m["per_site_top1"] = {s: float(np.mean(case_probs[sites == s].argmax(1) == case_labels[sites == s]))
                          for s in sorted(set(case_sites))}
    m["onnx_vs_jax_max_abs_diff"] = max_diff
    log(f"cytology: macro AUC {m['macro_auc']:.3f}, top-1 {m['top1_accuracy']:.3f}, "
        f"top-3 {m['top3_accuracy']:.3f} on {m['n_cases']} cases; ONNX vs JAX {max_diff:.2e}")
    if max_diff > 1e-4:
        sys.exit(f"ONNX and JAX disagree by {max_diff}")

    # References: a few validation tiles, lossless, with what onnxruntime gives for them.
    ref_dir = os.path.join(out_dir, "reference")
    os.makedirs(ref_dir, exist_ok=True)
    refs = []
    for k, c in enumerate([c for c in val_cases if c.tiles][:: max(1, len(val_cases) // 6)][:6]):
        name = f"tile-{k}.png"
        save_png(os.path.join(ref_dir, name), c.tiles[0])
        refs.append((name, c.tiles[0], c.case_id))
    x = to_input(np.stack([np.asarray(Image.open(os.path.join(ref_dir, r[0])).convert("RGB")) for r in refs]),
                 mean, std)
    out = session.run(["probs"], {"image": x})[0]
    card = {
        "schema_version": 1, "name": "cytology-origin", "version": CARD_VERSION, "study": "cytology",
        "task": "multiclass", "classes": data.CYTOLOGY_CLASSES, "onnx_file": "model.onnx",
        "onnx_sha256": sha256(onnx_path),
        "inputs": [{"name": "image", "kind": "image", "shape": [-1, 3, 224, 224]}],
        "outputs": [{"name": "probs", "role": "score", "activation": "probabilities", "width": n_classes,
                     "labels": data.CYTOLOGY_CLASSES}],
        "tile": {"size": 224, "mode": "grid", "codec": data.tile_codec(args.store, "cytology")},
        "normalisation": {"scale": 255.0, "mean": mean, "std": std},
        "report_features": [], "aggregation": "mean", "preferred_batch": 64,
        "held_out": {"split": "validation", "level": "case", "aggregation": "mean of tile probabilities", **m},
        "training": {
            "synth": synth_provenance(study_dir), "epochs": args.cy_epochs, "batch": bs, "learning_rate": args.lr,
            "optimizer": "adamw (cosine decay, weight decay 1e-4)", "seed": args.seed,
            "train_cases": len(train_cases), "train_tiles": int(len(tiles)),
            "max_tiles_per_image": args.cy_tiles_per_image,
            "augmentation": "rot90, flips, per-channel gain/offset", "architecture": "conv 4x4/4 (24) + 2 conv 3x3 (48, 64) + GAP + dense",
            "qc": "nodal submit's eligibility and QC (the cases and tiles of the store's manifests)",
            "train_seconds": round(t_trained - t_start), "versions": versions(),
        },
    }
    picks = [(c.archive_id, c.case_id, stored.case_tiles(c_manifest)[0], None)
             for c, c_manifest in jpeg_reference_cases(args.store, [c for c in val_cases if c.tiles], 6)]
    write_json(os.path.join(ref_dir, "reference.json"), {
        "model": "cytology-origin",
        "inputs": [{"image": r[0], "case_id": r[2]} for r in refs],
        "outputs": {"probs": out.tolist()},
        **references.write_jpeg_references(ref_dir, args.store, picks, card, session),
    })
    write_json(os.path.join(out_dir, "card.json"), card)
    log(f"cytology: wrote {out_dir} ({os.path.getsize(onnx_path) / 1e6:.2f} MB) in {time.time() - t_start:.0f} s")


# ----------------------------------------------------------------------------- ptc-ln

def train_ptc(study_dir, out_dir, args):
    t_start = time.time()
    rng = np.random.default_rng(args.seed + 1)
    log("ptc-ln: loading training cases")
    train_cases = data.load_ultrasound(args.store, "train")
    spec = data.report_feature_spec([c.report for c in train_cases])
    tiles = np.stack([c.tile for c in train_cases])
    reports = np.stack([data.encode_report(c.report, spec) for c in train_cases])
    labels = np.array([c.label for c in train_cases], dtype=np.float32)
    t_cat = np.array([c.t for c in train_cases], dtype=np.int32)
    n_cat = np.array([c.n for c in train_cases], dtype=np.int32)
    width = reports.shape[1]
    log(f"ptc-ln: {len(train_cases)} training cases, report width {width}")
    mean, std = channel_stats(list(tiles))
    params = net.init_ptc(jax.random.PRNGKey(args.seed + 1), width)
    mean_j, std_j = jnp.asarray(mean), jnp.asarray(std)
    bs = args.batch

    def category_ce(logits, target):
        known = target >= 0
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(target, 0))
        return jnp.sum(ce * known) / jnp.maximum(known.sum(), 1)

    def loss_fn(params, key, x, r, y, t, n):
        x = colour_jitter(key, net.normalise(x, mean_j, std_j))
        logit, t_logits, n_logits = net.ptc_heads(params, x, r)
        bce = optax.sigmoid_binary_cross_entropy(logit, y).mean()
        return bce + 0.5 * category_ce(t_logits, t) + 0.5 * category_ce(n_logits, n)

    perm = {}

    def make_batch(epoch, b):
        if epoch not in perm:
            perm.clear()
            perm[epoch] = rng.permutation(len(tiles))
        idx = perm[epoch][b * bs:(b + 1) * bs]
        # Ultrasound frames have a fixed orientation: only horizontal flips (left/right lobes mirror).
        x = tiles[idx].copy()
        flip = rng.integers(2, size=len(idx)).astype(bool)
        x[flip] = x[flip][:, :, ::-1]
        return x, reports[idx], labels[idx], t_cat[idx], n_cat[idx]

    params = train_loop(params, loss_fn, len(tiles) // bs, make_batch, args.us_epochs, args.lr, args.seed + 1)
    t_trained = time.time()

    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, "model.onnx")
    onnx.save(export.ptc_model(jax.device_get(params), width), onnx_path)
    session = ort_session(onnx_path)

    log("ptc-ln: held-out evaluation with onnxruntime")
    val = data.load_ultrasound(args.store, "validation")
    x = to_input(np.stack([c.tile for c in val]), mean, std)
    r = np.stack([data.encode_report(c.report, spec) for c in val])
    prob, t_logits, n_logits = session.run(["prob", "t_logits", "n_logits"], {"image": x, "report": r})
    jl, jt, jn = jax.jit(lambda x, r: net.ptc_heads(params, x, r))(x, r)
    max_diff = max(float(np.abs(prob[:, 0] - np.asarray(jax.nn.sigmoid(jl))).max()),
                   float(np.abs(t_logits - np.asarray(jt)).max()),
                   float(np.abs(n_logits - np.asarray(jn)).max()))
    y = np.array([c.label for c in val])
    vt = np.array([c.t for c in val])
    vn = np.array([c.n for c in val])
    sites = np.array([c.site for c in val])
    held = {
        "n_cases": int(len(val)), "prevalence": float(y.mean()),
        "auc": metrics.auc(prob[:, 0], y),
        "per_site_auc": {s: metrics.auc(prob[sites == s, 0], y[sites == s]) for s in sorted(set(sites))},
        "t_accuracy": float(np.mean(t_logits.argmax(1)[vt >= 0] == vt[vt >= 0])),
        "n_accuracy": float(np.mean(n_logits.argmax(1)[vn >= 0] == vn[vn >= 0])),
        "onnx_vs_jax_max_abs_diff": max_diff,
    }
    log(f"ptc-ln: AUC {held['auc']:.3f} on {len(val)} cases, pT accuracy {held['t_accuracy']:.3f}, "
        f"pN accuracy {held['n_accuracy']:.3f}; "
        f"ONNX vs JAX {max_diff:.2e}")
    if max_diff > 1e-4:
        sys.exit(f"ONNX and JAX disagree by {max_diff}")

    ref_dir = os.path.join(out_dir, "reference")
    os.makedirs(ref_dir, exist_ok=True)
    picks = list(range(0, len(val), max(1, len(val) // 4)))[:4]
    for k, i in enumerate(picks):
        save_png(os.path.join(ref_dir, f"case-{k}.png"), val[i].tile)
    rx = to_input(np.stack([np.asarray(Image.open(os.path.join(ref_dir, f"case-{k}.png")).convert("RGB"))
                            for k in range(len(picks))]), mean, std)
    rr = np.stack([data.encode_report(val[i].report, spec) for i in picks])
    rp, rt, rn = session.run(["prob", "t_logits", "n_logits"], {"image": rx, "report": rr})
    card = {
        "schema_version": 1, "name": "ptc-ln", "version": PTC_VERSION, "study": "ultrasound",
        "task": "binary", "classes": ["negative", "positive"], "onnx_file": "model.onnx",
        "onnx_sha256": sha256(onnx_path),
        "inputs": [{"name": "image", "kind": "image", "shape": [-1, 3, 224, 224]},
                   {"name": "report", "kind": "report", "shape": [-1, width]}],
        "outputs": [
            {"name": "prob", "role": "score", "activation": "probabilities", "width": 1, "labels": ["positive"]},
            {"name": "t_logits", "role": "pt", "activation": "logits", "width": len(data.T_CATEGORIES),
             "labels": data.T_CATEGORIES},
            {"name": "n_logits", "role": "pn", "activation": "logits", "width": len(data.N_CATEGORIES),
             "labels": data.N_CATEGORIES},
        ],
        "tile": {"size": 224, "mode": "whole", "codec": data.tile_codec(args.store, "ultrasound")},
        "normalisation": {"scale": 255.0, "mean": mean, "std": std},
        "report_features": spec, "aggregation": "mean", "preferred_batch": 64,
        "held_out": {"split": "validation", "level": "case", **held},
        "training": {
            "synth": synth_provenance(study_dir), "epochs": args.us_epochs, "batch": bs, "learning_rate": args.lr,
            "optimizer": "adamw (cosine decay, weight decay 1e-4)", "seed": args.seed + 1,
            "train_cases": len(train_cases), "loss": "BCE(metastasis) + 0.5 CE(pT) + 0.5 CE(pN)",
            "augmentation": "horizontal flip, per-channel gain/offset",
            "architecture": "conv 4x4/4 (16) + 2 conv 3x3 (24, 32) + global avg and max pool, concat report, dense 32, three heads (metastasis, pT, pN)",
            "qc": "nodal submit's eligibility and QC (the cases and tiles of the store's manifests)",
            "train_seconds": round(t_trained - t_start), "versions": versions(),
        },
    }
    write_json(os.path.join(ref_dir, "reference.json"), {
        "model": "ptc-ln",
        "inputs": [{"image": f"case-{k}.png", "case_id": val[i].case_id, "report": val[i].report,
                    "report_vector": rr[k].tolist()} for k, i in enumerate(picks)],
        "outputs": {"prob": rp.tolist(), "t_logits": rt.tolist(), "n_logits": rn.tolist()},
        **references.write_jpeg_references(
            ref_dir, args.store, [(val[i].archive_id, val[i].case_id, val[i].tile_ref, val[i].report) for i in picks],
            card, session),
    })
    write_json(os.path.join(out_dir, "card.json"), card)
    log(f"ptc-ln: wrote {out_dir} ({os.path.getsize(onnx_path) / 1e6:.2f} MB) in {time.time() - t_start:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="the local nodal store folder the synth sites were submitted to")
    ap.add_argument("--cytology", help="the cytology study folder of a nodal synth output")
    ap.add_argument("--ultrasound", help="the ultrasound study folder of a nodal synth output")
    ap.add_argument("--models", required=True, help="the models/ folder to write into")
    ap.add_argument("--only", choices=["cytology-origin", "ptc-ln"])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--cy-epochs", type=int, default=5)
    ap.add_argument("--cy-tiles-per-image", type=int, default=3)
    ap.add_argument("--us-epochs", type=int, default=60)
    args = ap.parse_args()
    np.random.seed(args.seed)
    if args.only in (None, "cytology-origin"):
        train_cytology(args.cytology, os.path.join(args.models, "cytology-origin"), args)
    if args.only in (None, "ptc-ln"):
        train_ptc(args.ultrasound, os.path.join(args.models, "ptc-ln"), args)


if __name__ == "__main__":
    main()
