//! The audit trail: an append-only chain of records, each holding the hash of the one before, so
//! an edited, deleted, reordered or truncated record is detected. The head (the last sequence
//! number and hash) is kept apart from the records and moves with every append, which is what
//! tells a truncation from a short log. Bodies are JSON text, hashed as stored.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// Epoch milliseconds.
    pub at_ms: i64,
    /// What happened (`consent`, `signal`, `intent`, `risk`, `broker`, `order`, `kill`, `login`, …).
    pub kind: String,
    /// Who it concerns (an account id), for per-user export; empty for engine-wide records.
    pub user: String,
    /// The record itself, JSON text.
    pub body: String,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 (hex) over all of the above.
    pub hash: String,
}

/// The chain's end, kept apart from the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

fn hash_of(seq: u64, at_ms: i64, kind: &str, user: &str, body: &str, prev: &str) -> String {
    let mut h = sha2::Sha256::new();
    for part in [&seq.to_string(), &at_ms.to_string(), kind, user, body, prev] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The record that follows `head` (`None`: the first).
pub fn next(head: Option<&Head>, at_ms: i64, kind: &str, user: &str, body: String) -> Entry {
    let (seq, prev) = match head {
        Some(h) => (h.seq + 1, h.hash.clone()),
        None => (1, GENESIS.to_owned()),
    };
    let hash = hash_of(seq, at_ms, kind, user, &body, &prev);
    Entry {
        seq,
        at_ms,
        kind: kind.to_owned(),
        user: user.to_owned(),
        body,
        prev,
        hash,
    }
}

impl Entry {
    /// The head this record makes.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }
}

/// What is wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "tamper", rename_all = "snake_case")]
pub enum Tamper {
    #[error("record {seq} was edited: its hash does not match its contents")]
    Edited { seq: u64 },
    #[error("records are missing after {after}: the next is {found}")]
    Deleted { after: u64, found: u64 },
    #[error("record {seq} is out of order")]
    Reordered { seq: u64 },
    #[error("record {seq} does not follow the record before it")]
    Unlinked { seq: u64 },
    #[error("the log ends at record {found}, but the head says {expected}: records were cut off")]
    Truncated { expected: u64, found: u64 },
    #[error("the head does not match the last record")]
    HeadMismatch,
}

/// Checks a whole chain (records in storage order) against its head. Answers the number of
/// records.
///
/// # Errors
/// The first [`Tamper`] found.
pub fn verify(entries: &[Entry], head: Option<&Head>) -> Result<u64, Tamper> {
    let present: std::collections::HashSet<u64> = entries.iter().map(|e| e.seq).collect();
    let mut prev_hash = GENESIS.to_owned();
    let mut prev_seq = 0u64;
    for e in entries {
        if e.seq <= prev_seq {
            return Err(Tamper::Reordered { seq: e.seq });
        }
        if e.hash != hash_of(e.seq, e.at_ms, &e.kind, &e.user, &e.body, &e.prev) {
            return Err(Tamper::Edited { seq: e.seq });
        }
        if e.seq != prev_seq + 1 {
            // The record that should come next is further on: moved, not deleted.
            if present.contains(&(prev_seq + 1)) {
                return Err(Tamper::Reordered { seq: prev_seq + 1 });
            }
            return Err(Tamper::Deleted {
                after: prev_seq,
                found: e.seq,
            });
        }
        if e.prev != prev_hash {
            return Err(Tamper::Unlinked { seq: e.seq });
        }
        prev_hash.clone_from(&e.hash);
        prev_seq = e.seq;
    }
    match head {
        None if prev_seq == 0 => Ok(0),
        None => Err(Tamper::HeadMismatch),
        Some(h) if h.seq > prev_seq => Err(Tamper::Truncated {
            expected: h.seq,
            found: prev_seq,
        }),
        Some(h) if h.seq == prev_seq && h.hash == prev_hash => Ok(prev_seq),
        Some(_) => Err(Tamper::HeadMismatch),
    }
}

/// The IST calendar day `date` as [start, end] in UTC (an export "per day" means the Indian day).
pub fn ist_day(date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = date
        .and_hms_opt(0, 0, 0)?
        .and_local_timezone(upstox_types::IST)
        .single()?
        .with_timezone(&Utc);
    Some((
        start,
        start + chrono::Duration::days(1) - chrono::Duration::milliseconds(1),
    ))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Records as CSV (RFC 4180 quoting): `seq,at,kind,user,body,prev,hash`, `at` in RFC 3339 UTC;
/// the hashes let anyone re-check the chain from the file.
pub fn csv(rows: &[Entry]) -> String {
    let mut out = String::from("seq,at,kind,user,body,prev,hash\n");
    for r in rows {
        let at = Utc
            .timestamp_millis_opt(r.at_ms)
            .single()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.seq,
            at,
            csv_field(&r.kind),
            csv_field(&r.user),
            csv_field(&r.body),
            r.prev,
            r.hash
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> (Vec<Entry>, Head) {
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..n {
            let head = entries.last().map(Entry::head);
            entries.push(next(
                head.as_ref(),
                1_000 + i as i64,
                "signal",
                "SIM001",
                format!("{{\"n\":{i}}}"),
            ));
        }
        let head = entries.last().map(Entry::head).expect("head");
        (entries, head)
    }

    #[test]
    fn an_untouched_chain_verifies_and_every_kind_of_tampering_is_caught() {
        let (e, head) = chain(6);
        assert_eq!(verify(&e, Some(&head)), Ok(6));

        let mut edited = e.clone();
        edited[2].body = "{\"n\":99}".into();
        assert_eq!(verify(&edited, Some(&head)), Err(Tamper::Edited { seq: 3 }));

        // An edit that recomputes the record's own hash still breaks the next link.
        let mut rehashed = e.clone();
        rehashed[2].body = "{\"n\":99}".into();
        let r = &rehashed[2];
        rehashed[2].hash = hash_of(r.seq, r.at_ms, &r.kind, &r.user, &r.body, &r.prev);
        assert_eq!(verify(&rehashed, Some(&head)), Err(Tamper::Unlinked { seq: 4 }));

        let mut deleted = e.clone();
        deleted.remove(3);
        assert_eq!(
            verify(&deleted, Some(&head)),
            Err(Tamper::Deleted { after: 3, found: 5 })
        );

        let mut reordered = e.clone();
        reordered.swap(1, 2);
        assert_eq!(verify(&reordered, Some(&head)), Err(Tamper::Reordered { seq: 2 }));

        let truncated = &e[..4];
        assert_eq!(
            verify(truncated, Some(&head)),
            Err(Tamper::Truncated { expected: 6, found: 4 })
        );
        assert_eq!(verify(&[], None), Ok(0));
        assert_eq!(verify(&e, None), Err(Tamper::HeadMismatch));
        let forged = Head {
            seq: 6,
            hash: GENESIS.into(),
        };
        assert_eq!(verify(&e, Some(&forged)), Err(Tamper::HeadMismatch));
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_keeps_the_hashes() {
        let e = next(None, 0, "consent", "SIM001", r#"{"a":"x, \"y\""}"#.into());
        let text = csv(std::slice::from_ref(&e));
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("seq,at,kind,user,body,prev,hash"));
        let row = lines.next().expect("row");
        assert!(row.starts_with("1,1970-01-01T00:00:00+00:00,consent,SIM001,"), "{row}");
        assert!(row.contains(r#""{""a"":""x, \""y\""""}""#), "{row}");
        assert!(row.ends_with(&format!("{GENESIS},{}", e.hash)), "{row}");
        let (from, to) = ist_day(NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")).expect("day");
        assert_eq!(from.to_rfc3339(), "2026-12-01T18:30:00+00:00");
        assert_eq!((to - from).num_milliseconds(), 86_400_000 - 1);
    }
}
