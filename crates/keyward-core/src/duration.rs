//! Go-style durations (`90s`, `30m0s`, `2160h0m0s`), accepting a `d` suffix on input.
use crate::CoreError;

/// Parses `1h30m`, `45s`, `32d`, `2160h0m0s` (units d, h, m, s; integers only) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, CoreError> {
    let bad = || CoreError::InvalidInput(format!("invalid duration {s:?} (examples: 90s, 30m, 1h30m, 32d)"));
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s == "0" {
        return Ok(0);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Formats seconds as Go does: `0s`, `1m30s`, `2160h0m0s`.
pub fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("32d").unwrap(), 32 * 86400);
        assert_eq!(parse_duration("2160h0m0s").unwrap(), 90 * 86400);
        for bad in ["", "h", "10", "1.5h", "-1s", "1w", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90), "1m30s");
        assert_eq!(format_duration(90 * 86400), "2160h0m0s");
    }

    proptest! {
        #[test]
        fn format_round_trips(secs in 0u64..10_000_000_000) {
            prop_assert_eq!(parse_duration(&format_duration(secs)).unwrap(), secs);
        }
    }
}
