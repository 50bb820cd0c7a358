//! Class conditioning (`--cond`, `--d-cond`): how G and D take a class label
//! (Mirza & Osindero 2014; the projection discriminator of Miyato & Koyama 2018).

use serde::{Deserialize, Serialize};

use super::choices::Choice;

/// How the generator takes the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GCond {
    /// A one-hot vector concatenated to z.
    Onehot,
    /// A learned embedding (`EMBED_DIM` values per class) concatenated to z.
    Embed,
}

impl Choice for GCond {
    const ALL: &'static [(&'static str, Self)] = &[("onehot", Self::Onehot), ("embed", Self::Embed)];
    const HELP: &'static [&'static str] = &[
        "a one-hot class vector concatenated to z",
        "a learned class embedding concatenated to z",
    ];
}

/// How the discriminator takes the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DCond {
    /// One-hot maps as extra input channels of D's first conv.
    Concat,
    /// A projection head: <embed(y), features> added to the logit (Miyato & Koyama 2018).
    Project,
}

impl Choice for DCond {
    const ALL: &'static [(&'static str, Self)] = &[("concat", Self::Concat), ("project", Self::Project)];
    const HELP: &'static [&'static str] = &[
        "one-hot class maps as extra input channels of D",
        "a projection head: the logit gains <embed(y), D's last features> (spectrally normalised)",
    ];
}

macro_rules! word_traits {
    ($t:ty, $what:literal) => {
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse_word(s, $what)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}
word_traits!(GCond, "generator conditioning");
word_traits!(DCond, "discriminator conditioning");

/// Values per class of G's learned embedding (`--cond embed`).
pub const EMBED_DIM: i64 = 32;

/// A class-conditional run: how each network takes the class, and the classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondConfig {
    /// G's input.
    pub g: GCond,
    /// D's head.
    pub d: DCond,
    /// Class names in label order (from the dataset; empty when it has no labels, which
    /// `validate` refuses).
    pub classes: Vec<String>,
}

impl CondConfig {
    /// Number of classes.
    pub fn n_classes(&self) -> i64 {
        self.classes.len() as i64
    }
}
