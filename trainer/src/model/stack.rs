//! Stacks: K runs' networks trained as one (grouped convolutions, batched linear layers and
//! spectral norm). A stacked variable holds the K runs' own variables along axis 0, each
//! padded on the other axes where a stack has more (bit channels at a layer some other run
//! uses). [`StackLayout`] remembers each run's own shapes, so a run's tensors can be cut
//! out of the stack (checkpoints in today's format, evaluation) and put back (resume).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use tch::{Device, Tensor, nn};

use super::{Discriminator, Gan, Generator};
use crate::config::TrainConfig;

/// Each run's own name -> shape for every variable (and its Adam moments).
#[derive(Debug, Clone)]
pub struct StackLayout {
    shapes: Vec<BTreeMap<String, Vec<i64>>>,
}

/// The Adam moment names of parameter `name` (`adam_g.m.NAME`, `adam_g.v.NAME`, ...).
fn moment_names(name: &str) -> [String; 2] {
    let net = if name.starts_with("g.") {
        "adam_g"
    } else {
        "adam_d"
    };
    [format!("{net}.m.{name}"), format!("{net}.v.{name}")]
}

/// Run `k`'s block of the stacked tensor `t`, whose own shape is `solo` (a view).
pub fn slice(t: &Tensor, k: usize, solo: &[i64]) -> Tensor {
    let mut v = t.narrow(0, k as i64 * solo[0], solo[0]);
    for (d, &n) in solo.iter().enumerate().skip(1) {
        v = v.narrow(d as i64, 0, n);
    }
    v
}

impl StackLayout {
    /// The layout of runs whose own networks are `solos`.
    fn new(solos: &[Gan]) -> Self {
        let shapes = solos
            .iter()
            .map(|g| {
                let mut m = BTreeMap::new();
                for (name, t) in g.named() {
                    if t.requires_grad() {
                        for moment in moment_names(&name) {
                            m.insert(moment, t.size());
                        }
                    }
                    m.insert(name, t.size());
                }
                m
            })
            .collect();
        Self { shapes }
    }

    /// Runs in the stack.
    pub fn runs(&self) -> usize {
        self.shapes.len()
    }

    /// Run `k`'s own tensors (contiguous copies, today's names) from stacked `named`
    /// tensors (variables and Adam moments).
    pub fn run_tensors(&self, named: &[(String, Tensor)], k: usize) -> Result<Vec<(String, Tensor)>> {
        named
            .iter()
            .map(|(name, t)| {
                let solo = self.shapes[k]
                    .get(name)
                    .with_context(|| format!("{name} is not a variable of run {k}"))?;
                Ok((
                    name.clone(),
                    tch::no_grad(|| slice(t, k, solo).contiguous().copy()),
                ))
            })
            .collect()
    }

    /// Copies run `k`'s saved tensors (today's names and shapes) into its blocks of the
    /// stacked `targets`; every target must be present with the run's own shape.
    pub fn load_run(
        &self,
        targets: &[(String, Tensor)],
        saved: &[(String, Tensor)],
        k: usize,
        what: &str,
    ) -> Result<()> {
        let map: BTreeMap<&str, &Tensor> = saved.iter().map(|(n, t)| (n.as_str(), t)).collect();
        tch::no_grad(|| {
            for (name, t) in targets {
                let solo = self.shapes[k]
                    .get(name)
                    .with_context(|| format!("{name} is not a variable of run {k}"))?;
                let src = map
                    .get(name.as_str())
                    .with_context(|| format!("{what}: tensor {name} missing from run {k}'s checkpoint"))?;
                if src.size() != *solo {
                    bail!(
                        "{what}: {name} has shape {:?} in run {k}'s checkpoint, {solo:?} in the run",
                        src.size()
                    );
                }
                let mut dst = slice(t, k, solo);
                dst.f_copy_(src)
                    .with_context(|| format!("{what}: copying {name}"))?;
            }
            Ok(())
        })
    }
}

impl Gan {
    /// The networks of the runs `cfgs` (checked stackable) side by side at PA levels
    /// `levels`, each run's block initialised exactly as its own run would be.
    pub fn stacked(cfgs: &[TrainConfig], device: Device, levels: &[i64]) -> Result<(Self, StackLayout)> {
        let k = cfgs.len() as i64;
        let first = cfgs.first().context("a stack needs at least one run")?;
        let solos: Vec<Gan> = cfgs
            .iter()
            .zip(levels)
            .map(|(c, &l)| Gan::new(c, device, l))
            .collect();
        let layout = StackLayout::new(&solos);
        let vs = nn::VarStore::new(device);
        let g = Generator::stacked(&(vs.root() / "g"), &first.arch, k);
        let pa_layers: Vec<Option<usize>> = cfgs.iter().map(|c| c.pa.layer(c.pa_feat_layer)).collect();
        let d = Discriminator::stacked(
            &(vs.root() / "d"),
            &first.arch,
            &pa_layers,
            first.max_level,
            levels,
        );
        let gan = Gan { vs, g, d };
        let named = gan.named();
        for (i, solo) in solos.iter().enumerate() {
            layout.load_run(&named, &solo.named(), i, "initial weights")?;
        }
        Ok((gan, layout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PaMode, Preset, TrainOverrides};

    fn cfg(pa: PaMode, seed: u64) -> TrainConfig {
        let o = TrainOverrides {
            preset: Some(Preset::Demo),
            pa: Some(pa),
            seed: Some(seed),
            max_level: Some(3),
            ..TrainOverrides::default()
        };
        TrainConfig::resolve("synthetic", [1, 28, 28], std::path::Path::new(""), &o)
    }

    #[test]
    fn each_run_gets_its_own_initial_weights_and_they_come_back_out() {
        let _rng = crate::rng::torch_rng_lock();
        let cfgs = [cfg(PaMode::Input, 1), cfg(PaMode::Feat, 2), cfg(PaMode::Off, 3)];
        let (stack, layout) = Gan::stacked(&cfgs, Device::Cpu, &[1, 2, 0]).expect("stack");
        assert_eq!(layout.runs(), 3);
        // Bit channels at the input and at layer 6, for every model.
        assert_eq!(stack.d.bit_layers, vec![0, 6]);
        assert_eq!(stack.d.convs[0].weight.size(), vec![3 * 8, 1 + 3, 3, 3]);
        let named = stack.named();
        for (k, c) in cfgs.iter().enumerate() {
            let solo = Gan::new(c, Device::Cpu, 1);
            let cut = layout.run_tensors(&named, k).expect("cut");
            let solo_named = solo.named();
            assert_eq!(cut.len(), solo_named.len());
            for ((n1, a), (n2, b)) in cut.iter().zip(&solo_named) {
                assert_eq!(n1, n2);
                assert_eq!(a.size(), b.size(), "{n1}");
                assert_eq!((a - b).abs().max().double_value(&[]), 0.0, "run {k} {n1}");
            }
        }
        // A run without bits at a layer has zero kernels there (masked, never trained).
        let feat_at_input = slice(&stack.d.convs[0].weight, 1, &[8, 4, 3, 3]);
        assert_eq!(feat_at_input.narrow(1, 1, 3).abs().max().double_value(&[]), 0.0);
    }
}
