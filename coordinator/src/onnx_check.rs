//! A cheap check that a file is an ONNX model, without loading ONNX Runtime
//! (the coordinator never runs models): the bytes must be a well-formed
//! protobuf `ModelProto` whose top level holds an `ir_version` and a `graph`.
//! It catches a wrong file behind a model card (a JPEG, a text file, a
//! truncated download) before workers are sent to load it.

/// `ModelProto.ir_version` (varint).
const IR_VERSION: u64 = 1;
/// `ModelProto.graph` (length-delimited).
const GRAPH: u64 = 7;
/// Highest IR version this check accepts (ONNX 1.18 writes 11).
const MAX_IR_VERSION: u64 = 64;

/// Why `bytes` are not an ONNX model, or `None` when they look like one.
pub fn onnx_problem(bytes: &[u8]) -> Option<String> {
    let mut at = 0;
    let mut ir_version = None;
    let mut graph = false;
    while at < bytes.len() {
        let field_start = at;
        let Some(tag) = varint(bytes, &mut at) else {
            return Some(format!(
                "not an ONNX model: malformed protobuf at byte {field_start}"
            ));
        };
        let (field, wire) = (tag >> 3, tag & 7);
        if field == 0 {
            return Some(format!(
                "not an ONNX model: malformed protobuf at byte {field_start} (field 0)"
            ));
        }
        let skipped = match wire {
            0 => varint(bytes, &mut at).map(|v| {
                if field == IR_VERSION {
                    ir_version = Some(v);
                }
            }),
            1 => advance(bytes, &mut at, 8),
            2 => varint(bytes, &mut at).and_then(|len| {
                if field == GRAPH {
                    graph = true;
                }
                usize::try_from(len)
                    .ok()
                    .and_then(|len| advance(bytes, &mut at, len))
            }),
            5 => advance(bytes, &mut at, 4),
            _ => None,
        };
        if skipped.is_none() {
            return Some(format!(
                "not an ONNX model: malformed or truncated protobuf field {field} at byte {field_start}"
            ));
        }
    }
    match (ir_version, graph) {
        (None, _) if bytes.is_empty() => Some("not an ONNX model: the file is empty".into()),
        (None, _) => Some("not an ONNX model: no ir_version".into()),
        (Some(v), _) if v == 0 || v > MAX_IR_VERSION => {
            Some(format!("not an ONNX model: ir_version {v} is implausible"))
        }
        (Some(_), false) => Some("not an ONNX model: no graph".into()),
        (Some(_), true) => None,
    }
}

/// Read a base-128 varint at `*at`, moving past it.
fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Move `*at` past `n` bytes, if there are that many.
fn advance(bytes: &[u8], at: &mut usize, n: usize) -> Option<()> {
    let end = at.checked_add(n).filter(|&end| end <= bytes.len())?;
    *at = end;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHIPPED: &[u8] = include_bytes!("../../models/ptc-ln/model.onnx");

    #[test]
    fn shipped_models_pass() {
        assert_eq!(onnx_problem(SHIPPED), None);
        assert_eq!(
            onnx_problem(include_bytes!("../../models/cytology-origin/model.onnx")),
            None
        );
    }

    #[test]
    fn other_files_are_refused() {
        for (bytes, says) in [
            (&b""[..], "empty"),
            (b"this is a text file\n", "not an ONNX model"),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "not an ONNX model"),
            (b"\x08\x07", "no graph"),
            (b"\x3a\x00", "no ir_version"),
        ] {
            let problem = onnx_problem(bytes).unwrap_or_default();
            assert!(problem.contains(says), "{bytes:?}: {problem}");
        }
        let truncated = &SHIPPED[..SHIPPED.len() / 2];
        assert!(
            onnx_problem(truncated)
                .unwrap_or_default()
                .contains("truncated")
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = onnx_problem(&bytes);
        }
    }
}
