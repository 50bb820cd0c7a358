//! Tiny generator models written byte by byte (ONNX is protobuf; the few messages needed
//! are encoded here, so the tests need neither Python nor the trainer), with their
//! manifests, and the same generators computed in f64 to compare with.
//!
//! Conditional: `images = tanh(reshape(concat(z, table[labels]) @ w + b))`, the graph
//! `Gather(table, labels) -> Concat(z, .) -> Gemm -> Reshape -> Tanh`; unconditional:
//! `tanh(reshape(z @ w + b))`.

use std::path::Path;

use pagan_shared::manifest::{
    ClassesSpec, Dim, FORMAT_VERSION, GENERATOR_FILE, ImageSpec, LABELS_INPUT, LatentSpec, MANIFEST_FILE,
    ModelKind, ModelManifest, OnnxSpec, TensorSpec, TrainingSummary, VALUE_RANGE, sha256_hex,
};

/// Latent size of the tiny generators.
pub const LATENT: usize = 4;
/// Width of a class embedding.
pub const EMBED: usize = 3;
/// Image shape `[C, H, W]`.
pub const IMAGE: [usize; 3] = [1, 4, 4];
/// Values per image.
pub const PIXELS: usize = IMAGE[0] * IMAGE[1] * IMAGE[2];

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

    fn int(mut self, field: u64, v: i64) -> Self {
        self.varint(field << 3);
        self.varint(v as u64);
        self
    }

    fn bytes(mut self, field: u64, b: &[u8]) -> Self {
        self.varint((field << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, field: u64, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn msg(self, field: u64, m: Pb) -> Self {
        self.bytes(field, &m.0)
    }
}

const FLOAT: i64 = 1;
const INT64: i64 = 7;

/// TensorProto: dims (1), data_type (2), name (8), raw_data (9).
fn tensor(name: &str, dims: &[usize], data_type: i64, raw: Vec<u8>) -> Pb {
    let t = dims.iter().fold(Pb::default(), |t, &d| t.int(1, d as i64));
    t.int(2, data_type).str(8, name).bytes(9, &raw)
}

fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> Pb {
    tensor(
        name,
        dims,
        FLOAT,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// ValueInfoProto of a tensor: `None` dims are the symbolic batch `N`.
fn value_info(name: &str, elem: i64, dims: &[Option<usize>]) -> Pb {
    let shape = dims.iter().fold(Pb::default(), |s, d| {
        let dim = match d {
            Some(v) => Pb::default().int(1, *v as i64),
            None => Pb::default().str(2, "N"),
        };
        s.msg(1, dim)
    });
    let tensor_type = Pb::default().int(1, elem).msg(2, shape);
    Pb::default()
        .str(1, name)
        .msg(2, Pb::default().msg(1, tensor_type))
}

/// NodeProto with integer attributes.
fn node(op: &str, inputs: &[&str], outputs: &[&str], ints: &[(&str, i64)]) -> Pb {
    let n = inputs.iter().fold(Pb::default(), |n, i| n.str(1, i));
    let n = outputs.iter().fold(n, |n, o| n.str(2, o)).str(4, op);
    ints.iter().fold(n, |n, (name, v)| {
        n.msg(5, Pb::default().str(1, name).int(3, *v).int(20, 2))
    })
}

/// The weights of a tiny generator (deterministic from `seed`).
pub struct Weights {
    /// Class embeddings `[K, EMBED]` (empty: unconditional).
    pub table: Vec<f32>,
    /// `[in, PIXELS]`, `in` = LATENT (+ EMBED when conditional).
    pub w: Vec<f32>,
    /// `[PIXELS]`.
    pub b: Vec<f32>,
    /// Number of classes (0: unconditional).
    pub k: usize,
}

impl Weights {
    /// Weights for `k` classes (0: unconditional).
    pub fn new(k: usize, seed: u64) -> Self {
        let mut r = pagan_shared::rng::SplitMix64::new(seed);
        let mut draw = |n: usize, scale: f32| -> Vec<f32> {
            (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
        };
        let inputs = LATENT + if k > 0 { EMBED } else { 0 };
        Weights {
            table: draw(k * EMBED, 2.0),
            w: draw(inputs * PIXELS, 0.8),
            b: draw(PIXELS, 0.1),
            k,
        }
    }

    fn inputs(&self) -> usize {
        LATENT + if self.k > 0 { EMBED } else { 0 }
    }

    /// The ONNX graph of these weights.
    pub fn onnx(&self) -> Vec<u8> {
        let [c, h, w] = IMAGE;
        let shape: Vec<u8> = [-1i64, c as i64, h as i64, w as i64]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut g = Pb::default();
        let gemm_in = if self.k > 0 {
            g = g
                .msg(
                    1,
                    node("Gather", &["table", LABELS_INPUT], &["emb"], &[("axis", 0)]),
                )
                .msg(1, node("Concat", &["z", "emb"], &["h"], &[("axis", 1)]));
            "h"
        } else {
            "z"
        };
        g = g
            .msg(1, node("Gemm", &[gemm_in, "w", "b"], &["y"], &[]))
            .msg(1, node("Reshape", &["y", "shape"], &["r"], &[]))
            .msg(1, node("Tanh", &["r"], &["images"], &[]))
            .str(2, "tiny");
        if self.k > 0 {
            g = g.msg(5, f32_tensor("table", &[self.k, EMBED], &self.table));
        }
        g = g
            .msg(5, f32_tensor("w", &[self.inputs(), PIXELS], &self.w))
            .msg(5, f32_tensor("b", &[PIXELS], &self.b))
            .msg(5, tensor("shape", &[4], INT64, shape))
            .msg(11, value_info("z", FLOAT, &[None, Some(LATENT)]));
        if self.k > 0 {
            g = g.msg(11, value_info(LABELS_INPUT, INT64, &[None]));
        }
        g = g.msg(
            12,
            value_info("images", FLOAT, &[None, Some(c), Some(h), Some(w)]),
        );
        let mut model = Pb::default()
            .int(1, 8)
            .str(2, "pagan-server tests")
            .msg(7, g)
            .msg(8, Pb::default().str(1, "").int(2, 17));
        if self.k > 0 {
            // metadata_props: the class count, as the trainer's export records it.
            let entry = Pb::default()
                .str(1, pagan_shared::manifest::CLASSES_METADATA)
                .str(2, &self.k.to_string());
            model = model.msg(14, entry);
        }
        model.0
    }

    /// Images `[n, C, H, W]` for latents `z` and (conditional) `labels`, in f64.
    pub fn forward(&self, z: &[f32], labels: Option<&[i64]>) -> Vec<f64> {
        let n = z.len() / LATENT;
        let mut out = Vec::with_capacity(n * PIXELS);
        for i in 0..n {
            let mut x: Vec<f64> = z[i * LATENT..(i + 1) * LATENT]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            if let Some(l) = labels {
                let c = l[i] as usize;
                x.extend(
                    self.table[c * EMBED..(c + 1) * EMBED]
                        .iter()
                        .map(|&v| f64::from(v)),
                );
            }
            for p in 0..PIXELS {
                let s: f64 = x
                    .iter()
                    .enumerate()
                    .map(|(j, xj)| xj * f64::from(self.w[j * PIXELS + p]))
                    .sum();
                out.push((s + f64::from(self.b[p])).tanh());
            }
        }
        out
    }
}

/// Writes model folder `dir` (`manifest.json` + `generator.onnx`): the graph `onnx`, and
/// a manifest that declares `classes` (None: unconditional).
pub fn write_model(dir: &Path, onnx: &[u8], classes: Option<&[&str]>) {
    std::fs::create_dir_all(dir).expect("model dir");
    std::fs::write(dir.join(GENERATOR_FILE), onnx).expect("onnx");
    let name = dir.file_name().expect("name").to_string_lossy().into_owned();
    let [c, h, w] = IMAGE;
    let manifest = ModelManifest {
        name,
        kind: ModelKind::Generator,
        format_version: FORMAT_VERSION,
        latent: LatentSpec {
            size: LATENT,
            prior: pagan_shared::latent::PRIOR.into(),
        },
        image: ImageSpec {
            channels: c,
            height: h,
            width: w,
        },
        value_range: VALUE_RANGE,
        dataset: "synthetic".into(),
        training: TrainingSummary {
            iterations: 0,
            pa_mode: "off".into(),
            pa_level_history: Vec::new(),
            seed: 0,
            train_seconds: 0.0,
            final_fid: None,
            final_kid: None,
            evaluations: Vec::new(),
        },
        onnx: OnnxSpec {
            file: GENERATOR_FILE.into(),
            opset: 17,
            ir_version: 8,
            input: TensorSpec {
                name: "z".into(),
                shape: vec![Dim::Sym("N".into()), Dim::Fixed(LATENT as i64)],
            },
            output: TensorSpec {
                name: "images".into(),
                shape: vec![
                    Dim::Sym("N".into()),
                    Dim::Fixed(c as i64),
                    Dim::Fixed(h as i64),
                    Dim::Fixed(w as i64),
                ],
            },
        },
        classes: classes.map(|names| ClassesSpec {
            input: TensorSpec {
                name: LABELS_INPUT.into(),
                shape: vec![Dim::Sym("N".into())],
            },
            names: names.iter().map(|s| (*s).to_owned()).collect(),
        }),
        sha256: sha256_hex(onnx),
        created_by: "pagan-server tests".into(),
    };
    manifest.write(&dir.join(MANIFEST_FILE)).expect("manifest");
}
