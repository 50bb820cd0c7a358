//! The class-conditional GAN's `train` flags (flattened into `train`'s arguments).

use clap::Args;
use pagan_trainer::config::{DCond, GCond};

use super::choice;

/// How G and D take the class label.
#[derive(Args, Debug, Clone, Copy)]
pub struct CondArgs {
    /// Train a class-conditional GAN on the dataset's labels (mnist, fashion-mnist, cifar10, or folder:PATH
    /// with one subfolder per class): G takes the class as a one-hot vector or a learned embedding beside z.
    #[arg(long, value_parser = choice::<GCond>())]
    cond: Option<GCond>,
    /// How D takes the class (with --cond): one-hot maps as input channels, or a projection head
    /// (Miyato & Koyama 2018). Default: project.
    #[arg(long, value_parser = choice::<DCond>(), requires = "cond")]
    d_cond: Option<DCond>,
}

impl CondArgs {
    /// G's input and D's head, when the run is conditional.
    pub fn config(&self) -> Option<(GCond, DCond)> {
        self.cond.map(|g| (g, self.d_cond.unwrap_or(DCond::Project)))
    }
}
