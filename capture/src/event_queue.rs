//! The QMP events a connection keeps, within bounds: a monitor that floods events (a
//! broken device, a hostile peer) must not grow coroner without limit. Events that say
//! why a guest froze, and the ones the freeze decisions wait for, get a budget of their
//! own; other events share a smaller one. Whatever does not fit is counted per name.
//!
//! Events are only refused, never evicted, while a budget is full: indices into
//! [`EventQueue::events`] stay valid until [`EventQueue::trim`] forgets old events.

use std::collections::BTreeMap;

use coroner_record::Event;

/// Events the analyses and the freeze decisions read.
pub const NOTABLE_EVENTS: &[&str] = &[
    "STOP",
    "RESUME",
    "GUEST_PANICKED",
    "GUEST_CRASHLOADED",
    "BLOCK_IO_ERROR",
    "WATCHDOG",
    "MEMORY_FAILURE",
    "SHUTDOWN",
    "RESET",
    "SUSPEND",
    "WAKEUP",
    "DUMP_COMPLETED",
];

/// A budget: at most `events` events holding at most `bytes` bytes of QMP text.
#[derive(Clone, Copy, Debug)]
struct Budget {
    events: usize,
    bytes: usize,
}

/// The budget of notable events.
const NOTABLE: Budget = Budget {
    events: 4096,
    bytes: 4 << 20,
};

/// The budget of every other event.
const OTHER: Budget = Budget {
    events: 256,
    bytes: 256 << 10,
};

/// Distinct names counted in [`EventQueue::dropped`], [`OTHER_NAMES`] included.
const MAX_DROPPED_NAMES: usize = 64;

/// The name further names are counted under.
pub const OTHER_NAMES: &str = "(other names)";

/// Longest event name kept as is in the dropped counts.
const MAX_NAME: usize = 64;

/// What one budget holds now.
#[derive(Clone, Copy, Debug, Default)]
struct Used {
    events: usize,
    bytes: usize,
}

impl Used {
    fn fits(&self, budget: Budget, size: usize) -> bool {
        self.events < budget.events && self.bytes.saturating_add(size) <= budget.bytes
    }
}

/// The events kept on one connection, with the counts of those refused.
#[derive(Debug, Default)]
pub struct EventQueue {
    /// Kept events, in order, each with its size in QMP text.
    events: Vec<Event>,
    sizes: Vec<usize>,
    notable: Used,
    other: Used,
    dropped: BTreeMap<String, u64>,
}

fn is_notable(name: &str) -> bool {
    NOTABLE_EVENTS.contains(&name)
}

impl EventQueue {
    /// Keeps `event` (`size` bytes of QMP text) when its budget has room, else counts it;
    /// true when kept.
    pub fn push(&mut self, event: Event, size: usize) -> bool {
        let (used, budget) = if is_notable(&event.event) {
            (&mut self.notable, NOTABLE)
        } else {
            (&mut self.other, OTHER)
        };
        if !used.fits(budget, size) {
            self.count_dropped(&event.event);
            return false;
        }
        used.events += 1;
        used.bytes += size;
        self.events.push(event);
        self.sizes.push(size);
        true
    }

    fn count_dropped(&mut self, name: &str) {
        let key = if name.len() > MAX_NAME || name.chars().any(|c| c.is_control()) {
            OTHER_NAMES
        } else {
            name
        };
        if let Some(n) = self.dropped.get_mut(key) {
            *n = n.saturating_add(1);
        } else if self.dropped.len() < MAX_DROPPED_NAMES - 1 {
            self.dropped.insert(key.to_string(), 1);
        } else {
            let n = self.dropped.entry(OTHER_NAMES.to_string()).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// Kept events, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many events of each name were refused because their budget was full.
    pub fn dropped(&self) -> &BTreeMap<String, u64> {
        &self.dropped
    }

    /// Forgets all but the last `keep` events (which frees their budget); returns how
    /// many were forgotten.
    pub fn trim(&mut self, keep: usize) -> usize {
        let drop = self.events.len().saturating_sub(keep);
        for (e, size) in self.events.drain(..drop).zip(self.sizes.drain(..drop)) {
            let used = if is_notable(&e.event) {
                &mut self.notable
            } else {
                &mut self.other
            };
            used.events -= 1;
            used.bytes -= size;
        }
        drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> Event {
        Event {
            event: name.into(),
            data: serde_json::Value::Null,
            seconds: 1,
            microseconds: 0,
        }
    }

    #[test]
    fn a_flood_is_counted_not_kept_and_notable_events_still_fit() {
        let mut q = EventQueue::default();
        for _ in 0..100_000 {
            q.push(event("RTC_CHANGE"), 100);
        }
        assert_eq!(q.events().len(), OTHER.events.min(OTHER.bytes / 100));
        let kept = q.events().len() as u64;
        assert_eq!(q.dropped()["RTC_CHANGE"], 100_000 - kept);
        assert!(q.push(event("GUEST_PANICKED"), 100));
        assert!(q.push(event("STOP"), 100));
        assert_eq!(q.events().last().unwrap().event, "STOP");
        // Notable events are bounded too, by count and by bytes.
        for _ in 0..10_000 {
            q.push(event("STOP"), 10);
        }
        assert_eq!(q.dropped()["STOP"], 10_000 + 2 - NOTABLE.events as u64);
        assert!(!q.push(event("RESET"), NOTABLE.bytes + 1));
    }

    #[test]
    fn trimming_frees_the_budget() {
        let mut q = EventQueue::default();
        for _ in 0..OTHER.events {
            assert!(q.push(event("X"), 1));
        }
        assert!(!q.push(event("X"), 1));
        assert_eq!(q.trim(10), OTHER.events - 10);
        assert!(q.push(event("X"), 1));
        assert_eq!(q.events().len(), 11);
    }

    #[test]
    fn dropped_names_are_bounded() {
        let mut q = EventQueue::default();
        for i in 0..OTHER.events {
            q.push(event(&format!("FILL{i}")), 1);
        }
        for i in 0..1000 {
            q.push(event(&format!("NAME{i}")), 1);
        }
        q.push(event(&"Y".repeat(1000)), 1);
        assert_eq!(q.dropped().len(), MAX_DROPPED_NAMES);
        assert_eq!(
            q.dropped()[OTHER_NAMES],
            1000 - (MAX_DROPPED_NAMES as u64 - 1) + 1
        );
        assert_eq!(q.dropped().values().sum::<u64>(), 1001);
    }
}
