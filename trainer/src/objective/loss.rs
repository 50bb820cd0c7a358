//! GAN losses on logits and D's regularisers, in one place. Every loss takes the PA
//! targets (probability of TRUE per sample), never hard-coded 1/0, because PA flips labels
//! by the bits' parity: a TRUE target means "push D up" for every loss family.

use tch::{Kind, Reduction, Tensor};

use super::pa::Targets;
use crate::config::{GpKind, LossKind};
use crate::model::Discriminator;

/// Mean binary cross-entropy of logits against targets in [0, 1].
pub fn bce(logits: &Tensor, target: &Tensor) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Mean)
}

/// +1 for a TRUE target, -1 for FAKE (targets in {0, 1}; smoothed targets keep their sign).
fn sign(target: &Tensor) -> Tensor {
    target.ge(0.5).to_kind(Kind::Float) * 2.0 - 1.0
}

/// Loss of D (or G) on one set of logits against per-sample targets.
fn side(kind: LossKind, logits: &Tensor, target: &Tensor) -> Tensor {
    match kind {
        LossKind::Ns => bce(logits, target),
        LossKind::Hinge => (-(sign(target) * logits) + 1.0).relu().mean(Kind::Float),
        LossKind::Lsgan => (logits - target).square().mean(Kind::Float) * 0.5,
        LossKind::WganGp => (-(sign(target) * logits)).mean(Kind::Float),
    }
}

/// D's loss: its loss on reals plus on fakes, each against its PA target.
pub fn d_loss(kind: LossKind, real_logits: &Tensor, fake_logits: &Tensor, t: &Targets) -> Tensor {
    side(kind, real_logits, &t.real) + side(kind, fake_logits, &t.fake)
}

/// G's loss on its fakes against the flipped PA label (non-saturating for ns; -D for
/// hinge and WGAN, as usual).
pub fn g_loss(kind: LossKind, fake_logits: &Tensor, t: &Targets) -> Tensor {
    match kind {
        LossKind::Hinge => (-(sign(&t.generator) * fake_logits)).mean(Kind::Float),
        _ => side(kind, fake_logits, &t.generator),
    }
}

/// One-sided label smoothing of D's targets: TRUE (1) becomes `1 - alpha`, FAKE stays 0.
pub fn smooth(t: &Targets, alpha: f64) -> Targets {
    Targets {
        real: &t.real * (1.0 - alpha),
        fake: &t.fake * (1.0 - alpha),
        generator: t.generator.shallow_clone(),
    }
}

/// What D is given beside the images: the pairs' PA bits and, for a class-conditional D,
/// their labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    /// PA bits [N, models*max_level].
    pub bits: Option<&'a Tensor>,
    /// Class labels [N] (int64).
    pub labels: Option<&'a Tensor>,
}

/// Per-sample squared L2 norm of D's input gradient at `x`, differentiable (for
/// penalties): [N] for a plain D, [N, models] for a stack (each model's own block).
fn input_grad_norm2(d: &Discriminator, x: &Tensor, bits: Option<&Tensor>, labels: Option<&Tensor>) -> Tensor {
    let x = x.detach().set_requires_grad(true);
    // Penalty forwards do not advance spectral norm's power iteration or use dropout.
    let out = d.forward_labelled(&x, bits, labels, false);
    let g = Tensor::run_backward(&[out.sum(Kind::Float)], &[&x], true, true);
    if d.models == 1 {
        return g[0]
            .square()
            .flatten(1, -1)
            .sum_dim_intlist(1, false, Kind::Float);
    }
    let n = x.size()[0];
    g[0].square()
        .view([n, d.models, -1])
        .sum_dim_intlist(2, false, Kind::Float)
}

