//! When PA levels up. One interface for every rule: the trainer asks after each iteration,
//! handing over the latest evaluation if one was just made.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

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
}

impl FromStr for ScheduleSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("bad --pa-schedule {s:?}: {why} (use never, every:N or at:I1,I2,...)");
        match s.split_once(':') {
            None if s == "never" => Ok(Self::Never),
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

impl std::fmt::Display for ScheduleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Never => write!(f, "never"),
            Self::Every(n) => write!(f, "every:{n}"),
            Self::At(v) => {
                let s: Vec<String> = v.iter().map(u64::to_string).collect();
                write!(f, "at:{}", s.join(","))
            }
        }
    }
}

/// What the trainer knows when it asks.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleInput {
    /// Iterations completed.
    pub iter: u64,
    /// Current level.
    pub level: i64,
    /// KID just measured at this iteration, if an evaluation ran.
    pub kid: Option<f64>,
}

/// The interface every level-up rule implements.
pub trait LevelSchedule {
    /// True when PA should gain a level now. Called after every iteration.
    fn should_level_up(&mut self, input: &ScheduleInput) -> bool;
    /// Called after a level-up happened (rules with per-level history reset it).
    fn on_level_up(&mut self, _iter: u64) {}
    /// State to keep in checkpoints (stateless rules: null).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Restores what `state` returned.
    fn restore(&mut self, _state: &serde_json::Value) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Fixed-iteration rule (tests and ablations).
#[derive(Debug, Clone)]
pub struct FixedSchedule {
    spec: ScheduleSpec,
}

impl FixedSchedule {
    /// From the parsed spec.
    pub fn new(spec: ScheduleSpec) -> Self {
        Self { spec }
    }
}

impl LevelSchedule for FixedSchedule {
    fn should_level_up(&mut self, input: &ScheduleInput) -> bool {
        match &self.spec {
            ScheduleSpec::Never => false,
            ScheduleSpec::Every(n) => input.iter > 0 && input.iter.is_multiple_of(*n),
            ScheduleSpec::At(v) => v.binary_search(&input.iter).is_ok(),
        }
    }
}

/// Builds the rule for a spec.
pub fn build(spec: &ScheduleSpec) -> Box<dyn LevelSchedule> {
    Box::new(FixedSchedule::new(spec.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ups(spec: &str, upto: u64) -> Vec<u64> {
        let mut s = build(&spec.parse().expect("spec"));
        (1..=upto)
            .filter(|&t| {
                s.should_level_up(&ScheduleInput {
                    iter: t,
                    level: 0,
                    kid: None,
                })
            })
            .collect()
    }

    #[test]
    fn fixed_rules() {
        assert_eq!(ups("every:3", 10), vec![3, 6, 9]);
        assert_eq!(ups("at:5,2", 10), vec![2, 5]);
        assert!(ups("never", 10).is_empty());
        assert!("every:0".parse::<ScheduleSpec>().is_err());
        assert!("sometimes".parse::<ScheduleSpec>().is_err());
        for s in ["never", "every:7", "at:1,4"] {
            assert_eq!(
                s.parse::<ScheduleSpec>().map(|x| x.to_string()).ok().as_deref(),
                Some(s)
            );
        }
    }
}
