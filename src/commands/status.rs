//! `coroner status`: running, paused (an operator's), frozen (failover-safe), frozen and
//! captured, or gone, with exit codes an OCF resource agent's `monitor` can return as they
//! are.

use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use coroner_capture::{status, QmpAddress};

use super::output::{print_json, print_text};
use crate::cli::StatusArgs;
use crate::exit::{is_broken_pipe, ClassifyExt, ExitClass};

/// Runs the query and returns the OCF exit code (not an [`ExitClass`]).
pub fn run(args: &StatusArgs) -> anyhow::Result<u8> {
    if let Some(url) = args
        .dir
        .as_deref()
        .and_then(coroner_objstore::object_url_of)
    {
        return Err(std::io::Error::other(
            "status reads a local directory: for a watcher that uploads, its --state-dir (where its receipts are)",
        ))
        .classify(ExitClass::Usage, || format!("--dir {url}"));
    }
    let s = match (args.libvirt.domain(false)?, &args.qmp) {
        (Some(domain), _) => coroner_capture::status_domain(
            &domain,
            Duration::from_secs_f64(args.timeout),
            args.dir.as_deref(),
        ),
        (None, qmp) => status_qmp(args, qmp.as_deref().unwrap_or(""))?,
    };
    print(args, &s)
}

/// `status --qmp`.
fn status_qmp(args: &StatusArgs, qmp: &str) -> anyhow::Result<coroner_capture::Status> {
    let address = QmpAddress::parse(qmp)
        .classify(ExitClass::Usage, || format!("bad --qmp address {qmp:?}"))?;
    // A path that is there but is no socket is a mistake on the command line, not a qemu
    // that went away (a missing one is: qemu removes its socket when it exits).
    if let QmpAddress::Unix(path) = &address {
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::other("it is not a unix socket")).classify(
                    ExitClass::Usage,
                    || {
                        format!(
                            "bad --qmp {}",
                            coroner_analyze::escape_control(&path.display().to_string())
                        )
                    },
                );
            }
        }
    }
    Ok(status(
        &address,
        Duration::from_secs_f64(args.timeout),
        args.dir.as_deref(),
    ))
}

/// Prints the answer and returns its OCF code.
fn print(args: &StatusArgs, s: &coroner_capture::Status) -> anyhow::Result<u8> {
    let code = s.health.ocf_code();
    let printed = if args.format.json {
        print_json(&serde_json::json!({
            "health": s.health,
            "run_state": s.run_state,
            "qemu_pid": s.qemu_pid,
            "capture": s.capture,
            "detail": s.detail,
            "exit_code": code,
        }))
    } else {
        print_text(&format!(
            "{}: {}\n",
            s.health.name(),
            coroner_analyze::escape_control(&s.detail)
        ))
    };
    match printed {
        // The monitor code is the answer: a reader that went away does not change it.
        Err(e) if !is_broken_pipe(&e) => Err(e),
        _ => Ok(code),
    }
}
