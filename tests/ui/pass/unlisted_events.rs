use hookroute::{webhook_handlers, HandlerError};

struct App;

// Names a catalog does not know yet are accepted with `unlisted`, beside listed ones.
#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("resource.archived", unlisted)]
    async fn archived(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    assert_eq!(AppEvent::EVENT_TYPES, ["resource.created", "resource.archived"]);
}
