//! The rules a run's settings must meet, checked before any data is loaded or any work is
//! done (a sweep checks every run this way before starting any).

use std::path::Path;

use super::{LossKind, PaMode, ScheduleSpec, TrainConfig};

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl TrainConfig {
    /// Every rule a run's settings must meet, checked before anything is loaded or
    /// trained (the FID reference, if any, must be a readable statistics file).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.batch < 1 {
            return bad(format!("--batch must be at least 1, got {}", self.batch));
        }
        if self.iters == 0 {
            return bad("--iters must be at least 1".into());
        }
        if self.limit == Some(0) {
            return bad("--limit must be at least 1 (the number of training images to use)".into());
        }
        if !(1..=32).contains(&self.max_level) {
            return bad(format!("--max-level must be 1..=32, got {}", self.max_level));
        }
        if !(0..=self.max_level).contains(&self.start_level) {
            return bad(format!(
                "--start-level must be 0..={} (--max-level), got {}",
                self.max_level, self.start_level
            ));
        }
        if !(1..=6).contains(&self.pa_feat_layer) {
            return bad(format!(
                "--pa-feat-layer must be 1..=6 (0 is the input: use --pa input), got {}",
                self.pa_feat_layer
            ));
        }
        for (flag, v) in [
            ("--log-every", self.log_every),
            ("--sample-every", self.sample_every),
            ("--checkpoint-every", self.checkpoint_every),
        ] {
            if v == 0 {
                return bad(format!("{flag} must be at least 1"));
            }
        }
        if !(self.checkpoint_minutes > 0.0 && self.checkpoint_minutes.is_finite()) {
            return bad(format!(
                "--checkpoint-minutes must be a positive number, got {}",
                self.checkpoint_minutes
            ));
        }
        for (name, a) in [("D", &self.adam_d), ("G", &self.adam_g)] {
            if !(a.lr > 0.0 && a.lr.is_finite()) {
                return bad(format!("{name} learning rate must be positive, got {}", a.lr));
            }
            for (flag, b) in [("--beta1", a.beta1), ("--beta2", a.beta2)] {
                if !(0.0..1.0).contains(&b) {
                    return bad(format!("{flag} must be in [0, 1), got {b}"));
                }
            }
        }
        self.validate_reg()?;
        self.validate_tricks()?;
        self.validate_cond()?;
        self.validate_eval()
    }

    fn validate_tricks(&self) -> Result<(), ConfigError> {
        let t = &self.tricks;
        let bad = |m: String| Err(ConfigError(m));
        for (flag, v) in [
            ("--feature-matching", t.feature_matching),
            ("--fm-adversarial", t.fm_adversarial),
            ("--hist-avg-g", t.hist_avg_g),
            ("--hist-avg-d", t.hist_avg_d),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(format!("{flag} must be a weight >= 0, got {v}"));
            }
        }
        if t.feature_matching == 0.0 && (t.fm_layer != 6 || t.fm_adversarial != 1.0) {
            return bad(
                "--fm-layer and --fm-adversarial only take effect with --feature-matching W (W > 0)".into(),
            );
        }
        if t.fm_layer > 6 {
            return bad(format!("--fm-layer must be a D conv 0..=6, got {}", t.fm_layer));
        }
        Ok(())
    }

    fn validate_cond(&self) -> Result<(), ConfigError> {
        let Some(c) = &self.cond else { return Ok(()) };
        if c.classes.len() < 2 {
            return Err(ConfigError(format!(
                "--cond needs a labelled dataset (mnist, fashion-mnist, cifar10, or folder:PATH with one \
                 subfolder per class); {} has {} classes",
                self.dataset,
                c.classes.len()
            )));
        }
        if c.classes.len() > 256 {
            return Err(ConfigError(format!(
                "--cond takes at most 256 classes, {} has {}",
                self.dataset,
                c.classes.len()
            )));
        }
        Ok(())
    }

    fn validate_reg(&self) -> Result<(), ConfigError> {
        let r = &self.reg;
        let bad = |m: String| Err(ConfigError(m));
        if !(0.0..1.0).contains(&r.dropout) {
            return bad(format!("--d-dropout must be in [0, 1), got {}", r.dropout));
        }
        if !(0.0..0.5).contains(&r.label_smoothing) {
            return bad(format!(
                "--label-smoothing must be in [0, 0.5), got {}",
                r.label_smoothing
            ));
        }
        if r.label_smoothing > 0.0 && matches!(self.loss, LossKind::Hinge | LossKind::WganGp) {
            return bad("--label-smoothing needs probability targets: use it with --loss ns or lsgan".into());
        }
        if !(r.gp_weight >= 0.0 && r.gp_weight.is_finite()) {
            return bad(format!("--gp-weight must be >= 0, got {}", r.gp_weight));
        }
        if r.dropout_layer > 6 {
            return bad(format!(
                "--d-dropout-layer must be 0..=6, got {}",
                r.dropout_layer
            ));
        }
        Ok(())
    }

    fn validate_eval(&self) -> Result<(), ConfigError> {
        let e = &self.eval;
        let bad = |m: String| Err(ConfigError(m));
        if self.schedule == ScheduleSpec::Kid && e.every == 0 {
            return bad("--pa-schedule kid levels up at evaluations: set --eval-every N (N > 0)".into());
        }
        if e.samples < 2 {
            return bad(format!("--eval-samples must be at least 2, got {}", e.samples));
        }
        if e.prdc && e.samples < 6 {
            return bad(format!(
                "--eval-prdc needs --eval-samples of at least 6 (density/coverage use each real image's 5th \
                 neighbour), got {}",
                e.samples
            ));
        }
        if !(1..=4096).contains(&e.batch) {
            return bad(format!("--eval-batch must be 1..=4096, got {}", e.batch));
        }
        if let Some(r) = &e.fid_reference {
            // Fail now, not after hours of training.
            let stats = pagan_shared::read_stats_npz(Path::new(r))
                .map_err(|err| ConfigError(format!("--eval-fid-reference: {err}")))?;
            let d = stats.gaussian.dim();
            if d != pagan_shared::inception::FEATURE_DIM {
                return bad(format!(
                    "--eval-fid-reference {r} holds {d}-d statistics; the FID Inception's pool3 features are \
                     {}-d (write a reference with `pagan-train stats`)",
                    pagan_shared::inception::FEATURE_DIM
                ));
            }
            pagan_shared::provenance::pick_resize(stats.resize_mode.as_deref(), Some(e.resize_mode))
                .map_err(|err| ConfigError(format!("--eval-fid-reference {r}: {err}")))?;
        }
        if e.every > 0 {
            // A run that evaluates loads the Inception at its first evaluation (at the latest
            // at its last iteration): a missing file is refused now, not after the training.
            let w = e.weights_path();
            if !w.is_file() {
                return bad(format!(
                    "FID Inception weights not found at {}, and this run evaluates every {} iterations: \
                     run `make setup` (it fetches them into weights/), set {} to the file, or train \
                     without evaluations (--eval-every 0)",
                    w.display(),
                    e.every,
                    super::INCEPTION_WEIGHTS_ENV
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `cfgs` can train as one stack: every setting shared but the seed, the PA
/// mode, start level, fade-in and level-up rule; no setting a stack cannot honour.
pub fn check_stackable(cfgs: &[TrainConfig]) -> Result<(), ConfigError> {
    let Some(first) = cfgs.first() else {
        return Err(ConfigError("no runs to train".into()));
    };
    if cfgs.len() == 1 {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(ConfigError(format!(
            "these runs cannot be stacked: {why} (a stack shares every setting but --seed, --pa, \
             --start-level, --fade-iters and --pa-schedule)"
        )))
    };
    for c in cfgs {
        if c.reg.dropout > 0.0 {
            return refuse(
                "--d-dropout draws its masks inside D's forward, which a stack cannot split per run".into(),
            );
        }
        if c.tricks.any() {
            return refuse(
                "Salimans et al.'s techniques (--feature-matching, --hist-avg-*, --minibatch-std) are implemented \
                 for single runs"
                    .into(),
            );
        }
        if c.cond.is_some() {
            return refuse("class-conditional runs (--cond) are implemented for single runs".into());
        }
        if c.reset_g_adam_on_level_up {
            return refuse(
                "--reset-g-adam resets one run's Adam counter, and a stack's runs share theirs".into(),
            );
        }
    }
    let feat_layers: Vec<usize> = cfgs
        .iter()
        .filter(|c| c.pa == PaMode::Feat)
        .map(|c| c.pa_feat_layer)
        .collect();
    if feat_layers.windows(2).any(|w| w[0] != w[1]) {
        return refuse(format!("feature PA at different layers {feat_layers:?}"));
    }
    let shared = |c: &TrainConfig| {
        let mut c = c.clone();
        c.seed = 0;
        c.pa = PaMode::Off;
        c.pa_feat_layer = 0;
        c.start_level = 0;
        c.fade_iters = 0;
        c.schedule = ScheduleSpec::Never;
        c
    };
    let base = shared(first);
    for c in &cfgs[1..] {
        let other = shared(c);
        if other != base {
            let a = serde_json::to_value(&base).unwrap_or_default();
            let b = serde_json::to_value(&other).unwrap_or_default();
            let keys: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(*v))
                .map(|(k, _)| k.clone())
                .collect();
            return refuse(format!("they differ in {} (config.json keys)", keys.join(", ")));
        }
    }
    Ok(())
}
