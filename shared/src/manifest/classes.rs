//! The class input of a class-conditional generator, as its manifest records it (the
//! manifest's `classes`).

use serde::{Deserialize, Serialize};

use super::TensorSpec;

/// Name of a class-conditional generator's label input.
pub const LABELS_INPUT: &str = "labels";

/// ONNX metadata key under which the export records the graph's number of classes.
pub const CLASSES_METADATA: &str = "pagan.classes";

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
/// the trainer (evaluation, `fid`, `sample --z`) and the server (`sample`'s PNG grid is
/// one row per class instead).
pub fn cycle_labels(start: usize, n: usize, classes: usize) -> Vec<i64> {
    (start..start + n).map(|i| (i % classes.max(1)) as i64).collect()
}

impl ClassesSpec {
    /// The label of class `name` (exact match), if the model has it.
    pub fn label_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// What is wrong with these names for a graph that records `recorded` classes in its
    /// metadata ([`CLASSES_METADATA`]), if anything: a label past the graph's table would
    /// fail inside the model instead of being refused as a bad request.
    pub fn count_problem(&self, recorded: &str) -> Option<String> {
        match recorded.trim().parse::<usize>() {
            Ok(k) if k == self.names.len() => None,
            Ok(k) => Some(format!(
                "the manifest names {} classes, the graph was exported with {k}",
                self.names.len()
            )),
            Err(_) => Some(format!(
                "the graph's {CLASSES_METADATA} metadata {recorded:?} is not a count"
            )),
        }
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
        let batch_axis = matches!(self.input.shape.as_slice(), [super::Dim::Sym(n)] if !n.is_empty());
        if self.input.name.is_empty() || self.input.name == latent || !batch_axis {
            return Some(format!(
                "classes.input must be a named [\"N\"] input other than the latent's, got {:?}",
                self.input
            ));
        }
        None
    }
}
