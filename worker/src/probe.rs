//! A start-up check that ONNX Runtime can make sessions on the chosen
//! device: a session for a one-node graph (`y = Identity(x)`), written here
//! as ONNX protobuf bytes. With `--device cuda` on a machine without a
//! usable GPU this fails at start with the provider's own reason, instead of
//! at the first job.

use crate::error::WorkerError;
use crate::runtime::Runtime;

/// Make (and drop) a session for the probe graph with `runtime`'s settings.
pub fn check_device(runtime: &Runtime) -> Result<(), WorkerError> {
    runtime.session(&identity_graph()).map(drop)
}

/// Append a protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append a length-delimited field.
fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push(number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Append a varint field.
fn int_field(out: &mut Vec<u8>, number: u8, v: u64) {
    out.push(number << 3);
    varint(out, v);
}

/// `ValueInfoProto` of a float tensor of shape `[1]`.
fn float_scalar_info(name: &str) -> Vec<u8> {
    let mut dim = Vec::new();
    int_field(&mut dim, 1, 1);
    let mut shape = Vec::new();
    field(&mut shape, 1, &dim);
    let mut tensor = Vec::new();
    int_field(&mut tensor, 1, 1); // elem_type FLOAT
    field(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    field(&mut ty, 1, &tensor);
    let mut info = Vec::new();
    field(&mut info, 1, name.as_bytes());
    field(&mut info, 2, &ty);
    info
}

/// The ONNX model `y = Identity(x)` (IR 8, opset 13).
fn identity_graph() -> Vec<u8> {
    let mut node = Vec::new();
    field(&mut node, 1, b"x");
    field(&mut node, 2, b"y");
    field(&mut node, 4, b"Identity");
    let mut graph = Vec::new();
    field(&mut graph, 1, &node);
    field(&mut graph, 2, b"nodal-probe");
    field(&mut graph, 11, &float_scalar_info("x"));
    field(&mut graph, 12, &float_scalar_info("y"));
    let mut opset = Vec::new();
    field(&mut opset, 1, b"");
    int_field(&mut opset, 2, 13);
    let mut model = Vec::new();
    int_field(&mut model, 1, 8);
    field(&mut model, 7, &graph);
    field(&mut model, 8, &opset);
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeConfig;

    #[test]
    fn the_probe_graph_loads_on_the_cpu() {
        let runtime = Runtime::init(RuntimeConfig {
            intra_threads: 1,
            ..RuntimeConfig::default()
        })
        .expect("ONNX Runtime loads");
        check_device(&runtime).expect("a CPU session for the probe graph");
    }
}
