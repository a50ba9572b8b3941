//! An asynchronous QMP event as a capture records it: qemu's fields as they came, plus
//! `time`, its timestamp as RFC 3339 UTC (`2026-11-22T11:55:31.692831Z`).
//!
//! Reading accepts this form and qemu's own, whose timestamp is nested
//! (`{"timestamp": {"seconds": .., "microseconds": ..}, "event": .., "data": ..}`);
//! `time` is ignored (it is derived).

use std::time::{Duration, UNIX_EPOCH};

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An asynchronous QMP event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Event {
    /// Event name (`STOP`, `GUEST_PANICKED`, `MEMORY_FAILURE`, ...).
    pub event: String,
    /// Event data, `null` when absent.
    pub data: Value,
    /// qemu's timestamp, seconds since the epoch.
    pub seconds: i64,
    /// Microseconds part of the timestamp.
    pub microseconds: i64,
}

impl Event {
    /// qemu's timestamp in microseconds since the epoch.
    pub fn time_us(&self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000)
            .saturating_add(self.microseconds)
    }

    /// The event as qemu sent it: `{"event", "data", "timestamp"}` (data may be absent).
    pub fn from_qmp(msg: &Value) -> Event {
        let ts = &msg["timestamp"];
        Event {
            event: msg["event"].as_str().unwrap_or_default().to_string(),
            data: msg.get("data").cloned().unwrap_or(Value::Null),
            seconds: ts["seconds"].as_i64().unwrap_or(0),
            microseconds: ts["microseconds"].as_i64().unwrap_or(0),
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let us = u64::try_from(self.time_us()).unwrap_or(0);
        let time = humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(us));
        let mut st = s.serialize_struct("Event", 5)?;
        st.serialize_field("event", &self.event)?;
        st.serialize_field("data", &self.data)?;
        st.serialize_field("seconds", &self.seconds)?;
        st.serialize_field("microseconds", &self.microseconds)?;
        st.serialize_field("time", &time.to_string())?;
        st.end()
    }
}

/// qemu's nested timestamp.
#[derive(Deserialize)]
struct Timestamp {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    microseconds: i64,
}

/// Either form, as read.
#[derive(Deserialize)]
struct EventFields {
    #[serde(default)]
    event: String,
    #[serde(default)]
    data: Value,
    seconds: Option<i64>,
    microseconds: Option<i64>,
    timestamp: Option<Timestamp>,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = EventFields::deserialize(d)?;
        let (seconds, microseconds) = match (f.seconds, f.microseconds, f.timestamp) {
            (Some(s), us, _) => (s, us.unwrap_or(0)),
            (None, _, Some(t)) => (t.seconds, t.microseconds),
            (None, us, None) => (0, us.unwrap_or(0)),
        };
        Ok(Event {
            event: f.event,
            data: f.data,
            seconds,
            microseconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_beside_qemus_fields_and_read_back() {
        let e = Event {
            event: "STOP".into(),
            data: Value::Null,
            seconds: 1_795_348_531,
            microseconds: 692_831,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["time"], "2026-11-22T11:55:31.692831Z");
        assert_eq!(v["seconds"], 1_795_348_531);
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }

    #[test]
    fn qemus_own_form_reads_the_same() {
        let qemu = serde_json::json!({
            "timestamp": {"seconds": 1_795_348_531, "microseconds": 692_831},
            "event": "MEMORY_FAILURE",
            "data": {"recipient": "guest"}
        });
        let read: Event = serde_json::from_value(qemu.clone()).unwrap();
        assert_eq!(read, Event::from_qmp(&qemu));
        assert_eq!(read.time_us(), 1_795_348_531_692_831);
        assert_eq!(read.data["recipient"], "guest");
    }
}
