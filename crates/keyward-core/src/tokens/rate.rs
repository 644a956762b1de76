//! Request rates such as `100/s`, `20/m` or `1000/h`: the server's limits and a token's own.
use std::num::NonZeroU32;
use std::time::Duration;

use crate::CoreError;

/// A rate: `count` requests per `per` (also the burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (also the burst).
    pub count: NonZeroU32,
    /// The period: a second, a minute or an hour.
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, CoreError> {
        let bad = || CoreError::InvalidInput(format!("invalid rate {s:?} (examples: 100/s, 20/m, 1000/h)"));
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count = n.trim().parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(bad)?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Rate {
    /// Requests per second, to compare rates.
    pub fn per_second(self) -> f64 {
        f64::from(self.count.get()) / self.per.as_secs_f64()
    }

    /// Whether this rate allows no more than `other`, in the long run and in a burst.
    pub fn within(self, other: Rate) -> bool {
        self.per_second() <= other.per_second() && self.count <= other.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_print_and_compare() {
        let r: Rate = "20/m".parse().unwrap();
        assert_eq!((r.count.get(), r.per, r.to_string()), (20, Duration::from_secs(60), "20/m".to_owned()));
        for bad in ["", "0/s", "10", "10/d", "x/s", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        let (slow, fast): (Rate, Rate) = ("10/s".parse().unwrap(), "100/s".parse().unwrap());
        assert!(slow.within(fast) && !fast.within(slow));
        assert!(!"600/m".parse::<Rate>().unwrap().within(slow), "the same average but a bigger burst");
    }
}
