//! Building a trainer: fresh runs in new folders, ephemeral runs that write nothing, and
//! runs reopened at their newest checkpoints, alone or as one stack.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tch::{Device, Tensor};

use super::adam::Adam;
use super::graph::Engine;
use super::{Run, Trainer};
use crate::config::TrainConfig;
use crate::data::ImageSet;
use crate::model::Gan;
use crate::objective::tricks::HistoricalAverage;
use crate::ops::StackKernels;
use crate::run_dir::{CheckpointMeta, RunDir, checkpoint};

impl Trainer {
    /// A fresh run in `dir` (created; refuses a folder that already holds a run).
    pub fn create(cfg: TrainConfig, dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        Self::create_stack(vec![cfg], &[dir], device, data)
    }

    /// Fresh runs `cfgs` in `dirs` (created), trained as one stack.
    pub fn create_stack(
        cfgs: Vec<TrainConfig>,
        dirs: &[&Path],
        device: Device,
        data: &ImageSet,
    ) -> Result<Self> {
        crate::config::check_stackable(&cfgs)?;
        // Refused before any folder is created, so a retry with the same --out can start.
        if let Some(cond) = cfgs.first().and_then(|c| c.cond.as_ref()) {
            let _ = class_labels(data, &cond.classes)?;
        }
        for dir in dirs {
            RunDir::check_free(dir)?;
        }
        let mut folders = Vec::new();
        for (cfg, dir) in cfgs.iter().zip(dirs) {
            folders.push(Some(RunDir::create(dir, cfg)?));
        }
        Self::build(cfgs, folders, device, data)
    }

    /// A run that writes nothing (benchmarks, tests): same networks and step, no folder.
    pub fn ephemeral(cfg: TrainConfig, device: Device, data: &ImageSet) -> Result<Self> {
        Self::build(vec![cfg], vec![None], device, data)
    }

    /// Runs that write nothing, as one stack.
    pub fn ephemeral_stack(cfgs: Vec<TrainConfig>, device: Device, data: &ImageSet) -> Result<Self> {
        crate::config::check_stackable(&cfgs)?;
        let folders = cfgs.iter().map(|_| None).collect();
        Self::build(cfgs, folders, device, data)
    }

    /// Reopens a run at its newest checkpoint, or at iteration 0 when it was stopped before
    /// its first one; the config comes from its config.json.
    pub fn open(dir: &Path, device: Device, data: &ImageSet) -> Result<Self> {
        Self::open_stack(&[dir], device, data)
    }

    /// Reopens runs as one stack; they must be stackable and at the same iteration.
    pub fn open_stack(dirs: &[&Path], device: Device, data: &ImageSet) -> Result<Self> {
        let cfgs = dirs
            .iter()
            .map(|d| RunDir::at(*d).config())
            .collect::<Result<Vec<_>>>()?;
        Self::reopen_stack(dirs, cfgs, device, data)
    }

