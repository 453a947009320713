//! Ordered lanes and limits: what a delivery's handler declared about when it may run.

/// How a delivery is ordered and limited; [`Order::NONE`] for an unordered one.
///
/// A handler declared with an ordering key (`#[event("customer.subscription.updated",
/// key = "data.object.customer")]`) puts each of its deliveries in the **lane** of that
/// key. An inbox that [orders](super::Inbox::orders) takes a delivery of a lane only when
///
/// - fewer than [`Limits::in_flight`] (1 unless declared) deliveries older than it in its
///   lane are still pending (queued, retrying or running): the one the provider created
///   first runs first ([`Order::created_ms`], else arrival), and a retrying delivery holds
///   its lane;
/// - fewer than `in_flight` other deliveries of its lane run under a live lease;
/// - with a [rate](Limits::key_interval_ms), the last start of a rate-limited delivery
///   of its lane is that long ago (deliveries without a rate neither wait for it nor
///   count toward it);
///
/// and a delivery whose type has a [fleet-wide cap](Limits::type_concurrency) only while
/// fewer than that many of its type run. Done and dead deliveries hold nothing. A lane
/// whose delivery finished goes to the back of the line: one busy lane never delays the
/// others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Order<'a> {
    /// The ordering key: the deliveries of one key run in order, at most
    /// [`Limits::in_flight`] at once, across every worker sharing the inbox.
    pub key: Option<&'a str>,
    /// When the provider created the event (Unix milliseconds), where its scheme says;
    /// the deliveries of a key run in this order, then in arrival order. `None`: arrival.
    pub created_ms: Option<u64>,
    /// The limits declared on the handler.
    pub limits: Limits,
}

impl Order<'_> {
    /// An unordered, unlimited delivery.
    pub const NONE: Order<'static> = Order { key: None, created_ms: None, limits: Limits::NONE };
}

/// The limits a handler declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At most this many deliveries of one ordering key run at once (default 1).
    pub in_flight: u32,
    /// At most this many deliveries of this event type run at once, fleet-wide.
    pub type_concurrency: Option<u32>,
    /// The rate-limited deliveries of one ordering key start at least this many
    /// milliseconds apart (a declared `rate = "10/s"` is 100).
    pub key_interval_ms: Option<u64>,
}

impl Limits {
    /// One at a time per key, no type cap, no rate.
    pub const NONE: Limits = Limits { in_flight: 1, type_concurrency: None, key_interval_ms: None };
}

impl Default for Limits {
    fn default() -> Self {
        Self::NONE
    }
}

/// What a handler declared in `#[event(..)]` about ordering and limits, as the
/// attribute generates it: `#[event("customer.subscription.updated", key =
/// "data.object.customer", in_flight = 1, rate = "10/s", stale = "skip")]`,
/// `#[event("charge.succeeded", concurrency = 2)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The event type it applies to.
    pub event_type: &'static str,
    /// The path of the ordering key in the JSON body, one name per step
    /// (`["data", "object", "customer"]`); empty without a key.
    pub key: &'static [&'static str],
    /// The limits.
    pub limits: Limits,
    /// Acknowledge a delivery without running it when a newer one of its key was
    /// already handled.
    pub skip_stale: bool,
}

impl Rule {
    /// The ordering key of a delivery's `body`: the string (or number) at the
    /// [path](Self::key). `None` without a key path, and when the body has nothing
    /// there (or is not JSON): such a delivery runs in no lane.
    pub fn key_of(&self, body: &[u8]) -> Option<String> {
        if self.key.is_empty() {
            return None;
        }
        // Walks to the key without building the document: the values beside the path
        // are skipped, not kept.
        let mut reader = serde_json::Deserializer::from_slice(body);
        serde::de::DeserializeSeed::deserialize(Seek(self.key), &mut reader).ok().flatten()
    }

    /// The key path as declared: `data.object.customer`.
    pub fn key_path(&self) -> String {
        self.key.join(".")
    }
}

