//! The ledger's outbox: every transaction the gateway owes the chain, from queued to confirmed.
//! A transaction's signed bytes, nonce and hash are written before it is first sent, so that after
//! a crash it is sent again as the same transaction (which the chain takes at most once), never
//! signed anew while the first may still land.

use std::path::Path;

use daisee_hal::Timestamp;
use rusqlite::{Connection, params};

use crate::{MarketSlot, StoreError, market, schema};

/// What a transaction records on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Posting {
    /// An interval's readings committed.
    Commitment,
    /// A market slot settled.
    Settlement,
}

impl Posting {
    fn as_str(self) -> &'static str {
        match self {
            Posting::Commitment => "commitment",
            Posting::Settlement => "settlement",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "commitment" => Some(Posting::Commitment),
            "settlement" => Some(Posting::Settlement),
            _ => None,
        }
    }
}

/// A transaction as signed: sent at least once, maybe not yet on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The account's nonce it takes.
    pub nonce: u64,
    /// Its hash.
    pub hash: [u8; 32],
    /// Its signed bytes (EIP-2718).
    pub raw: Vec<u8>,
}

/// A transaction the outbox still has to bring on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its row.
    pub id: i64,
    /// What it records.
    pub posting: Posting,
    /// The interval or slot it records.
    pub at: Timestamp,
    /// The contract call (ABI-encoded input).
    pub call: Vec<u8>,
    /// The signed transaction, once there is one.
    pub signed: Option<Signed>,
    /// Tries so far.
    pub attempts: u32,
}

/// How far the outbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxState {
    /// Transactions not yet confirmed.
    pub queued: u64,
    /// Transactions the contract refused (logged; never sent again).
    pub refused: u64,
    /// The newest interval whose commitment is confirmed.
    pub last_commitment: Option<Timestamp>,
    /// The newest slot whose settlement is confirmed.
    pub last_settlement: Option<Timestamp>,
}

