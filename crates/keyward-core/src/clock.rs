//! The trusted clock's high-water mark in the database (a MAC'd system row): loaded when rows
//! are first authenticated, so a wall clock set back while keyward was down cannot revive what
//! had expired, and stored every minute and at shutdown — only ever raised.
use async_trait::async_trait;

use crate::engine::command::{Command, Upkeep};
use crate::{anchor_at_least, now_nanos, CoreError, KeyManager, Keyward, Nanos, StoreTx};

/// The system row holding the mark (nanoseconds since the epoch).
const CLOCK_MARK: &str = "clock_mark";

/// Raises the stored mark to a trusted time (never lowers it: another replica may be ahead).
#[derive(Debug)]
struct RaiseClockMark(Nanos);

#[async_trait]
impl Command for RaiseClockMark {
    type Reply = ();

    async fn apply(&self, tx: &mut dyn StoreTx, _keys: &KeyManager) -> Result<(), CoreError> {
        let stored = tx.system_value(CLOCK_MARK).await?.and_then(|v| v.parse::<Nanos>().ok());
        if stored.is_none_or(|s| s < self.0) {
            tx.set_system_value(CLOCK_MARK, &self.0.to_string()).await?;
        }
        Ok(())
    }
}

impl Upkeep for RaiseClockMark {}

impl Keyward {
    /// Raises the trusted clock to the stored mark (the rows must be authenticated).
    pub(crate) async fn load_clock_mark(&self) -> Result<(), CoreError> {
        if let Some(mark) = self.store.system_value(CLOCK_MARK).await?.and_then(|v| v.parse::<Nanos>().ok()) {
            anchor_at_least(mark);
        }
        Ok(())
    }

    /// Stores the trusted time now as the high-water mark (raised only).
    pub async fn store_clock_mark(&self) -> Result<(), CoreError> {
        self.writer.maintain(RaiseClockMark(now_nanos())).await
    }
}
