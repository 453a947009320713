//! What a handler learns about the event besides its data.

use std::num::NonZeroUsize;

use serde_json::value::RawValue;

/// Facts about a delivered event: its id, type, creation time and provider.
///
/// A handler receives it as its optional second parameter
/// (`async fn created(&self, data: Resource, meta: &EventMeta)`).
///
/// ```
/// use hookroute_runtime::EventMeta;
///
/// let meta = EventMeta::new("groq", "evt_1", "resource.created");
/// assert_eq!(meta.id(), "evt_1");
/// assert_eq!(meta.event_type(), "resource.created");
/// assert_eq!(meta.provider(), "groq");
/// ```
#[derive(Clone)]
pub struct EventMeta {
    provider: &'static str,
    /// `[<namespace>:]<provider>:event:<id>` (the idempotency key), the type, then the
    /// creation time and the group when set, in that order: every text of the event in
    /// one allocation.
    text: String,
    id_start: usize,
    id_end: usize,
    type_end: usize,
    /// Where the creation time ends, if there is one; it starts at `type_end`.
    created_end: Option<NonZeroUsize>,
    /// Where the group ends, if there is one; it starts where the creation time ends.
    group_end: Option<NonZeroUsize>,
    /// The signed timestamp (0, the epoch, is no signed time: `None`).
    timestamp: Option<std::num::NonZeroU64>,
    attempt: Option<u32>,
    /// Where the ordering key ends (in inbox mode, when the handler declared one); it
    /// starts where the group ends.
    key_end: Option<std::num::NonZeroU32>,
    superseded: bool,
}

// A delivery's facts are moved from step to step (into its `Outcome`, into the answer):
// at 128 bytes or less a move is a few vector moves, past it a call to `memcpy` (136
// bytes with a `Range` per optional text cost 16 such calls per retried delivery).
const _: () = assert!(std::mem::size_of::<EventMeta>() <= 128);

/// Between the provider's name and the id in an idempotency key.
const KEY_INFIX: &str = ":event:";

impl EventMeta {
    /// Facts about an event, for calling a handler directly in a test.
    pub fn new(provider: &'static str, id: impl AsRef<str>, event_type: impl AsRef<str>) -> Self {
        Self::with_capacity("", provider, id.as_ref(), event_type.as_ref(), 0)
    }

    /// An event's facts with room for `extra` more bytes of text.
    fn with_capacity(namespace: &str, provider: &'static str, id: &str, event_type: &str, extra: usize) -> Self {
        let namespaced = if namespace.is_empty() { 0 } else { namespace.len() + 1 };
        let mut text =
            String::with_capacity(namespaced + provider.len() + KEY_INFIX.len() + id.len() + event_type.len() + extra);
        if namespaced > 0 {
            text.push_str(namespace);
            text.push(':');
        }
        text.push_str(provider);
        text.push_str(KEY_INFIX);
        let id_start = text.len();
        text.push_str(id);
        let id_end = text.len();
        text.push_str(event_type);
        let type_end = text.len();
        Self {
            provider,
            text,
            id_start,
            id_end,
            type_end,
            created_end: None,
            group_end: None,
            timestamp: None,
            attempt: None,
            key_end: None,
            superseded: false,
        }
    }

    /// The facts of a verified delivery, allocated once; its key is in `namespace`
    /// (none when empty).
    pub(crate) fn from_delivery(
        namespace: &str,
        provider: &'static str,
        id: &str,
        event_type: &str,
        created: Option<&str>,
        group: Option<&str>,
        timestamp: Option<u64>,
    ) -> Self {
        let extra = created.map_or(0, str::len) + group.map_or(0, str::len);
        let mut meta = Self::with_capacity(namespace, provider, id, event_type, extra);
        if let Some(created) = created {
            meta.created_end = meta.push(created);
        }
        if let Some(group) = group {
            meta.group_end = meta.push(group);
        }
        meta.timestamp = timestamp.and_then(std::num::NonZeroU64::new);
        meta
    }