/// Finds the value at a path in a JSON document: its text, for a non-empty string or a
/// number; `None` for anything else or nothing there.
struct Seek<'p>(&'p [&'p str]);

impl<'de> serde::de::DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seek<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok((self.0.is_empty() && !text.is_empty()).then(|| text.to_owned()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| number.to_string()))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| number.to_string()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| serde_json::Number::from_f64(number).map(|n| n.to_string())).flatten())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(wanted) = map.next_key_seed(KeyIs(self.0.first().copied()))? {
            if wanted {
                // The last of duplicate names wins, as in `serde_json::Value`.
                found = map.next_value_seed(Seek(&self.0[1..]))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Self::Value, A::Error> {
        let at = self.0.first().and_then(|step| step.parse::<usize>().ok());
        let (mut found, mut index) = (None, 0);
        loop {
            let item = if Some(index) == at {
                items.next_element_seed(Seek(&self.0[1..]))?.map(|value| found = value)
            } else {
                items.next_element::<serde::de::IgnoredAny>()?.map(|_| ())
            };
            if item.is_none() {
                return Ok(found);
            }
            index += 1;
        }
    }
}

/// Whether an object's member name is the path's next step (never, at its end).
struct KeyIs<'p>(Option<&'p str>);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<bool, E> {
        Ok(self.0 == Some(name))
    }
}

/// The creation time a provider wrote (Unix seconds or milliseconds, or RFC 3339), in
/// Unix milliseconds.
pub(crate) fn created_ms(created: &str) -> Option<u64> {
    let created = created.trim().trim_matches('"');
    if let Ok(number) = created.parse::<u64>() {
        // Seconds until the year 5138; milliseconds after.
        return Some(if number < 100_000_000_000 { number.saturating_mul(1000) } else { number });
    }
    if let Ok(number) = created.parse::<f64>() {
        if number.is_finite() && number >= 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Some((number * 1000.0) as u64);
        }
    }
    let at = humantime::parse_rfc3339_weak(created).ok()?;
    at.duration_since(std::time::SystemTime::UNIX_EPOCH).ok().map(|since| crate::backend::millis(since).unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: Rule = Rule {
        event_type: "customer.subscription.updated",
        key: &["data", "object", "customer"],
        limits: Limits::NONE,
        skip_stale: false,
    };

    #[test]
    fn the_key_is_read_from_the_body() {
        let body = br#"{"data":{"object":{"customer":"cus_1","items":[{"id":7}]}}}"#;
        assert_eq!(CUSTOMER.key_of(body).as_deref(), Some("cus_1"));
        let item = Rule { key: &["data", "object", "items", "0", "id"], ..CUSTOMER };
        assert_eq!(item.key_of(body).as_deref(), Some("7"));
        assert_eq!(CUSTOMER.key_of(br#"{"data":{"object":{"customer":null}}}"#), None);
        assert_eq!(CUSTOMER.key_of(br#"{"data":{}}"#), None);
        assert_eq!(CUSTOMER.key_of(b"not json"), None);
        assert_eq!(Rule { key: &[], ..CUSTOMER }.key_of(body), None);
        // Escaped names and values read as the JSON says; the last duplicate wins.
        let escaped = br#"{"d\u0061ta":{"object":{"customer":"cus_\u00e9","customer":"cus_2"}},"x":[1,{"y":2}]}"#;
        assert_eq!(CUSTOMER.key_of(escaped).as_deref(), Some("cus_2"));
        assert_eq!(Rule { key: &["x", "1", "y"], ..CUSTOMER }.key_of(escaped).as_deref(), Some("2"));
        assert_eq!(Rule { key: &["data", "object"], ..CUSTOMER }.key_of(escaped), None);
        assert_eq!(Rule { key: &["x", "9"], ..CUSTOMER }.key_of(escaped), None);
        assert_eq!(CUSTOMER.key_of(br#"{"data":{"object":{"customer":1.5}}}"#).as_deref(), Some("1.5"));
        assert_eq!(CUSTOMER.key_of(br#"{"data":{"object":{"customer":""}}}"#), None);
    }

    #[test]
    fn creation_times_read_in_milliseconds() {
        assert_eq!(created_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(created_ms("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(created_ms("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(created_ms("2023-11-14T22:13:20.5Z"), Some(1_700_000_000_500));
        assert_eq!(created_ms("yesterday"), None);
    }
}
