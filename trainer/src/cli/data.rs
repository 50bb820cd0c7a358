//! `pagan-train data fetch|info`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use pagan_trainer::data::{self, DatasetSpec, Split};

#[derive(Subcommand)]
pub enum DataCmd {
    /// Download a dataset from its canonical URLs into the data folder (needs internet).
    Fetch {
        /// mnist, fashion-mnist, cifar10 or celeba.
        dataset: String,
        /// Data folder (default: $PAGAN_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print what a dataset split holds (count, shape, pixel mean) to check an install.
    Info {
        /// mnist, fashion-mnist, cifar10, celeba or folder:PATH.
        dataset: String,
        /// train or test.
        #[arg(long, default_value = "train")]
        split: String,
        /// Data folder (default: $PAGAN_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Runs a data subcommand.
pub fn run(cmd: DataCmd) -> Result<()> {
    match cmd {
        DataCmd::Fetch { dataset, data_dir } => {
            let spec: DatasetSpec = dataset.parse()?;
            let dir = data::resolve_data_dir(data_dir.as_deref());
            let files = data::fetch(&spec, &dir).with_context(|| format!("fetching {spec}"))?;
            for f in files {
                println!("{}", f.display());
            }
        }
        DataCmd::Info {
            dataset,
            split,
            data_dir,
        } => {
            let spec: DatasetSpec = dataset.parse()?;
            let split: Split = split.parse()?;
            let dir = data::resolve_data_dir(data_dir.as_deref());
            let set = data::load(&spec, split, &dir, None)?;
            let mean = set.data.iter().map(|&b| b as f64).sum::<f64>() / set.data.len().max(1) as f64;
            println!(
                "{spec} {split}: {} images, {}x{}x{}, pixel mean {mean:.2}, from {}",
                set.n, set.channels, set.height, set.width, set.source
            );
        }
    }
    Ok(())
}
