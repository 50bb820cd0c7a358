//! Experiments over many runs: sweeps (a TOML grid of variants x seeds, run as child
//! processes) and reports (plots and a results table of runs or sweeps).

pub mod report;
pub mod sweep;
