//! Salimans et al.'s techniques as `train` flags (flattened into `train`'s arguments).

use clap::Args;
use pagan_trainer::config::TricksConfig;

/// Feature matching, historical averaging and the minibatch standard deviation.
#[derive(Args, Debug, Clone, Copy)]
pub struct TricksArgs {
    /// Feature matching (Salimans et al. 2016): G also minimises ||E f(real) - E f(fake)||² of D's features
    /// at --fm-layer, with this weight (0 = off).
    #[arg(long, default_value_t = 0.0)]
    feature_matching: f64,
    /// D conv (0-6) whose output features feature matching compares (6: the last, before the linear layer).
    #[arg(long, default_value_t = 6)]
    fm_layer: usize,
    /// Weight of the adversarial G loss kept beside feature matching (1: all of it; 0: feature matching alone).
    #[arg(long, default_value_t = 1.0)]
    fm_adversarial: f64,
    /// Historical averaging on G: penalty W * ||θ - mean of θ's past values||² (0 = off).
    #[arg(long, default_value_t = 0.0)]
    hist_avg_g: f64,
    /// Historical averaging on D (0 = off).
    #[arg(long, default_value_t = 0.0)]
    hist_avg_d: f64,
    /// A minibatch standard-deviation feature into D's final linear layer (D sees each batch's spread).
    #[arg(long)]
    minibatch_std: bool,
}

impl TricksArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> TricksConfig {
        TricksConfig {
            feature_matching: self.feature_matching,
            fm_layer: self.fm_layer,
            fm_adversarial: self.fm_adversarial,
            hist_avg_g: self.hist_avg_g,
            hist_avg_d: self.hist_avg_d,
            minibatch_std: self.minibatch_std,
        }
    }
}
