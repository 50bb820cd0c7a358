//! The named choices of a run (`--pa`, `--loss`, `--gp`, `--pa-schedule`, `--preset`):
//! plain enums with the words the CLI and `config.json` use, parsed here so the library
//! needs no command-line crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A choice with a fixed set of words (for help texts and error messages).
pub trait Choice: Sized + Copy + PartialEq + 'static {
    /// Every variant with its word, in help order.
    const ALL: &'static [(&'static str, Self)];
    /// One line per word for help texts.
    const HELP: &'static [&'static str];
    /// The word of this variant.
    fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(w, _)| *w)
    }
    /// Parses a word, listing the valid ones on failure.
    fn parse_word(s: &str, what: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(w, _)| *w == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let words: Vec<&str> = Self::ALL.iter().map(|(w, _)| *w).collect();
                format!("unknown {what} `{s}` (valid: {})", words.join(", "))
            })
    }
}

macro_rules! choice_traits {
    ($t:ty, $what:literal) => {
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse_word(s, $what)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

/// Named sets of defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// The paper's SN-DCGAN widths and optimiser settings.
    Paper,
    /// Narrow networks (G at 1/4, D at 1/8 of the paper's widths): recognisable
    /// Fashion-MNIST in minutes on a 2-core CPU. D is narrower because it runs on twice the
    /// images and dominates the step's cost.
    Demo,
}

impl Choice for Preset {
    const ALL: &'static [(&'static str, Self)] = &[("paper", Self::Paper), ("demo", Self::Demo)];
    const HELP: &'static [&'static str] = &[
        "the paper's SN-DCGAN widths",
        "G at 1/4 and D at 1/8 of the paper's widths, for a quick CPU run",
    ];
}
choice_traits!(Preset, "preset");

/// Where progressive augmentation enters the discriminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaMode {
    /// No progressive augmentation: plain NS-GAN.
    Off,
    /// Bits concatenated to the image at D's first conv.
    Input,
    /// Bits concatenated to an intermediate feature map (`--pa-feat-layer`).
    Feat,
}

impl PaMode {
    /// The D conv index that takes the bits, if any.
    pub fn layer(self, feat_layer: usize) -> Option<usize> {
        match self {
            PaMode::Off => None,
            PaMode::Input => Some(0),
            PaMode::Feat => Some(feat_layer),
        }
    }
}

impl Choice for PaMode {
    const ALL: &'static [(&'static str, Self)] =
        &[("off", Self::Off), ("input", Self::Input), ("feat", Self::Feat)];
    const HELP: &'static [&'static str] = &[
        "plain NS-GAN, no progressive augmentation",
        "bits at D's input",
        "bits at a D feature map (--pa-feat-layer)",
    ];
}
choice_traits!(PaMode, "PA mode");

/// The adversarial loss family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Non-saturating GAN (BCE on logits), the paper's.
    #[default]
    Ns,
    /// Hinge loss: D on max(0, 1 -/+ D), G on -D.
    Hinge,
    /// Least squares GAN: (D - target)^2 with targets 0/1.
    Lsgan,
    /// Wasserstein loss; pair it with the 1-centred gradient penalty (implied unless --gp is given).
    WganGp,
}

impl Choice for LossKind {
    const ALL: &'static [(&'static str, Self)] = &[
        ("ns", Self::Ns),
        ("hinge", Self::Hinge),
        ("lsgan", Self::Lsgan),
        ("wgan-gp", Self::WganGp),
    ];
    const HELP: &'static [&'static str] = &[
        "non-saturating BCE on logits (the paper's)",
        "hinge: D on max(0, 1 -/+ D), G on -D",
        "least squares against 0/1 targets",
        "Wasserstein loss with the 1-centred gradient penalty",
    ];
}
choice_traits!(LossKind, "loss");

/// Gradient penalty on D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpKind {
    /// None.
    #[default]
    None,
    /// Gulrajani et al.: weight * E[(||grad D(x_hat)|| - 1)^2] on real/fake interpolates.
    OneCentred,
    /// Zero-centred on reals (R1): weight / 2 * E[||grad D(x_real)||^2].
    ZeroCentred,
}

impl Choice for GpKind {
    const ALL: &'static [(&'static str, Self)] = &[
        ("none", Self::None),
        ("one-centred", Self::OneCentred),
        ("zero-centred", Self::ZeroCentred),
    ];
    const HELP: &'static [&'static str] = &[
        "no penalty",
        "on real/fake interpolates, towards norm 1 (Gulrajani)",
        "on reals, towards norm 0 (R1)",
    ];
}
choice_traits!(GpKind, "gradient penalty");

/// A level-up rule as configured (`--pa-schedule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleSpec {
    /// Never level up (fixed level).
    Never,
    /// Level up every `n` iterations.
    Every(u64),
    /// Level up at these iterations.
    At(Vec<u64>),
    /// The paper's rule: level up when an evaluation's KID is not 5% better than the mean
    /// of the previous two at this level (needs evaluations, `--eval-every`).
    Kid,
}

impl FromStr for ScheduleSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            |why: &str| format!("bad --pa-schedule {s:?}: {why} (use kid, never, every:N or at:I1,I2,...)");
        match s.split_once(':') {
            None if s == "never" => Ok(Self::Never),
            None if s == "kid" => Ok(Self::Kid),
            Some(("every", n)) => {
                let n: u64 = n.parse().map_err(|_| bad("N must be a positive integer"))?;
                if n == 0 {
                    return Err(bad("N must be positive"));
                }
                Ok(Self::Every(n))
            }
            Some(("at", list)) => {
                let mut v = list
                    .split(',')
                    .map(|x| {
                        x.trim()
                            .parse::<u64>()
                            .map_err(|_| bad("iterations must be integers"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                v.sort_unstable();
                Ok(Self::At(v))
            }
            _ => Err(bad("unknown rule")),
        }
    }
}

impl fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => write!(f, "never"),
            Self::Kid => write!(f, "kid"),
            Self::Every(n) => write!(f, "every:{n}"),
            Self::At(v) => {
                let s: Vec<String> = v.iter().map(u64::to_string).collect();
                write!(f, "at:{}", s.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_match_serde() {
        fn check<T: Choice + PartialEq + fmt::Debug + FromStr + fmt::Display + Serialize>() {
            assert_eq!(T::ALL.len(), T::HELP.len());
            for (w, v) in T::ALL {
                assert_eq!(v.to_string(), *w);
                assert_eq!(serde_json::to_value(v).ok(), Some(serde_json::Value::from(*w)));
            }
        }
        check::<Preset>();
        check::<PaMode>();
        check::<LossKind>();
        check::<GpKind>();
        let err = "sideways".parse::<PaMode>().err().unwrap_or_default();
        assert!(err.contains("off, input, feat"), "{err}");
    }

    #[test]
    fn schedule_specs() {
        assert!("every:0".parse::<ScheduleSpec>().is_err());
        assert!("sometimes".parse::<ScheduleSpec>().is_err());
        assert_eq!("at:5,2".parse::<ScheduleSpec>(), Ok(ScheduleSpec::At(vec![2, 5])));
        for s in ["never", "kid", "every:7", "at:1,4"] {
            assert_eq!(
                s.parse::<ScheduleSpec>().map(|x| x.to_string()).ok().as_deref(),
                Some(s)
            );
        }
    }
}