/// The gradient penalty term (`None` when `kind` is None), summed over a stack's models.
/// `bits` are the pair's PA bits: an interpolate of a real and a fake of one pair sees
/// their shared bits, and a class-conditional D the pair's `labels` (a fake is generated
/// with its real's label). `eps`: the 1-centred penalty's interpolation weights per model
/// ([N, 1, 1, 1] each), required for a stack; without them a plain D draws its own.
pub fn gradient_penalty(
    kind: GpKind,
    weight: f64,
    d: &Discriminator,
    real: &Tensor,
    fake: &Tensor,
    given: Given<'_>,
    eps: Option<&[&Tensor]>,
) -> Option<Tensor> {
    let Given { bits, labels } = given;
    let per_model = |t: Tensor, f: &dyn Fn(Tensor) -> Tensor| {
        if d.models == 1 {
            return f(t);
        }
        let parts: Vec<Tensor> = (0..d.models).map(|k| f(t.select(1, k))).collect();
        Tensor::stack(&parts, 0).sum(Kind::Float)
    };
    match kind {
        GpKind::None => None,
        GpKind::OneCentred => {
            let x = match eps {
                Some(eps) => {
                    let c = real.size()[1] / d.models;
                    let blocks: Vec<Tensor> = eps
                        .iter()
                        .enumerate()
                        .map(|(k, e)| {
                            let (r, f) = (
                                real.narrow(1, k as i64 * c, c),
                                fake.detach().narrow(1, k as i64 * c, c),
                            );
                            *e * r + (1.0 - *e) * f
                        })
                        .collect();
                    if blocks.len() == 1 {
                        blocks[0].shallow_clone()
                    } else {
                        Tensor::cat(&blocks, 1)
                    }
                }
                None => {
                    let n = real.size()[0];
                    let eps = Tensor::rand([n, 1, 1, 1], (Kind::Float, real.device()));
                    &eps * real + (1.0 - &eps) * fake.detach()
                }
            };
            let norm2 = input_grad_norm2(d, &x, bits, labels);
            Some(per_model(norm2, &|n2| {
                ((n2 + 1e-12).sqrt() - 1.0).square().mean(Kind::Float) * weight
            }))
        }
        GpKind::ZeroCentred => {
            let norm2 = input_grad_norm2(d, real, bits, labels);
            Some(per_model(norm2, &|n2| n2.mean(Kind::Float) * (weight / 2.0)))
        }
    }
}

