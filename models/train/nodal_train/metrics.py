"""Case-level metrics in numpy (Mann-Whitney AUC with ties counted one half)."""

import numpy as np


def auc(scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def multiclass(probs, labels, classes):
    probs, labels = np.asarray(probs), np.asarray(labels)
    per_class = {c: auc(probs[:, k], labels == k) for k, c in enumerate(classes)}
    valid = [v for v in per_class.values() if v is not None]
    top = np.argsort(-probs, axis=1)
    return {
        "n_cases": int(len(labels)),
        "macro_auc": float(np.mean(valid)),
        "top1_accuracy": float(np.mean(top[:, 0] == labels)),
        "top3_accuracy": float(np.mean((top[:, :3] == labels[:, None]).any(axis=1))),
        "per_class_auc": per_class,
    }
