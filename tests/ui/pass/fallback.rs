use hookroute::{webhook_handlers, HandlerError, UnknownEvent};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[fallback]
    async fn other(&self, event: UnknownEvent) -> Result<(), HandlerError> {
        let _ = (event.event_type(), event.data().get());
        Ok(())
    }
}

fn main() {
    let event = AppEvent::from_slice(br#"{"id":"e","type":"resource.moved","data":[1,2]}"#).unwrap();
    match event {
        AppEvent::Unknown(unknown) => {
            assert_eq!(unknown.event_type(), "resource.moved");
            assert_eq!(unknown.data().get(), "[1,2]");
        }
        AppEvent::ResourceCreated(_) => unreachable!(),
    }
}
