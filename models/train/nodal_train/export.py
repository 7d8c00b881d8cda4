"""Write trained weights as an ONNX graph with onnx.helper (no converter)."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import net
from .net import CYTOLOGY_ARCH, PTC_ARCH

OPSET = 17
IR_VERSION = 8


class _Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def node(self, op, inputs, output, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def backbone(self, convs, arch, x, with_max=False):
        for i, (p, (_, _, k, stride, pad, pool)) in enumerate(zip(convs, arch)):
            w = self.init(f"conv{i}.weight", p["w"])
            b = self.init(f"conv{i}.bias", p["b"])
            x = self.node("Conv", [x, w, b], f"conv{i}", kernel_shape=[k, k], strides=[stride, stride],
                          pads=[pad, pad, pad, pad])
            x = self.node("Relu", [x], f"relu{i}")
            if pool:
                x = self.node("MaxPool", [x], f"pool{i}", kernel_shape=[2, 2], strides=[2, 2])
        avg = self.node("Flatten", [self.node("GlobalAveragePool", [x], "gap")], "gap_flat", axis=1)
        if not with_max:
            return avg
        mx = self.node("Flatten", [self.node("GlobalMaxPool", [x], "gmp")], "gmp_flat", axis=1)
        return self.node("Concat", [avg, mx], "features", axis=1)

    def gemm(self, x, p, name):
        w = self.init(f"{name}.weight", p["w"])
        b = self.init(f"{name}.bias", p["b"])
        return self.node("Gemm", [x, w, b], name, transB=1)

    def model(self, name, inputs, outputs, doc):
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nodal-train",
                                  doc_string=doc)
        model.ir_version = IR_VERSION
        onnx.checker.check_model(model, full_check=True)
        return model


def _image_input():
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])


def cytology_model(params, n_classes):
    g = _Graph()
    feats = g.backbone(params["convs"], CYTOLOGY_ARCH, "image")
    logits = g.gemm(feats, params["fc"], "logits")
    g.node("Softmax", [logits], "probs", axis=1)
    return g.model("cytology-origin", [_image_input()],
                   [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", n_classes])],
                   "nodal cytology-origin: tumour origin from FNA smear tiles")


def ptc_model(params, report_width):
    g = _Graph()
    feats = g.backbone(params["convs"], PTC_ARCH, "image", with_max=True)
    joined = g.node("Concat", [feats, "report"], "joined", axis=1)
    hidden = g.node("Relu", [g.gemm(joined, params["hidden"], "hidden")], "hidden_relu")
    g.node("Sigmoid", [g.gemm(hidden, params["prob"], "prob_logit")], "prob")
    g.gemm(hidden, params["t"], "t_logits")
    g.gemm(hidden, params["n"], "n_logits")
    return g.model("ptc-ln", [_image_input(),
                              helper.make_tensor_value_info("report", TensorProto.FLOAT, ["N", report_width])],
                   [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["N", 1]),
                    helper.make_tensor_value_info("t_logits", TensorProto.FLOAT, ["N", net.PTC_T_WIDTH]),
                    helper.make_tensor_value_info("n_logits", TensorProto.FLOAT, ["N", net.PTC_N_WIDTH])],
                   "nodal ptc-ln: lymph-node metastasis, pT and pN from ultrasound + report")
