//! Time as keyward decides by it. Expiry decisions (tokens, leases, TOTP steps, wrapping tokens)
//! use a *trusted* clock: the wall clock, kept from going backwards and from running ahead.
//! It never reads earlier than a high-water mark — the latest trusted time this process has
//! given, and the one the database holds (a MAC'd system row written every minute and at
//! shutdown) — plus the monotonic time since, so a wall clock set back never revives an expired
//! token or a used TOTP step; and it never reads more than [`MAX_AHEAD`] past that mark plus the
//! monotonic time since, so one bad forward jump cannot expire everything. A wall clock that
//! strays further either way is reported as drift by health.
use std::sync::Mutex;
use std::time::Instant;

use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Nanoseconds since the Unix epoch, as stored in the database.
pub type Nanos = i64;

/// How far the trusted clock may run ahead of its anchor plus the monotonic time since.
pub const MAX_AHEAD: Nanos = 60 * 1_000_000_000;

/// The trusted clock's state: an anchor (a trusted time at a monotonic instant) and the latest
/// time given, so it never goes back.
struct Clock {
    anchor: Nanos,
    at: Instant,
    last: Nanos,
}

static CLOCK: Mutex<Option<Clock>> = Mutex::new(None);

fn wall_nanos() -> Nanos {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// The trusted time for a wall-clock reading `wall`, given the anchor advanced by the monotonic
/// time since (`monotonic`) and the latest time given (`last`): the wall clock, but never before
/// `last` or `monotonic`, and never more than [`MAX_AHEAD`] after `monotonic`.
pub fn trusted_time(wall: Nanos, monotonic: Nanos, last: Nanos) -> Nanos {
    wall.clamp(monotonic, monotonic.saturating_add(MAX_AHEAD)).max(last)
}

impl Clock {
    fn new(wall: Nanos) -> Self {
        Self { anchor: wall, at: Instant::now(), last: wall }
    }

    fn monotonic(&self) -> Nanos {
        let elapsed = i64::try_from(self.at.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.anchor.saturating_add(elapsed)
    }

    fn now(&mut self, wall: Nanos) -> Nanos {
        self.last = trusted_time(wall, self.monotonic(), self.last);
        self.last
    }

    fn anchor_at_least(&mut self, mark: Nanos) {
        if mark > self.monotonic() {
            self.anchor = mark;
            self.at = Instant::now();
            self.last = self.last.max(mark);
        }
    }
}

fn with_clock<R>(f: impl FnOnce(&mut Clock, Nanos) -> R) -> R {
    let wall = wall_nanos();
    let mut guard = CLOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(|| Clock::new(wall)), wall)
}

/// The current trusted time in nanoseconds since the epoch.
pub fn now_nanos() -> Nanos {
    with_clock(|clock, wall| clock.now(wall))
}

/// Raises the clock's anchor to a stored high-water mark when that is later than the trusted
/// time now (the wall clock was set back while keyward was down).
pub fn anchor_at_least(mark: Nanos) {
    with_clock(|clock, _| clock.anchor_at_least(mark));
}

/// How far the wall clock is from the trusted time, in seconds (positive: the wall clock is ahead).
pub fn wall_drift_secs() -> i64 {
    let trusted = now_nanos();
    (wall_nanos() - trusted) / 1_000_000_000
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

    const S: Nanos = 1_000_000_000;

    #[test]
    fn the_trusted_clock_follows_the_wall_within_its_bounds() {
        let t0 = 1_800_000_000 * S;
        // In step: the wall clock.
        assert_eq!(trusted_time(t0 + 5 * S, t0 + 5 * S, t0), t0 + 5 * S);
        // A little ahead (NTP slewing, a small step): still the wall clock.
        assert_eq!(trusted_time(t0 + 30 * S, t0, t0), t0 + 30 * S);
        // Set back an hour: the monotonic time, never earlier than what was given.
        assert_eq!(trusted_time(t0 - 3600 * S, t0 + 10 * S, t0 + 5 * S), t0 + 10 * S);
        assert_eq!(trusted_time(t0 - 3600 * S, t0, t0 + 20 * S), t0 + 20 * S);
        // Jumped a day ahead: at most 60 s past the monotonic time, however often it is read.
        let ahead = trusted_time(t0 + 86_400 * S, t0, t0);
        assert_eq!(ahead, t0 + MAX_AHEAD);
        assert_eq!(trusted_time(t0 + 86_400 * S, t0 + S, ahead), t0 + S + MAX_AHEAD);
    }

    #[test]
    fn a_stored_mark_later_than_now_moves_the_clock_forward_never_back() {
        let wall = wall_nanos();
        let mut clock = Clock::new(wall);
        clock.anchor_at_least(wall - 3600 * S);
        assert!(clock.now(wall) >= wall, "an earlier mark changes nothing");
        clock.anchor_at_least(wall + 3600 * S);
        assert!(clock.now(wall) >= wall + 3600 * S, "the wall clock is behind the stored mark: the mark wins");
        assert!(
            clock.now(wall + 2 * 3600 * S) <= wall + 3600 * S + MAX_AHEAD + 10 * S,
            "and runs ahead of it by 60 s at most"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_500_000_000_123_456_789), "2017-07-14T02:40:00.123456789Z");
    }
}
