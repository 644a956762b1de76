//! Stale-secret monitoring: a periodic scan (on the server that runs background work) counts
//! fields past their rotation limit (reported by health and metrics) and logs one warning per
//! stale field per day. Nothing is decrypted.
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use keyward_core::Keyward;

use crate::audit::AuditState;

const DAY_NANOS: i64 = 86_400_000_000_000;
/// The scan rests this many times as long as each page took: at most a quarter of one core,
/// however many secrets there are.
const SCAN_REST: u32 = 3;

/// The scan's memory: the day each stale field was last warned about.
#[derive(Debug, Default)]
pub(crate) struct StaleScan {
    warned: HashMap<(String, String, String), i64>,
}

impl StaleScan {
    /// Scans once: counts the stale fields and warns about each once a day.
    pub(crate) async fn run(&mut self, kw: &Keyward, audit: &AuditState) {
        match kw.stale_fields_in_background(SCAN_REST).await {
            Ok(fields) => {
                audit.counters.stale_fields.store(fields.len() as u64, Ordering::Relaxed);
                let today = keyward_core::now_nanos() / DAY_NANOS;
                for f in &fields {
                    let key = (f.mount.clone(), f.path.clone(), f.field.clone());
                    if self.warned.get(&key) != Some(&today) {
                        tracing::warn!(
                            mount = %f.mount, path = %f.path, field = %f.field,
                            age = %keyward_core::format_duration(f.age_secs),
                            limit = %keyward_core::format_duration(f.limit_secs),
                            "stale secret: not rotated within its limit"
                        );
                        self.warned.insert(key, today);
                    }
                }
                self.warned.retain(|_, day| *day == today);
            }
            Err(keyward_core::CoreError::NotInitialized) => {}
            Err(e) => tracing::warn!(error = %e, "stale-secret scan failed"),
        }
    }
}
