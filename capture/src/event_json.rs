//! How a QMP [`Event`] is written as JSON: qemu's fields as they came, plus `time`, its
//! timestamp as RFC 3339 UTC (`2026-11-22T11:55:31.692831Z`). Reading ignores `time`.

use std::time::{Duration, UNIX_EPOCH};

use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use crate::qmp::Event;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_beside_qemus_fields_and_read_back() {
        let e = Event {
            event: "STOP".into(),
            data: serde_json::Value::Null,
            seconds: 1_795_348_531,
            microseconds: 692_831,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["time"], "2026-11-22T11:55:31.692831Z");
        assert_eq!(v["seconds"], 1_795_348_531);
        assert_eq!(serde_json::from_value::<Event>(v).unwrap(), e);
    }
}