    /// Appends `text`; where it ends. Never `None`: the text holds at least `:event:`.
    fn push(&mut self, text: &str) -> Option<NonZeroUsize> {
        self.text.push_str(text);
        NonZeroUsize::new(self.text.len())
    }

    /// Where the group starts: after the creation time.
    fn group_start(&self) -> usize {
        self.created_end.map_or(self.type_end, NonZeroUsize::get)
    }

    /// Sets when the provider says the event was created, as it wrote it.
    #[must_use]
    pub fn with_created(mut self, created: impl AsRef<str>) -> Self {
        let group = self.event_group().map(str::to_owned);
        self.text.truncate(self.type_end);
        self.created_end = self.push(created.as_ref());
        if let Some(group) = group {
            self.group_end = self.push(&group);
        }
        self
    }

    /// Sets the signed delivery timestamp, in unix seconds.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = std::num::NonZeroU64::new(timestamp);
        self
    }

    /// Sets which attempt of an inbox worker this is (1 for the first).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Sets the coarser name the event is also routed by: GitHub's `issues` for
    /// `issues.opened`. A handler for the exact type wins over one for the group.
    #[must_use]
    pub fn with_event_group(mut self, group: impl AsRef<str>) -> Self {
        self.text.truncate(self.group_start());
        self.group_end = self.push(group.as_ref());
        self
    }

    /// The idempotency store's key for this event: `<namespace>:<provider>:event:<id>`,
    /// or `<provider>:event:<id>` with no namespace.
    pub(crate) fn store_key(&self) -> &str {
        &self.text[..self.id_end]
    }

    /// The provider's name (`groq`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The event id: the same for every retry of one event.
    pub fn id(&self) -> &str {
        &self.text[self.id_start..self.id_end]
    }

    /// The event type (`resource.created`).
    pub fn event_type(&self) -> &str {
        &self.text[self.id_end..self.type_end]
    }

    /// The coarser name the event is also routed by, for schemes that have one
    /// (GitHub: the `X-GitHub-Event` name, `issues`, when the type is `issues.opened`).
    pub fn event_group(&self) -> Option<&str> {
        self.group_end.map(|end| &self.text[self.group_start()..end.get()])
    }

    /// The names a handler may be registered under, most specific first: the type,
    /// then the group if there is one.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.event_type()).chain(self.event_group())
    }

    /// When the provider says the event was created, as it wrote it, if it did.
    pub fn created(&self) -> Option<&str> {
        self.created_end.map(|end| &self.text[self.type_end..end.get()])
    }

    /// The signed timestamp of this delivery, in unix seconds, for schemes that sign one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp.map(std::num::NonZeroU64::get)
    }

    /// Sets the ordering key and whether a newer event of that key was already
    /// handled (inbox mode; for calling a handler directly in a test too).
    #[must_use]
    pub fn with_order(mut self, key: Option<&str>, superseded: bool) -> Self {
        self.text.truncate(self.key_start());
        self.key_end = key.and_then(|key| {
            self.text.push_str(key);
            u32::try_from(self.text.len()).ok().and_then(std::num::NonZeroU32::new)
        });
        self.superseded = superseded;
        self
    }

    /// Where the ordering key starts: after the group.
    fn key_start(&self) -> usize {
        self.group_end.map_or(self.group_start(), NonZeroUsize::get)
    }

    /// In inbox mode, the ordering key of the event when its handler declared one
    /// (`#[event(.., key = "data.object.customer")]`): `cus_123`.
    pub fn order_key(&self) -> Option<&str> {
        self.key_end.map(|end| &self.text[self.key_start()..end.get() as usize])
    }

    /// In inbox mode, whether an event of the same [ordering key](Self::order_key)
    /// created after this one was already handled: this one is stale (a retry that
    /// arrived late, say). A handler may then skip it; `stale = "skip"` in the
    /// attribute acknowledges such events without running the handler.
    pub fn superseded(&self) -> bool {
        self.superseded
    }

    /// In inbox mode, which attempt at the event this run is: 1 for the first, more
    /// for the retries of the receiver's schedule. `None` in inline mode, where the
    /// provider retries and says so (if at all) in its own headers.
    pub fn attempt(&self) -> Option<u32> {
        self.attempt
    }
}

