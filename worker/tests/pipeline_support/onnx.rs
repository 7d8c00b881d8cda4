//! Small ONNX graphs written straight as protobuf bytes (no Python, no
//! extra crates): enough to build test models that ONNX Runtime loads and
//! runs like any other, including one that fails at run time on purpose.

/// A protobuf message being written.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire)));
    }

    fn int(&mut self, field: u32, v: i64) {
        self.tag(field, 0);
        self.varint(v as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn msg(&mut self, field: u32, build: impl FnOnce(&mut Pb)) {
        let mut inner = Pb::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }
}

/// ONNX element types used here.
const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// A graph under construction.
#[derive(Default)]
pub struct Graph {
    body: Pb,
}

/// A tensor dimension: fixed, or the dynamic batch axis.
#[derive(Clone, Copy)]
pub enum Dim {
    /// The batch axis (`N`).
    Batch,
    /// A fixed size.
    Fixed(i64),
}

impl Graph {
    /// A float input or output description.
    fn value_info(field: u32, body: &mut Pb, name: &str, dims: &[Dim]) {
        body.msg(field, |v| {
            v.str(1, name);
            v.msg(2, |t| {
                t.msg(1, |tensor| {
                    tensor.int(1, FLOAT);
                    tensor.msg(2, |shape| {
                        for d in dims {
                            shape.msg(1, |dim| match d {
                                Dim::Batch => dim.str(2, "N"),
                                Dim::Fixed(n) => dim.int(1, *n),
                            });
                        }
                    });
                });
            });
        });
    }

    /// Declare a float graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        Self::value_info(11, &mut self.body, name, dims);
        self
    }

    /// Declare a float graph output.
    pub fn output(&mut self, name: &str, dims: &[Dim]) -> &mut Self {
        Self::value_info(12, &mut self.body, name, dims);
        self
    }

    /// A float constant.
    pub fn floats(&mut self, name: &str, dims: &[i64], values: &[f32]) -> &mut Self {
        assert_eq!(
            dims.iter().product::<i64>() as usize,
            values.len(),
            "{name}: dims and values disagree"
        );
        self.body.msg(5, |t| {
            for d in dims {
                t.int(1, *d);
            }
            t.int(2, FLOAT);
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            t.bytes(9, &raw);
            t.str(8, name);
        });
        self
    }

    /// A one-dimensional int64 constant.
    pub fn int64s(&mut self, name: &str, values: &[i64]) -> &mut Self {
        self.body.msg(5, |t| {
            t.int(1, values.len() as i64);
            t.int(2, INT64);
            let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            t.bytes(9, &raw);
            t.str(8, name);
        });
        self
    }

    /// A node with integer attributes.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        int_attrs: &[(&str, i64)],
    ) -> &mut Self {
        self.body.msg(1, |n| {
            for i in inputs {
                n.str(1, i);
            }
            for o in outputs {
                n.str(2, o);
            }
            n.str(
                3,
                &format!("{op}_{}", outputs.first().copied().unwrap_or("")),
            );
            n.str(4, op);
            for (name, value) in int_attrs {
                n.msg(5, |a| {
                    a.str(1, name);
                    a.int(3, *value);
                    a.int(20, 2);
                });
            }
        });
        self
    }

    /// The serialised model (IR 8, opset 13).
    pub fn model(&self, name: &str) -> Vec<u8> {
        let mut model = Pb::default();
        model.int(1, 8);
        model.str(2, "nodal-worker-tests");
        model.msg(7, |g| {
            g.0.extend_from_slice(&self.body.0);
            g.str(2, name);
        });
        model.msg(8, |op| {
            op.str(1, "");
            op.int(2, 13);
        });
        model.0
    }
}
