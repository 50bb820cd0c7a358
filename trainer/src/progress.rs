//! Progress bars for long work (training, feature extraction), hidden when asked or when
//! nobody watches: a bar in a log file is noise.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` items starting at `pos`; `unit` names the items ("it", "images").
pub fn bar(total: u64, pos: u64, unit: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_position(pos);
    bar.reset_eta();
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
