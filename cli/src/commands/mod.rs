//! One file per command, as cargo's `commands/` (`main.rs` holds the command line and
//! what several commands share: secrets, the provider's scheme, a delivery's recipe).

pub(crate) mod inbox;
pub(crate) mod listen;
pub(crate) mod providers;
pub(crate) mod send;
pub(crate) mod sign;
pub(crate) mod trigger;
pub(crate) mod verify;
