//! `coroner tui`: the terminal UI, or with `--json` its first screens drawn off-screen.

use std::io::IsTerminal;

use coroner_tui::{render_screens, Model};

use super::kernel;
use super::output::print_json;
use crate::cli::TuiArgs;
use crate::exit::{ClassifyExt, ExitClass};

pub fn run(args: &TuiArgs) -> anyhow::Result<ExitClass> {
    let core = kernel::open(&args.dump.file)?;
    let path = args.dump.file.display().to_string();
    if args.json {
        let model = Model::load(&core, path);
        let (w, h) = args.size;
        let screens = render_screens(&model, w, h).classify(ExitClass::Failure, || {
            "drawing the panes off-screen".to_string()
        })?;
        print_json(&serde_json::json!({ "width": w, "height": h, "screens": screens }))?;
        return Ok(ExitClass::Ok);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "coroner tui needs a terminal on stdin and stdout (use --json to draw the panes off-screen)"
        );
    }
    coroner_tui::run(&core, path).classify(ExitClass::Output, || "the terminal".to_string())?;
    Ok(ExitClass::Ok)
}
