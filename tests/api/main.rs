//! The app over real sockets on 127.0.0.1:0; one test binary, one `spawn_app` helper.

mod abuse;
mod bad_input;
mod binary;
mod digits;
mod helpers;
mod operations;
mod process;
mod reuse_port;
mod shutdown;
mod static_files;