/// Fraction of logits on the side of their target (logit > 0 means TRUE).
pub fn accuracy(logits: &Tensor, target: &Tensor) -> Tensor {
    logits
        .gt(0.0)
        .to_kind(Kind::Float)
        .eq_tensor(&target.ge(0.5).to_kind(Kind::Float))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn val(x: &Tensor) -> f64 {
        x.double_value(&[])
    }

    /// Logits and targets with PA flips: a real labelled FAKE and a fake labelled TRUE.
    fn case() -> (Tensor, Tensor, Targets) {
        let lr = t(&[2.0, -0.5, 0.3]);
        let lf = t(&[-1.0, 1.5, 0.0]);
        let tg = Targets {
            real: t(&[1.0, 0.0, 1.0]),
            fake: t(&[0.0, 1.0, 0.0]),
            generator: t(&[1.0, 0.0, 1.0]),
        };
        (lr, lf, tg)
    }

    fn sp(x: f64) -> f64 {
        (1.0 + x.exp()).ln()
    }

    #[test]
    fn each_loss_matches_its_formula_on_known_logits() {
        let (lr, lf, tg) = case();
        let r = [2.0f64, -0.5, 0.3];
        let f = [-1.0f64, 1.5, 0.0];
        let tr = [1.0f64, 0.0, 1.0];
        let tf = [0.0f64, 1.0, 0.0];
        let tgen = [1.0f64, 0.0, 1.0];
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let s = |t: f64| if t >= 0.5 { 1.0 } else { -1.0 };
        // BCE with logits: t * softplus(-x) + (1 - t) * softplus(x).
        let bce = |x: &[f64], t: &[f64]| {
            mean(
                x.iter()
                    .zip(t)
                    .map(|(x, t)| t * sp(-x) + (1.0 - t) * sp(*x))
                    .collect(),
            )
        };
        let cases: [(LossKind, f64, f64); 4] = [
            (LossKind::Ns, bce(&r, &tr) + bce(&f, &tf), bce(&f, &tgen)),
            (
                LossKind::Hinge,
                mean(
                    r.iter()
                        .zip(&tr)
                        .map(|(x, t)| (1.0 - s(*t) * x).max(0.0))
                        .collect(),
                ) + mean(
                    f.iter()
                        .zip(&tf)
                        .map(|(x, t)| (1.0 - s(*t) * x).max(0.0))
                        .collect(),
                ),
                mean(f.iter().zip(&tgen).map(|(x, t)| -s(*t) * x).collect()),
            ),
            (
                LossKind::Lsgan,
                0.5 * mean(r.iter().zip(&tr).map(|(x, t)| (x - t).powi(2)).collect())
                    + 0.5 * mean(f.iter().zip(&tf).map(|(x, t)| (x - t).powi(2)).collect()),
                0.5 * mean(f.iter().zip(&tgen).map(|(x, t)| (x - t).powi(2)).collect()),
            ),
            (
                LossKind::WganGp,
                mean(r.iter().zip(&tr).map(|(x, t)| -s(*t) * x).collect())
                    + mean(f.iter().zip(&tf).map(|(x, t)| -s(*t) * x).collect()),
                mean(f.iter().zip(&tgen).map(|(x, t)| -s(*t) * x).collect()),
            ),
        ];
        for (kind, want_d, want_g) in cases {
            let d = val(&d_loss(kind, &lr, &lf, &tg));
            let g = val(&g_loss(kind, &lf, &tg));
            assert!((d - want_d).abs() < 1e-6, "{kind:?} D: {d} vs {want_d}");
            assert!((g - want_g).abs() < 1e-6, "{kind:?} G: {g} vs {want_g}");
        }
        // Without PA (real TRUE, fake FAKE, G TRUE) WGAN reduces to -E[D(x)] + E[D(G(z))].
        let plain = Targets {
            real: t(&[1.0, 1.0, 1.0]),
            fake: t(&[0.0, 0.0, 0.0]),
            generator: t(&[1.0, 1.0, 1.0]),
        };
        let w = val(&d_loss(LossKind::WganGp, &lr, &lf, &plain));
        assert!((w - (-(2.0 - 0.5 + 0.3) / 3.0 + (-1.0 + 1.5) / 3.0)).abs() < 1e-6);
    }

    #[test]
    fn label_smoothing_is_one_sided() {
        let (_, _, tg) = case();
        let s = smooth(&tg, 0.1);
        let v: Vec<f32> = Vec::try_from(&s.real).expect("values");
        assert_eq!(v, vec![0.9, 0.0, 0.9]);
        let v: Vec<f32> = Vec::try_from(&s.fake).expect("values");
        assert_eq!(v, vec![0.0, 0.9, 0.0]);
        // G's target is untouched; accuracy still reads 0.9 as TRUE.
        assert_eq!(
            Vec::<f32>::try_from(&s.generator).expect("values"),
            vec![1.0, 0.0, 1.0]
        );
        assert!((val(&accuracy(&t(&[1.0, -1.0, 1.0]), &s.real)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn gradient_penalties_match_finite_differences() {
        use crate::config::Preset;
        use tch::nn::VarStore;
        let _rng = crate::rng::torch_rng_lock();
        tch::manual_seed(0);
        let arch = Preset::Demo.arch([1, 28, 28]);
        let vs = VarStore::new(Device::Cpu);
        let d = Discriminator::new(&(vs.root() / "d"), &arch, Some(0), 2, 1);
        let real = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let bits = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0]).view([2, 2]);
        // R1: weight/2 * mean ||grad||^2; check ||grad||^2 of sample 0 by central differences
        // along the gradient direction (D is piecewise linear, so this is exact up to rounding).
        let gp = gradient_penalty(
            GpKind::ZeroCentred,
            2.0,
            &d,
            &real,
            &real,
            Given {
                bits: Some(&bits),
                labels: None,
            },
            None,
        )
        .expect("gp");
        let x = real.detach().set_requires_grad(true);
        let out = d.forward(&x, Some(&bits), false);
        let g = Tensor::run_backward(&[out.sum(Kind::Float)], &[&x], false, false)[0].shallow_clone();
        let n2 = g.square().flatten(1, -1).sum_dim_intlist(1, false, Kind::Float);
        assert!((val(&gp) - val(&n2.mean(Kind::Float))).abs() < 1e-6 * val(&n2.mean(Kind::Float)).max(1.0));
        let h = 1e-3;
        let dir = g.get(0) / val(&n2.get(0)).sqrt();
        let xp = real.copy();
        let xm = real.copy();
        let _ = xp.get(0).g_add_(&(&dir * h));
        let _ = xm.get(0).g_sub_(&(&dir * h));
        let fp = val(&d.forward(&xp, Some(&bits), false).get(0).get(0));
        let fm = val(&d.forward(&xm, Some(&bits), false).get(0).get(0));
        let directional = (fp - fm) / (2.0 * h);
        let norm = val(&n2.get(0)).sqrt();
        assert!(
            (directional - norm).abs() < 1e-2 * norm,
            "fd {directional} vs |grad| {norm}"
        );
        // The penalty is differentiable w.r.t. D's weights (needed for the D step).
        let one = gradient_penalty(
            GpKind::OneCentred,
            10.0,
            &d,
            &real,
            &(-&real),
            Given {
                bits: Some(&bits),
                labels: None,
            },
            None,
        )
        .expect("gp");
        let params: Vec<Tensor> = vs.trainable_variables();
        let grads = Tensor::run_backward(&[one], &params, false, true);
        assert!(grads.iter().any(|g| val(&g.abs().sum(Kind::Float)) > 0.0));
    }
}
