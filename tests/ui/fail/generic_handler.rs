use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "groq")]
impl App {
    #[event("resource.created")]
    async fn created<T: serde::de::DeserializeOwned>(&self, _data: T) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
