//! The mock over a real socket: every test starts its own server on `127.0.0.1:0` through
//! `helpers::spawn_mock` and talks to it with plain HTTP.

mod errors;
mod helpers;
mod shutdown;
mod streaming;
