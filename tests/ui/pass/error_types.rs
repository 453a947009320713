//! Handlers may return any error type that can be shown.
use hookroute::{webhook_handlers, HandlerError};

#[derive(Debug)]
enum MyError {
    Db,
}

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("db")
    }
}

impl std::error::Error for MyError {}

struct App;

#[webhook_handlers(provider = "coreweave")]
impl App {
    #[event("a", unlisted)]
    async fn a(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        let _n: u32 = "1".parse()?; // `?` turns std errors into HandlerError
        Ok(())
    }

    #[event("b", unlisted)]
    async fn b(&self, _data: serde_json::Value) -> Result<(), MyError> {
        Err(MyError::Db)
    }

    #[event("c", unlisted)]
    async fn c(&self, _data: serde_json::Value) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    #[event("d", unlisted)]
    async fn d(&self, _data: serde_json::Value) -> Result<(), String> {
        Err("no".to_owned())
    }

    #[event("e", unlisted)]
    async fn e(&self, _data: serde_json::Value) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {}
