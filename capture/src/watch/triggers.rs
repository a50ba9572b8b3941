//! Which freezes `watch` captures: run states, and `memory-failure` (a guest that froze
//! after qemu reported a host memory error to it).

use crate::run_state::RunState;

/// The trigger names `--on` accepts besides the frozen run states.
pub const MEMORY_FAILURE: &str = "memory-failure";

/// The triggers used when none are given: the freezes that mean the guest died.
pub const DEFAULT_TRIGGERS: &[&str] = &["internal-error", "guest-panicked", "io-error", "watchdog"];

/// A set of triggers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triggers {
    states: Vec<String>,
    memory_failure: bool,
}

impl Default for Triggers {
    fn default() -> Self {
        Self {
            states: DEFAULT_TRIGGERS.iter().map(|s| s.to_string()).collect(),
            memory_failure: false,
        }
    }
}

impl Triggers {
    /// From names (`guest-panicked`, `io-error`, `memory-failure`, ...); an unknown name
    /// is an error that lists the known ones.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut t = Triggers {
            states: Vec::new(),
            memory_failure: false,
        };
        for name in names {
            let name = name.as_ref().trim();
            if name == MEMORY_FAILURE {
                t.memory_failure = true;
            } else if RunState::parse(name).is_frozen() {
                if !t.states.iter().any(|s| s == name) {
                    t.states.push(name.to_string());
                }
            } else {
                return Err(format!(
                    "unknown trigger {name:?}: use {MEMORY_FAILURE} or a frozen run state ({})",
                    RunState::frozen_names().join(", ")
                ));
            }
        }
        if t.states.is_empty() && !t.memory_failure {
            return Err("no trigger given".into());
        }
        Ok(t)
    }

    /// The reason to capture a guest frozen in `state`, if it is one: the state itself, or
    /// `memory-failure` when only an earlier `MEMORY_FAILURE` event makes it one.
    pub fn reason(&self, state: &str, memory_failures_seen: bool) -> Option<String> {
        if self.states.iter().any(|s| s == state) {
            Some(state.to_string())
        } else if self.memory_failure && memory_failures_seen && RunState::parse(state).is_frozen()
        {
            Some(MEMORY_FAILURE.to_string())
        } else {
            None
        }
    }

    /// The names, as `--on` takes them.
    pub fn names(&self) -> Vec<String> {
        let mut v = self.states.clone();
        if self.memory_failure {
            v.push(MEMORY_FAILURE.to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_reasons() {
        let t = Triggers::default();
        assert_eq!(
            t.reason("guest-panicked", false).as_deref(),
            Some("guest-panicked")
        );
        assert_eq!(t.reason("paused", true), None);
        assert_eq!(t.reason("running", false), None);
        let t = Triggers::parse(&["paused", "memory-failure"]).unwrap();
        assert_eq!(t.reason("paused", false).as_deref(), Some("paused"));
        assert_eq!(t.reason("guest-panicked", false), None);
        assert_eq!(
            t.reason("guest-panicked", true).as_deref(),
            Some("memory-failure")
        );
        // A running guest is never a reason, whatever was seen before.
        assert_eq!(t.reason("running", true), None);
        assert_eq!(t.names(), ["paused", "memory-failure"]);
    }

    #[test]
    fn bad_names_are_refused() {
        let e = Triggers::parse(&["guest-panicked", "running"]).unwrap_err();
        assert!(e.contains("\"running\"") && e.contains("io-error"), "{e}");
        assert!(Triggers::parse::<&str>(&[]).is_err());
        assert_eq!(
            Triggers::parse(&["io-error", "io-error"]).unwrap().names(),
            ["io-error"]
        );
    }
}