/// The outbox, on a connection of its own to the history.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Opens the history at `path` (creating it, bringing its schema up to date) for the outbox.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // FULL: a transaction recorded as signed must survive a power cut before it is sent.
        Ok(Self {
            conn: schema::open_writer(path, "FULL")?,
        })
    }

    /// Queues the call recording `posting` at `at`; false if one is queued (or done) already.
    pub fn queue(
        &self,
        posting: Posting,
        at: Timestamp,
        call: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let rows = self.conn.execute(
            "INSERT OR IGNORE INTO ledger_outbox (kind, at_ms, call, state, queued_ms)
             VALUES (?1, ?2, ?3, 'queued', ?4)",
            params![posting.as_str(), at.0, call, now.0],
        )?;
        Ok(rows == 1)
    }

    /// Records that nothing will be sent for `posting` at `at`, and why (a record that makes no
    /// call): it is not offered again.
    pub fn skip(
        &self,
        posting: Posting,
        at: Timestamp,
        why: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO ledger_outbox (kind, at_ms, call, state, error, queued_ms, done_ms)
             VALUES (?1, ?2, x'', 'refused', ?3, ?4, ?4)",
            params![posting.as_str(), at.0, why, now.0],
        )?;
        Ok(())
    }

    /// The newest interval or slot queued for `posting`, whatever became of it.
    pub fn newest(&self, posting: Posting) -> Result<Option<Timestamp>, StoreError> {
        self.newest_in(posting, "('queued', 'sent', 'confirmed', 'refused')")
    }

    fn newest_in(&self, posting: Posting, states: &str) -> Result<Option<Timestamp>, StoreError> {
        let sql =
            format!("SELECT MAX(at_ms) FROM ledger_outbox WHERE kind = ?1 AND state IN {states}");
        let newest: Option<i64> = self
            .conn
            .query_row(&sql, [posting.as_str()], |r| r.get(0))?;
        Ok(newest.map(Timestamp))
    }

    /// The agreed and metered market slots not yet queued for settlement, oldest first, at most
    /// `limit`.
    pub fn unsettled(&self, limit: usize) -> Result<Vec<MarketSlot>, StoreError> {
        market::unsettled(&self.conn, limit)
    }

    /// The transactions due at `now`, at most `limit`, in the order they were queued.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, kind, at_ms, call, nonce, tx_hash, raw_tx, attempts FROM ledger_outbox
             WHERE state IN ('queued', 'sent') AND next_try_ms <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![now.0, limit], |r| {
            let kind: String = r.get(1)?;
            let nonce: Option<u64> = r.get(4)?;
            let hash: Option<Vec<u8>> = r.get(5)?;
            let raw: Option<Vec<u8>> = r.get(6)?;
            let signed = match (nonce, hash, raw) {
                (Some(nonce), Some(hash), Some(raw)) => {
                    hash.try_into().ok().map(|hash| Signed { nonce, hash, raw })
                }
                _ => None,
            };
            Ok((
                kind,
                Pending {
                    id: r.get(0)?,
                    posting: Posting::Commitment,
                    at: Timestamp(r.get(2)?),
                    call: r.get(3)?,
                    signed,
                    attempts: r.get(7)?,
                },
            ))
        })?;
        let mut due = Vec::new();
        for row in rows {
            let (kind, pending) = row?;
            let posting = Posting::parse(&kind)
                .ok_or_else(|| StoreError::Damaged(format!("ledger outbox kind {kind:?}")))?;
            due.push(Pending { posting, ..pending });
        }
        Ok(due)
    }

    /// Records the transaction signed for `id`, before it is first sent.
    pub fn signed(&self, id: i64, signed: &Signed) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE ledger_outbox SET state = 'sent', nonce = ?2, tx_hash = ?3, raw_tx = ?4
             WHERE id = ?1",
            params![id, signed.nonce, signed.hash.as_slice(), signed.raw],
        )?;
        Ok(())
    }

    /// Forgets the transaction signed for `id`: its nonce went to another transaction, so it can
    /// never land, and the call is signed again.
    pub fn unsigned(&self, id: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE ledger_outbox SET state = 'queued', nonce = NULL, tx_hash = NULL, raw_tx = NULL
             WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// Looks at `id` again at `at` (a transaction sent, its receipt not there yet).
    pub fn wait(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE ledger_outbox SET next_try_ms = ?2 WHERE id = ?1",
            params![id, at.0],
        )?;
        Ok(())
    }

    /// Tries `id` again at `at`, recording why it has not landed yet.
    pub fn retry(&self, id: i64, at: Timestamp, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE ledger_outbox SET attempts = attempts + 1, next_try_ms = ?2, error = ?3
             WHERE id = ?1",
            params![id, at.0, error],
        )?;
        Ok(())
    }

    /// Records `id` as on chain.
    pub fn confirmed(&self, id: i64, now: Timestamp) -> Result<(), StoreError> {
        self.finish(id, "confirmed", None, now)
    }

    /// Records `id` as refused by the contract, and why: it is not sent again.
    pub fn refused(&self, id: i64, error: &str, now: Timestamp) -> Result<(), StoreError> {
        self.finish(id, "refused", Some(error), now)
    }

    fn finish(
        &self,
        id: i64,
        state: &str,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE ledger_outbox SET state = ?2, error = ?3, done_ms = ?4 WHERE id = ?1",
            params![id, state, error, now.0],
        )?;
        Ok(())
    }

    /// The nonce after the highest this outbox signed with, if it signed any.
    pub fn next_nonce(&self) -> Result<Option<u64>, StoreError> {
        let highest: Option<u64> =
            self.conn
                .query_row("SELECT MAX(nonce) FROM ledger_outbox", [], |r| r.get(0))?;
        Ok(highest.map(|n| n + 1))
    }

    /// How far the outbox is.
    pub fn state(&self) -> Result<OutboxState, StoreError> {
        let count = |where_: &str| -> Result<u64, StoreError> {
            let sql = format!("SELECT COUNT(*) FROM ledger_outbox WHERE {where_}");
            Ok(self.conn.query_row(&sql, [], |r| r.get(0))?)
        };
        Ok(OutboxState {
            queued: count("state IN ('queued', 'sent')")?,
            refused: count("state = 'refused'")?,
            last_commitment: self.newest_in(Posting::Commitment, "('confirmed')")?,
            last_settlement: self.newest_in(Posting::Settlement, "('confirmed')")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_queued_once_signed_before_it_is_sent_and_done_once() {
        let dir = std::env::temp_dir().join(format!("daisee-outbox-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.sqlite");
        let outbox = Outbox::open(&path).unwrap();
        let now = Timestamp(10_000_000);
        assert!(
            outbox
                .queue(Posting::Commitment, Timestamp(900_000), b"a", now)
                .unwrap()
        );
        assert!(
            !outbox
                .queue(Posting::Commitment, Timestamp(900_000), b"b", now)
                .unwrap()
        );
        assert!(
            outbox
                .queue(Posting::Settlement, Timestamp(900_000), b"c", now)
                .unwrap()
        );
        assert_eq!(
            outbox.newest(Posting::Commitment).unwrap(),
            Some(Timestamp(900_000))
        );
        assert_eq!(outbox.next_nonce().unwrap(), None);
        let due = outbox.due(now, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(
            (due[0].posting, due[0].call.as_slice()),
            (Posting::Commitment, &b"a"[..])
        );
        let signed = Signed {
            nonce: 4,
            hash: [7; 32],
            raw: vec![1, 2, 3],
        };
        outbox.signed(due[0].id, &signed).unwrap();
        outbox
            .retry(due[1].id, Timestamp(now.0 + 5_000), "connection refused")
            .unwrap();
        // Reopened, as after a crash: the signed transaction is there to be sent again as it was.
        drop(outbox);
        let outbox = Outbox::open(&path).unwrap();
        let due = outbox.due(now, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].signed.as_ref(), Some(&signed));
        assert_eq!(outbox.next_nonce().unwrap(), Some(5));
        assert_eq!(
            outbox.due(Timestamp(now.0 + 5_000), 10).unwrap()[1].attempts,
            1
        );
        outbox.confirmed(due[0].id, now).unwrap();
        // An agreed slot waits for settlement once it is metered, and until it is queued.
        let market = crate::MarketLog::open(&path).unwrap();
        let slot = MarketSlot {
            start: Timestamp(1_800_000),
            outcome: "agreed".into(),
            price_step: Some(3),
            allocation_mw: Some(5),
            bid_set: "{}".into(),
            metered: None,
            base_mw: None,
        };
        market.settled(&slot).unwrap();
        market
            .settled(&MarketSlot {
                start: Timestamp(2_700_000),
                outcome: "no quorum".into(),
                ..slot.clone()
            })
            .unwrap();
        assert_eq!(outbox.unsettled(10).unwrap(), []);
        let energy = daisee_hal::Energy::default();
        for start in [1_800_000, 2_700_000] {
            market.metered(Timestamp(start), energy, 0).unwrap();
        }
        let unsettled = outbox.unsettled(10).unwrap();
        assert_eq!(
            unsettled.iter().map(|s| s.start).collect::<Vec<_>>(),
            [slot.start]
        );
        outbox
            .queue(Posting::Settlement, slot.start, b"s", now)
            .unwrap();
        assert_eq!(outbox.unsettled(10).unwrap(), []);
        let state = outbox.state().unwrap();
        assert_eq!(
            (state.queued, state.last_commitment),
            (2, Some(Timestamp(900_000)))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