    /// Reopens runs as one stack with `cfgs` in place of their saved configs (a resume with
    /// a new length writes them only once this succeeded).
    pub fn reopen_stack(
        dirs: &[&Path],
        cfgs: Vec<TrainConfig>,
        device: Device,
        data: &ImageSet,
    ) -> Result<Self> {
        let folders: Vec<RunDir> = dirs.iter().map(|d| RunDir::at(*d)).collect();
        crate::config::check_stackable(&cfgs)?;
        let saved = folders
            .iter()
            .map(RunDir::load_checkpoint)
            .collect::<Result<Vec<_>>>()?;
        let iters: Vec<u64> = saved
            .iter()
            .map(|s| s.as_ref().map_or(0, |(m, _)| m.iter))
            .collect();
        if iters.iter().any(|&i| i != iters[0]) {
            let list: Vec<String> = dirs
                .iter()
                .zip(&iters)
                .map(|(d, i)| format!("{} at {i}", d.display()))
                .collect();
            bail!(
                "runs at different iterations cannot continue as one stack: {}",
                list.join(", ")
            );
        }
        let levels: Vec<i64> = saved
            .iter()
            .zip(&cfgs)
            .map(|(s, c)| s.as_ref().map_or(c.start_level, |(m, _)| m.pa.level))
            .collect();
        let mut t = Self::build_at(
            cfgs,
            folders.into_iter().map(Some).collect(),
            device,
            data,
            &levels,
        )?;
        for (k, s) in saved.into_iter().enumerate() {
            match s {
                Some((meta, tensors)) => t.restore_run(k, meta, &tensors)?,
                None => {
                    tracing::info!(run = %dirs[k].display(), "no checkpoint yet: starting again from iteration 0")
                }
            }
        }
        // The averages restart from the resumed weights (not from the initial ones,
        // which build_at saw before the checkpoint was restored).
        t.hist = start_history(&t.runs[0].cfg, &t.opt_g, &t.opt_d);
        t.iter = iters[0];
        for r in &t.runs {
            if let Some(d) = &r.dir {
                d.metrics().truncate_after(t.iter)?;
            }
        }
        Ok(t)
    }

    fn build(
        cfgs: Vec<TrainConfig>,
        dirs: Vec<Option<RunDir>>,
        device: Device,
        data: &ImageSet,
    ) -> Result<Self> {
        let levels: Vec<i64> = cfgs.iter().map(|c| c.start_level.clamp(0, c.max_level)).collect();
        Self::build_at(cfgs, dirs, device, data, &levels)
    }

    fn build_at(
        cfgs: Vec<TrainConfig>,
        dirs: Vec<Option<RunDir>>,
        device: Device,
        data: &ImageSet,
        levels: &[i64],
    ) -> Result<Self> {
        let [n, c, h, w] = data.shape();
        let first = cfgs.first().context("no runs to train")?;
        if [c as i64, h as i64, w as i64] != first.arch.image {
            bail!(
                "dataset images are {c}x{h}x{w}, the run expects {:?}",
                first.arch.image
            );
        }
        let (gan, layout) = if cfgs.len() == 1 {
            (Gan::new(first, device, levels[0]), None)
        } else {
            let (mut g, l) = Gan::stacked(&cfgs, device, levels)?;
            g.set_kernels(StackKernels::configured(device).map_err(anyhow::Error::msg)?);
            (g, Some(l))
        };
        let opt_g = Adam::new(first.adam_g, gan.params("g."));
        let opt_d = Adam::new(first.adam_d, gan.params("d."));
        let hist = start_history(first, &opt_g, &opt_d);
        let labels = match &first.cond {
            None => None,
            Some(cond) => Some(class_labels(data, &cond.classes)?.to_device(device)),
        };
        let runs = cfgs
            .into_iter()
            .zip(dirs)
            .map(|(cfg, dir)| Run::new(cfg, dir, n, device))
            .collect();
        let images = Tensor::from_slice(&data.data)
            .view([n as i64, c as i64, h as i64, w as i64])
            .to_device(device);
        Ok(Self {
            runs,
            device,
            gan,
            opt_g,
            opt_d,
            iter: 0,
            layout,
            data: images,
            labels,
            engine: Engine::Eager,
            evaluator: None,
            hist,
        })
    }

