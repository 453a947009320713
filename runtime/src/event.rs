//! What a handler learns about the event besides its data.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    provider: &'static str,
    id: String,
    event_type: String,
    created: Option<String>,
    timestamp: Option<u64>,
    group: Option<String>,
}

impl EventMeta {
    /// Facts about an event, for calling a handler directly in a test.
    pub fn new(provider: &'static str, id: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self { provider, id: id.into(), event_type: event_type.into(), created: None, timestamp: None, group: None }
    }

    /// Sets when the provider says the event was created, as it wrote it.
    #[must_use]
    pub fn with_created(mut self, created: impl Into<String>) -> Self {
        self.created = Some(created.into());
        self
    }

    /// Sets the signed delivery timestamp, in unix seconds.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: u64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the coarser name the event is also routed by: GitHub's `issues` for
    /// `issues.opened`. A handler for the exact type wins over one for the group.
    #[must_use]
    pub fn with_event_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The provider's name (`groq`).
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The event id: the same for every retry of one event.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type (`resource.created`).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The coarser name the event is also routed by, for schemes that have one
    /// (GitHub: the `X-GitHub-Event` name, `issues`, when the type is `issues.opened`).
    pub fn event_group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The names a handler may be registered under, most specific first: the type,
    /// then the group if there is one.
    pub fn route_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.event_type.as_str()).chain(self.group.as_deref())
    }

    /// When the provider says the event was created, as it wrote it, if it did.
    pub fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }

    /// The signed timestamp of this delivery, in unix seconds, for schemes that sign one.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }
}

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
