//! `org.daisee.Gateway1.History` at `History`: samples and 15-minute energy of a channel, read
//! from the history through a read-only connection, one query at a time.

use std::path::PathBuf;

use daisee_hal::Timestamp;
use daisee_store::Reader;
use zbus::interface;

use super::Error;

/// The history.
pub(super) struct HistoryObject {
    pub(super) path: Option<PathBuf>,
    /// The configured channels: asking for another is an error, not an empty answer.
    pub(super) channels: Vec<String>,
    /// One query at a time: anyone may ask, and each reads the SD card.
    pub(super) one_at_a_time: tokio::sync::Semaphore,
}

/// The longest span one call returns: a month of samples, ten years of 15-minute energy.
const MAX_SAMPLES_SPAN_MS: i64 = 31 * 86_400_000;
const MAX_ENERGY_SPAN_MS: i64 = 3653 * 86_400_000;

fn span(from: i64, to: i64, max: i64) -> Result<(), Error> {
    match to.checked_sub(from) {
        Some(ms) if (0..=max).contains(&ms) => Ok(()),
        _ => Err(Error::History(format!(
            "from {from} to {to}: ask for at most {} days at a time, `from` before `to`",
            max / 86_400_000
        ))),
    }
}

impl HistoryObject {
    /// Runs `query` on a read-only connection to the history, off the runtime's thread.
    async fn query<T: Send + 'static>(
        &self,
        channel: &str,
        query: impl FnOnce(&Reader) -> Result<T, daisee_store::StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let path = self
            .path
            .clone()
            .ok_or_else(|| Error::History("no [store] in the configuration".into()))?;
        if !self.channels.iter().any(|c| c == channel) {
            return Err(Error::NotFound(format!(
                "no channel `{}` (channels: {})",
                super::shorten(channel),
                self.channels.join(", ")
            )));
        }
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| Error::History(e.to_string()))?;
        tokio::task::spawn_blocking(move || query(&Reader::open(&path)?))
            .await
            .map_err(|e| Error::History(e.to_string()))?
            .map_err(|e| Error::History(e.to_string()))
    }
}

#[interface(name = "org.daisee.Gateway1.History")]
impl HistoryObject {
    /// The samples of a channel from `from` to `to` (ms since 1970, `to` excluded, at most 31
    /// days): (time, mW).
    async fn samples(&self, channel: String, from: i64, to: i64) -> Result<Vec<(i64, i64)>, Error> {
        span(from, to, MAX_SAMPLES_SPAN_MS)?;
        let samples = self
            .query(&channel.clone(), move |r| {
                r.samples(&channel, Timestamp(from), Timestamp(to))
            })
            .await?;
        Ok(samples.into_iter().map(|(t, p)| (t.0, p.0)).collect())
    }

    /// The 15-minute energy slots of a channel (at most ten years a call): (slot start, mWh
    /// imported, mWh exported).
    async fn energy(
        &self,
        channel: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64, u64)>, Error> {
        span(from, to, MAX_ENERGY_SPAN_MS)?;
        let slots = self
            .query(&channel.clone(), move |r| {
                r.energy(&channel, Timestamp(from), Timestamp(to))
            })
            .await?;
        Ok(slots
            .into_iter()
            .map(|s| (s.start.0, s.energy.import.0, s.energy.export.0))
            .collect())
    }
}
