"""Small CNNs in plain JAX, written so that every op maps onto one ONNX op
(Conv, Relu, MaxPool, GlobalAveragePool, Gemm, Concat, Softmax, Sigmoid)."""

import jax
import jax.numpy as jnp
import numpy as np

# (in channels, out channels, kernel, stride, padding, 2x2 max-pool after)
CYTOLOGY_ARCH = [(3, 24, 4, 4, 0, True), (24, 48, 3, 1, 1, True), (48, 64, 3, 1, 1, False)]
PTC_ARCH = [(3, 16, 4, 4, 0, True), (16, 24, 3, 1, 1, True), (24, 32, 3, 1, 1, False)]
PTC_HIDDEN = 32
PTC_T_WIDTH = 7  # AJCC 8 pT: T1a T1b T2 T3a T3b T4a T4b
PTC_N_WIDTH = 3  # AJCC 8 pN: N0 N1a N1b


def _conv_init(key, cin, cout, k):
    w = jax.random.normal(key, (cout, cin, k, k), jnp.float32) * np.sqrt(2.0 / (cin * k * k))
    return {"w": w, "b": jnp.zeros((cout,), jnp.float32)}


def _dense_init(key, din, dout, gain=2.0):
    w = jax.random.normal(key, (dout, din), jnp.float32) * np.sqrt(gain / din)
    return {"w": w, "b": jnp.zeros((dout,), jnp.float32)}


def init_cytology(key, n_classes):
    keys = jax.random.split(key, len(CYTOLOGY_ARCH) + 1)
    convs = [_conv_init(k, a[0], a[1], a[2]) for k, a in zip(keys, CYTOLOGY_ARCH)]
    return {"convs": convs, "fc": _dense_init(keys[-1], CYTOLOGY_ARCH[-1][1], n_classes, gain=1.0)}


def init_ptc(key, report_width):
    keys = jax.random.split(key, len(PTC_ARCH) + 4)
    convs = [_conv_init(k, a[0], a[1], a[2]) for k, a in zip(keys, PTC_ARCH)]
    din = 2 * PTC_ARCH[-1][1] + report_width
    return {
        "convs": convs,
        "hidden": _dense_init(keys[-4], din, PTC_HIDDEN),
        "prob": _dense_init(keys[-3], PTC_HIDDEN, 1, gain=1.0),
        "t": _dense_init(keys[-2], PTC_HIDDEN, PTC_T_WIDTH, gain=1.0),
        "n": _dense_init(keys[-1], PTC_HIDDEN, PTC_N_WIDTH, gain=1.0),
    }


def features(convs, arch, x, with_max=False):
    """x: normalised [N, 3, 224, 224] -> [N, C] after global average pooling
    (and [N, 2C] with global max pooling appended when `with_max`)."""
    for p, (_, _, _, stride, pad, pool) in zip(convs, arch):
        x = jax.lax.conv_general_dilated(x, p["w"], (stride, stride), [(pad, pad), (pad, pad)],
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        x = jax.nn.relu(x + p["b"][None, :, None, None])
        if pool:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    if with_max:
        return jnp.concatenate([x.mean(axis=(2, 3)), x.max(axis=(2, 3))], axis=1)
    return x.mean(axis=(2, 3))


def dense(p, x):
    return x @ p["w"].T + p["b"]


def cytology_logits(params, x):
    return dense(params["fc"], features(params["convs"], CYTOLOGY_ARCH, x))


def ptc_heads(params, x, report):
    f = features(params["convs"], PTC_ARCH, x, with_max=True)
    h = jax.nn.relu(dense(params["hidden"], jnp.concatenate([f, report], axis=1)))
    return dense(params["prob"], h)[:, 0], dense(params["t"], h), dense(params["n"], h)


def normalise(x_uint8_nhwc, mean, std):
    """uint8 [N,H,W,3] -> float32 [N,3,H,W], (x/255 - mean)/std per channel."""
    x = jnp.asarray(x_uint8_nhwc, jnp.float32) / 255.0
    x = (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
    return jnp.transpose(x, (0, 3, 1, 2))
