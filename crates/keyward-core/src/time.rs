use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Nanoseconds since the Unix epoch, as stored in the database.
pub type Nanos = i64;

/// The current time in nanoseconds since the epoch.
pub fn now_nanos() -> Nanos {
    let n = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Formats a stored time as RFC 3339 with nanoseconds (as Vault prints times).
pub fn format_rfc3339(nanos: Nanos) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_500_000_000_123_456_789), "2017-07-14T02:40:00.123456789Z");
    }
}
