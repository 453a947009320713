use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "github")]
impl App {
    #[event("pul_request.opened")]
    async fn opened(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("isues")]
    async fn issues(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("quantum_entanglement")]
    async fn unheard_of(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {}
