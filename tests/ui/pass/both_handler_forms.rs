use hookroute::{webhook_handlers, EventMeta, HandlerError};

#[derive(serde::Deserialize)]
struct Resource {
    id: String,
}

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, data: Resource) -> Result<(), HandlerError> {
        let _ = data.id;
        Ok(())
    }

    #[event("resource.deleted")]
    async fn deleted(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        let _ = (data.id, meta.id());
        Ok(())
    }

    /// Methods without a helper attribute are left alone.
    fn helper(&self) -> usize {
        1
    }
}

fn main() {
    let event = AppEvent::from_slice(br#"{"id":"e","type":"resource.created","data":{"id":"r"}}"#).unwrap();
    assert_eq!(event.event_type(), "resource.created");
    assert!(matches!(event, AppEvent::ResourceCreated(_)));
    assert_eq!(AppEvent::EVENT_TYPES, &["resource.created", "resource.deleted"]);
    assert_eq!(App.helper(), 1);
}
