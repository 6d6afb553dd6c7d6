//! `sse-digits`: serve the digits stream and the demo page until Ctrl-C or SIGTERM.

use clap::Parser;
use sse_digits::config::Config;
use sse_digits::shutdown::wait_for_signal;
use sse_digits::startup::Application;
use sse_digits::telemetry::init_tracing;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_tracing();
    let app = Application::build(config)?;
    let handle = app.handle();
    let mut server = tokio::spawn(app.run_until_stopped());
    tokio::select! {
        // The server only ends by itself on an error.
        result = &mut server => return Ok(result??),
        signal = wait_for_signal() => {
            tracing::info!(signal = signal?, open_streams = handle.streams_open(), "draining");
        }
    }
    handle.stop().await;
    server.await??;
    tracing::info!("stopped");
    Ok(())
}
