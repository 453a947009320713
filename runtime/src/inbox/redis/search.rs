//! Searches of a [`RedisInbox`](super::RedisInbox): Redis keeps no index of its
//! records by time, type or error, so a search reads every record's few searched
//! fields (`SCAN` of the records' keys, a pipelined `HMGET` a batch) and keeps the
//! page here. It costs the same whatever it asks: linear in the records the inbox
//! holds (BENCHMARKS.md measures it), never capped, and only the page's records are
//! read whole.

use redis::Value;

use super::{number, text, within, RedisInbox};
use crate::inbox::{from_unix_millis, Cursor, Filter, InboxError, StoredDelivery};

/// How many keys a `SCAN` asks for at a time.
const BATCH: usize = 1000;

/// The fields a search reads of each record.
const FIELDS: [&str; 7] = ["state", "type", "lane", "last_error", "received_at", "id", "created"];

impl RedisInbox {
    /// Calls `visit` with every record `filter` matches past `after` (unordered), its
    /// headers and body left empty.
    pub(super) async fn scan_matching(
        &self,
        filter: &Filter,
        after: Option<&Cursor>,
        mut visit: impl FnMut(StoredDelivery),
    ) -> Result<(), InboxError> {
        let pattern = format!("{}*", glob_escape(&self.records));
        let mut connection = self.connection.clone();
        let mut cursor = 0_u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(BATCH);
            let (next, keys): (u64, Vec<String>) =
                within(self.timeout, "Redis", scan.query_async(&mut connection)).await?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("HMGET").arg(key).arg(&FIELDS[..]);
                }
                let rows: Vec<Vec<Value>> = within(self.timeout, "Redis", pipe.query_async(&mut connection)).await?;
                for (key, row) in keys.iter().zip(rows) {
                    let Some(delivery) = self.summary(key, &row) else { continue };
                    if filter.matches(&delivery) && after.is_none_or(|after| after.precedes(&delivery)) {
                        visit(delivery);
                    }
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// A record's searched fields as a delivery without payload; `None` for a record
    /// that expired between the `SCAN` and its read.
    fn summary(&self, key: &str, row: &[Value]) -> Option<StoredDelivery> {
        let field = |n: usize| row.get(n).filter(|value| !matches!(value, Value::Nil));
        let state = text(field(0)?).parse().ok()?;
        let received = number(field(4)?);
        Some(StoredDelivery {
            key: key.strip_prefix(&*self.records)?.to_owned(),
            id: field(5).map(text).unwrap_or_default(),
            event_type: field(1).map(text).unwrap_or_default(),
            headers: Vec::new(),
            body: Vec::new(),
            signed_at: None,
            state,
            attempts: 0,
            last_error: field(3).map(text),
            received_at: from_unix_millis(received),
            order_key: field(2).map(text),
            created_at: from_unix_millis(field(6).map_or(received, number)),
        })
    }
}

/// `text` matched literally by a `SCAN` pattern: `*`, `?`, `[`, `]` and `\` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_is_matched_literally() {
        assert_eq!(super::glob_escape("app:[eu]*?\\:d:"), "app:\\[eu\\]\\*\\?\\\\:d:");
    }
}