    /// Puts run `k`'s checkpoint (weights, Adam moments, PA and schedule state) in place.
    fn restore_run(&mut self, k: usize, meta: CheckpointMeta, saved: &[(String, Tensor)]) -> Result<()> {
        let targets: Vec<(String, Tensor)> = self
            .gan
            .named()
            .into_iter()
            .chain(self.opt_g.state("adam_g"))
            .chain(self.opt_d.state("adam_d"))
            .collect();
        match &self.layout {
            None => checkpoint::restore(&targets, saved, "checkpoint")?,
            Some(l) => l.load_run(&targets, saved, k, "checkpoint")?,
        }
        if k > 0 && (meta.adam_g_step != self.opt_g.step || meta.adam_d_step != self.opt_d.step) {
            bail!("runs of one stack must share their Adam step counts (run {k} differs)");
        }
        self.opt_g.step = meta.adam_g_step;
        self.opt_d.step = meta.adam_d_step;
        let run = &mut self.runs[k];
        run.pa = meta.pa;
        run.schedule.restore(&meta.schedule_state)?;
        run.train_seconds = meta.train_seconds;
        self.gan.d.set_model_level(k, run.pa.level);
        Ok(())
    }
}

/// Historical averages of G's and D's parameters where the config asks for them, starting
/// from the parameters' current values.
fn start_history(cfg: &TrainConfig, opt_g: &Adam, opt_d: &Adam) -> [Option<HistoricalAverage>; 2] {
    [(cfg.tricks.hist_avg_g, opt_g), (cfg.tricks.hist_avg_d, opt_d)]
        .map(|(w, opt)| (w > 0.0).then(|| HistoricalAverage::new(w, &opt.tensors())))
}

/// The dataset's labels as an int64 tensor, each checked to be a class of the run, and
/// every class checked to have images.
fn class_labels(data: &ImageSet, classes: &[String]) -> Result<Tensor> {
    let Some(labels) = data.labels.as_ref() else {
        bail!(
            "--cond needs labels, and {} has none (a folder: every image inside one of at least two class subfolders)",
            data.source
        );
    };
    let mut counts = vec![0usize; classes.len()];
    for (i, &l) in labels.iter().enumerate() {
        match counts.get_mut(usize::from(l)) {
            Some(c) => *c += 1,
            None => bail!(
                "image {i} of {} has label {l}, outside the run's {} classes",
                data.source,
                classes.len()
            ),
        }
    }
    let empty: Vec<&str> = classes
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| n.as_str())
        .collect();
    if !empty.is_empty() {
        // A class G never sees would still be sampled (grids, evaluations, the server).
        bail!(
            "{} has no training images of the classes {empty:?}: a conditional run cannot learn \
             a class it never sees (remove empty class folders, or raise --limit to at least one \
             image per class)",
            data.source
        );
    }
    let l: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Ok(Tensor::from_slice(&l))
}

#[cfg(test)]
mod tests {
    use tch::Device;

    use crate::config::TrainOverrides;
    use crate::train::{RunOptions, Trainer, tiny_setup};

    /// A resumed run's historical averages start from the weights it resumed with: the
    /// penalty is zero at the first step after the resume (it pulled towards the initial
    /// weights before this was fixed).
    #[test]
    fn historical_averages_restart_from_the_resumed_weights() {
        let _rng = crate::rng::torch_rng_lock();
        tch::set_num_threads(1);
        let (mut cfg, set) = tiny_setup(&TrainOverrides {
            batch: Some(6),
            iters: Some(4),
            checkpoint_every: Some(4),
            sample_every: Some(1000),
            eval_every: Some(0),
            ..TrainOverrides::default()
        });
        cfg.tricks.hist_avg_g = 0.5;
        cfg.tricks.hist_avg_d = 0.5;
        let dir = tempfile::tempdir().expect("tmp");
        let run = dir.path().join("run");
        let mut t = Trainer::create(cfg, &run, Device::Cpu, &set).expect("trainer");
        t.run(RunOptions {
            quiet: true,
            ..Default::default()
        })
        .expect("run");
        let t = Trainer::open(&run, Device::Cpu, &set).expect("reopen");
        for (h, opt) in t.hist.iter().zip([&t.opt_g, &t.opt_d]) {
            let h = h.as_ref().expect("historical average configured");
            let p = h.penalty(&opt.tensors());
            assert_eq!(p, 0.0, "penalty right after the resume: {p}");
        }
    }
}