// The buffer and its offsets are shown as the facts they hold.
#[allow(clippy::missing_fields_in_debug)]
impl std::fmt::Debug for EventMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMeta")
            .field("provider", &self.provider)
            .field("id", &self.id())
            .field("event_type", &self.event_type())
            .field("created", &self.created())
            .field("timestamp", &self.timestamp())
            .field("group", &self.event_group())
            .finish()
    }
}

/// Equal when every fact is, in whichever order they were set.
impl PartialEq for EventMeta {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider
            && self.id() == other.id()
            && self.event_type() == other.event_type()
            && self.created() == other.created()
            && self.timestamp == other.timestamp
            && self.event_group() == other.event_group()
    }
}

impl Eq for EventMeta {}

/// An event of a type no handler names, with its data left as raw JSON.
///
/// A `#[fallback]` handler receives it; the generated event enum carries it in its
/// `Unknown` variant.
#[derive(Debug, Clone)]
pub struct UnknownEvent {
    meta: EventMeta,
    data: Box<RawValue>,
}

impl UnknownEvent {
    /// An unknown event from its facts and raw data.
    pub fn new(meta: EventMeta, data: Box<RawValue>) -> Self {
        Self { meta, data }
    }

    /// Facts about the event.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    /// The event type no handler names.
    pub fn event_type(&self) -> &str {
        self.meta.event_type()
    }

    /// The event's `data`, exactly as sent.
    pub fn data(&self) -> &RawValue {
        &self.data
    }

    /// Parses the data into `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_reads_back_from_the_one_buffer() {
        let meta =
            EventMeta::from_delivery("", "github", "d-1", "issues.opened", Some("2026"), Some("issues"), Some(7));
        assert_eq!(meta.store_key(), "github:event:d-1");
        assert_eq!((meta.id(), meta.event_type()), ("d-1", "issues.opened"));
        assert_eq!((meta.created(), meta.event_group(), meta.timestamp()), (Some("2026"), Some("issues"), Some(7)));
        assert_eq!(meta.route_names().collect::<Vec<_>>(), ["issues.opened", "issues"]);
        assert_eq!(
            format!("{meta:?}"),
            r#"EventMeta { provider: "github", id: "d-1", event_type: "issues.opened", created: Some("2026"), timestamp: Some(7), group: Some("issues") }"#
        );
    }

    #[test]
    fn equal_facts_are_equal_whatever_order_they_were_set_in() {
        let a = EventMeta::new("groq", "e", "t").with_created("c").with_event_group("g");
        let b = EventMeta::new("groq", "e", "t").with_event_group("g").with_created("c");
        assert_eq!(a, b);
        assert_eq!(a, EventMeta::from_delivery("", "groq", "e", "t", Some("c"), Some("g"), None));
        assert_ne!(a, b.clone().with_timestamp(1));
        assert_ne!(EventMeta::new("groq", "e", "tx"), EventMeta::new("groq", "et", "x"));
    }

    #[test]
    fn setting_a_fact_again_replaces_it() {
        let meta = EventMeta::new("groq", "e", "t").with_event_group("g").with_created("c").with_created("created");
        assert_eq!((meta.created(), meta.event_group()), (Some("created"), Some("g")));
        let meta = meta.with_event_group("group").with_created("");
        assert_eq!((meta.created(), meta.event_group(), meta.event_type()), (Some(""), Some("group"), "t"));
        assert_eq!(meta.store_key(), "groq:event:e");
    }
}
