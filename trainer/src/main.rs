//! `pagan-train`: train, resume, sample and export PA-GAN (SN-DCGAN) runs; FID tooling;
//! sweeps and reports. The command line lives in `cli`; everything else is the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
