"""Write a small ONNX model shaped as `torch.onnx.export` writes one, with
onnx.helper (no torch needed): the test fixture for `nodal model card` and
the example of docs/models.md.

    image [batch, 3, 224, 224] -> GlobalAveragePool -> Flatten -> Gemm -> Softmax -> probs [batch, K]

With --report F the graph takes a second input, report [batch, F], joined
to the pooled image features before the Gemm (a multimodal model). The
weights are drawn from --seed, so the scores differ from tile to tile.

    python export_like_torch.py OUT.onnx --classes 8 [--report 28]
        [--static-batch N] [--height H] [--logits]
"""

import argparse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--classes", type=int, required=True, help="output width")
    p.add_argument("--report", type=int, default=0, help="report input width (0: none)")
    p.add_argument("--static-batch", type=int, default=0, help="fix the batch axis (0: dynamic)")
    p.add_argument("--height", type=int, default=224)
    p.add_argument("--logits", action="store_true", help="no Softmax: the output is logits")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()

    batch = a.static_batch if a.static_batch else "batch"
    rng = np.random.default_rng(a.seed)
    features = 3 + a.report
    w = (rng.standard_normal((features, a.classes)) * 2.0).astype(np.float32)
    b = (rng.standard_normal(a.classes) * 0.1).astype(np.float32)

    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, a.height, 224])]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    ]
    joined = "flat"
    if a.report:
        inputs.append(helper.make_tensor_value_info("report", TensorProto.FLOAT, [batch, a.report]))
        nodes.append(helper.make_node("Concat", ["flat", "report"], ["joined"], axis=1))
        joined = "joined"
    nodes.append(helper.make_node("Gemm", [joined, "W", "B"], ["logits"]))
    last = "logits"
    if not a.logits:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
        last = "probs"
    graph = helper.make_graph(
        nodes,
        "exported",
        inputs,
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [batch, a.classes])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(
        graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, a.out)


if __name__ == "__main__":
    main()
