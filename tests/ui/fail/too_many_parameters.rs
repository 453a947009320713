use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created(
        &self,
        _data: serde_json::Value,
        _meta: &hookroute::EventMeta,
        _extra: u32,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
