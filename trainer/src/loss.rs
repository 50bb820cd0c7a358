//! GAN losses on logits. They take PA targets (probability of TRUE per sample), never
//! hard-coded 1/0, because PA flips labels by the bits' parity.

use tch::{Kind, Reduction, Tensor};

use crate::pa::Targets;

/// Mean binary cross-entropy of logits against targets in [0, 1].
pub fn bce(logits: &Tensor, target: &Tensor) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Mean)
}

/// Non-saturating D loss: BCE on reals plus BCE on fakes, each against its PA target.
pub fn ns_d_loss(real_logits: &Tensor, fake_logits: &Tensor, t: &Targets) -> Tensor {
    bce(real_logits, &t.real) + bce(fake_logits, &t.fake)
}

/// Non-saturating G loss: BCE on G's fakes against the flipped PA label.
pub fn ns_g_loss(fake_logits: &Tensor, t: &Targets) -> Tensor {
    bce(fake_logits, &t.generator)
}

/// Fraction of logits on the side of their target (logit > 0 means TRUE).
pub fn accuracy(logits: &Tensor, target: &Tensor) -> Tensor {
    logits
        .gt(0.0)
        .to_kind(Kind::Float)
        .eq_tensor(target)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
}
