//! Exit codes: one per class of failure, so scripts and HA agents can tell them apart.

use std::fmt;
use std::process::ExitCode;

/// A class of outcome, each with its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitClass {
    /// Success.
    Ok,
    /// An unexpected failure not covered below.
    Failure,
    /// Bad command line (clap's own code).
    Usage,
    /// The input file is unreadable, truncated or corrupt.
    Input,
    /// The output could not be written (permissions, full disk).
    Output,
    /// The guest is not frozen (running, or resumed during a capture).
    NotFrozen,
    /// qemu failed: unreachable, went away, refused, answered garbage or too late.
    Qemu,
    /// The dump does not hold what the command needs (no kernel found, no log).
    NotFound,
    /// The user interrupted the work (SIGINT/SIGTERM).
    Interrupted,
    /// A code the command defines itself (`status`: the OCF monitor codes).
    Code(u8),
}

impl ExitClass {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Ok => 0,
            ExitClass::Failure => 1,
            ExitClass::Usage => 2,
            ExitClass::Input => 3,
            ExitClass::Output => 4,
            ExitClass::NotFrozen => 5,
            ExitClass::Qemu => 6,
            ExitClass::NotFound => 7,
            ExitClass::Interrupted => 130,
            ExitClass::Code(c) => c,
        }
    }

    /// The class's name in a JSON error object (`{"error": {"class": …}}`).
    pub fn name(self) -> &'static str {
        match self {
            ExitClass::Ok => "ok",
            ExitClass::Failure | ExitClass::Code(_) => "unexpected",
            ExitClass::Usage => "usage",
            ExitClass::Input => "input",
            ExitClass::Output => "output",
            ExitClass::NotFrozen => "not-frozen",
            ExitClass::Qemu => "qemu",
            ExitClass::NotFound => "not-found",
            ExitClass::Interrupted => "interrupted",
        }
    }
}

impl From<ExitClass> for ExitCode {
    fn from(c: ExitClass) -> Self {
        ExitCode::from(c.code())
    }
}

/// An error context that also says which exit class the failure belongs to.
#[derive(Debug)]
pub struct Classified {
    /// The class.
    pub class: ExitClass,
    /// What was being done, for the message.
    pub doing: String,
}

impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.doing)
    }
}

/// Extension to attach an exit class and a message to any error.
pub trait ClassifyExt<T> {
    /// Wraps the error with `doing` as context and `class` as its exit class.
    fn classify(self, class: ExitClass, doing: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E> ClassifyExt<T> for Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn classify(self, class: ExitClass, doing: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| classified(e, class, doing()))
    }
}

/// Wraps `err` with `doing` as context and `class` as its exit class.
pub fn classified<E>(err: E, class: ExitClass, doing: String) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    anyhow::Error::new(err).context(Classified { class, doing })
}

/// An error's message: its layers from the outside in, joined by ": ", without a layer
/// that only repeats the next one in other words ("cannot read X" over "cannot open X").
pub fn message_of(err: &anyhow::Error) -> String {
    let layers: Vec<String> = err.chain().map(|e| e.to_string()).collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        if layer.is_empty() {
            continue;
        }
        if let Some(next) = layers.get(i + 1) {
            if repeats(layer, next) {
                continue;
            }
        }
        kept.push(layer);
    }
    kept.join(": ")
}

/// True when `outer` and `inner` both say "cannot VERB" of the same last word (a path).
fn repeats(outer: &str, inner: &str) -> bool {
    let last = |s: &str| s.rsplit(' ').next().map(str::to_string);
    outer.starts_with("cannot ")
        && inner.starts_with("cannot ")
        && !outer.contains(": ")
        && last(outer) == last(inner.split(": ").next().unwrap_or(inner))
}

/// The exit class of an error: the outermost classification, with interruption winning.
pub fn class_of(err: &anyhow::Error) -> ExitClass {
    if err.chain().any(|e| {
        matches!(
            e.downcast_ref::<coroner_formats::Error>(),
            Some(coroner_formats::Error::Interrupted)
        )
    }) {
        return ExitClass::Interrupted;
    }
    // anyhow looks through every context layer for the context type.
    err.downcast_ref::<Classified>()
        .map_or(ExitClass::Failure, |c| c.class)
}

/// True when the error is a closed stdout (`coroner inspect … | head`): not a failure.
/// serde_json keeps the I/O error inside its own, so both are looked at.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().map(|io| io.kind()) == pipe
            || e.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == pipe
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_repeat_themselves() {
        let inner = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(inner)
            .context("cannot open /x/vm.elf")
            .context("cannot read /x/vm.elf");
        assert_eq!(
            message_of(&e),
            "cannot open /x/vm.elf: No such file or directory"
        );
        let e = anyhow::anyhow!("truncated").context("cannot read /x/vm.elf");
        assert_eq!(message_of(&e), "cannot read /x/vm.elf: truncated");
    }
}
