//! `coroner status`: running, frozen (failover-safe), frozen and captured, or gone, with
//! exit codes an OCF resource agent's `monitor` can return as they are.

use std::time::Duration;

use coroner_capture::{status, QmpAddress};

use super::output::print_json;
use crate::cli::StatusArgs;
use crate::exit::{ClassifyExt, ExitClass};

/// Runs the query and returns the OCF exit code (not an [`ExitClass`]).
pub fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    let address = QmpAddress::parse(&args.qmp).classify(ExitClass::Usage, || {
        format!("bad --qmp address {:?}", args.qmp)
    })?;
    let s = status(
        &address,
        Duration::from_secs_f64(args.timeout),
        args.dir.as_deref(),
    );
    let code = s.health.ocf_code();
    if args.json {
        print_json(&serde_json::json!({
            "health": s.health,
            "run_state": s.run_state,
            "qemu_pid": s.qemu_pid,
            "capture": s.capture,
            "detail": s.detail,
            "exit_code": code,
        }))?;
    } else {
        println!(
            "{}: {}",
            s.health.name(),
            coroner_analyze::escape_control(&s.detail)
        );
    }
    Ok(code)
}
