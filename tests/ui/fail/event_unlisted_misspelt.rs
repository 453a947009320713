use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "github")]
impl App {
    #[event("brand_new_event", unchecked)]
    async fn new_event(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
