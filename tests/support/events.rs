//! What test handlers record, and the provider payload types several tests read.

use hookroute::EventMeta;

/// Which handler ran, with the event's type and id: `<handler> <type> <id>`.
#[derive(Debug, Default)]
pub struct Seen(std::sync::Mutex<Vec<String>>);

impl Seen {
    pub fn record(&self, handler: &str, meta: &EventMeta) {
        self.0.lock().unwrap().push(format!("{handler} {} {}", meta.event_type(), meta.id()));
    }

    /// What ran since the last call, in order.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A Stripe snapshot event's data: `{"object": {"id", "object"}}`.
#[derive(Debug, serde::Deserialize)]
pub struct StripeData {
    pub object: StripeObject,
}

#[derive(Debug, serde::Deserialize)]
pub struct StripeObject {
    pub id: String,
    /// The object's kind (`subscription`), where the sender names it.
    #[serde(default)]
    pub object: String,
}

/// A Stripe thin event, as a handler reads it: the event itself.
#[derive(Debug, serde::Deserialize)]
pub struct ThinEvent {
    pub related_object: RelatedObject,
}

#[derive(Debug, serde::Deserialize)]
pub struct RelatedObject {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}
