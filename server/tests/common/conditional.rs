//! The class-conditional fixture: a models folder with a conditional generator, an
//! unconditional one, and two whose graph and manifest disagree; the service's limits.

use std::path::Path;

use pagan_server::Config;

use super::onnx::{Weights, write_model};

/// The conditional model's classes.
pub const CLASSES: [&str; 3] = ["circle", "square", "triangle"];

/// models/: `cond` (3 classes), `plain` (unconditional), and three refused at load:
/// `cond-no-labels` (classes in the manifest, no labels input in the graph),
/// `plain-two-inputs` (no classes in the manifest, a labels input in the graph) and
/// `cond-extra-class` (4 names over a graph exported with 3 classes). Returns the weights
/// of `cond`.
pub fn write_models(root: &Path) -> Weights {
    let cond = Weights::new(CLASSES.len(), 7);
    let plain = Weights::new(0, 8);
    write_model(&root.join("cond"), &cond.onnx(), Some(&CLASSES));
    write_model(&root.join("plain"), &plain.onnx(), None);
    write_model(&root.join("cond-no-labels"), &plain.onnx(), Some(&CLASSES));
    write_model(&root.join("plain-two-inputs"), &cond.onnx(), None);
    let four = [CLASSES[0], CLASSES[1], CLASSES[2], "hexagon"];
    write_model(&root.join("cond-extra-class"), &cond.onnx(), Some(&four));
    cond
}

/// Small limits; batches of 4, so labels are cut with their latents.
pub fn config(models: &Path) -> Config {
    let mut c = Config::with_models(models);
    c.threads = 1;
    c.limits.max_generate_n = 16;
    c.limits.max_score_n = 16;
    c.generate_batch = 4;
    c
}
