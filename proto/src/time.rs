//! Timestamps on the wire: RFC 3339 in UTC with exactly three fractional
//! digits (`2026-01-02T03:04:05.678Z`), whatever precision the store keeps.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time, serialized as RFC 3339 UTC with milliseconds.
/// Any RFC 3339 offset is accepted on input and converted to UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = DateTime, example = "2027-02-15T00:00:00.000Z"))]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now())
    }

    /// Parses RFC 3339 (any offset), returning UTC.
    pub fn parse(s: &str) -> Result<Self, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(|t| Timestamp(t.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{s}` is not an RFC 3339 timestamp (like 2027-02-15T00:00:00Z)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_milliseconds_in_utc() {
        let t = Timestamp::parse("2027-02-15T01:00:00.123456+01:00").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2027-02-15T00:00:00.123Z\""
        );
    }

    #[test]
    fn rejects_non_rfc3339() {
        let err = serde_json::from_str::<Timestamp>("\"tomorrow\"").unwrap_err();
        assert!(err.to_string().contains("not an RFC 3339 timestamp"));
    }
}
