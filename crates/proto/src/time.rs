//! Conversions between protobuf time types and the calendar types used in
//! domain code.

use crate::CalendarDate;

impl CalendarDate {
    /// Builds a wire date from its parts.
    pub fn new(year: i32, month: u32, day: u32) -> Self {
        CalendarDate {
            year,
            month: month as i32,
            day: day as i32,
        }
    }

    /// ISO 8601 form, `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A `google.protobuf.Timestamp` from seconds and nanoseconds since the epoch.
pub fn timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos }
}
