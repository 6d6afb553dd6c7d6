//! `sse-digits`: serve the digits stream and the demo page until Ctrl-C or SIGTERM.

use clap::Parser;
use sse_digits::config::Config;
use sse_digits::shutdown::wait_for_signal;
use sse_digits::startup::Application;
use sse_digits::telemetry::init_tracing;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    init_tracing();
    // Each stream holds a socket: take the whole open-files allowance, as `ulimit -n` would.
    if let Err(error) = sse_digits::open_files::raise_to_hard_limit() {
        tracing::warn!(%error, "could not raise the open-files limit");
    }
    actix_web::rt::System::new().block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
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
