//! The class input of a class-conditional generator, as its manifest records it (the
//! manifest's `classes`).

use serde::{Deserialize, Serialize};

use super::TensorSpec;

/// Name of a class-conditional generator's label input.
pub const LABELS_INPUT: &str = "labels";

/// The class input of a class-conditional generator: `labels` int64 [N], label `i` is
/// class `names[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassesSpec {
    /// The ONNX input (int64, shape `["N"]`).
    pub input: TensorSpec,
    /// Class names in label order (non-empty, distinct).
    pub names: Vec<String>,
}

/// The labels of images `start..start + n` when none are asked for: image i gets class
/// `i mod classes`, so a set of any size is as balanced as it can be. The one default of
/// the trainer (evaluation, `fid`, `sample`) and the server.
pub fn cycle_labels(start: usize, n: usize, classes: usize) -> Vec<i64> {
    (start..start + n).map(|i| (i % classes.max(1)) as i64).collect()
}

impl ClassesSpec {
    /// The label of class `name` (exact match), if the model has it.
    pub fn label_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// What is wrong with this spec for a model whose latent input is named `latent`, if
    /// anything: the names must be non-empty and distinct, the input a named `["N"]` other
    /// than the latent.
    pub fn problem(&self, latent: &str) -> Option<String> {
        let distinct: std::collections::HashSet<&String> = self.names.iter().collect();
        if self.names.is_empty()
            || distinct.len() != self.names.len()
            || self.names.iter().any(String::is_empty)
        {
            return Some("classes.names must be non-empty, distinct, non-empty strings".into());
        }
        if self.input.name.is_empty() || self.input.name == latent || self.input.shape.len() != 1 {
            return Some(format!(
                "classes.input must be a named [\"N\"] input other than the latent's, got {:?}",
                self.input
            ));
        }
        None
    }
}
