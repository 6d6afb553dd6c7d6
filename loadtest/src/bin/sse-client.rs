//! `sse-client URL`: one EventSource (the load test's client) that prints what happens, as
//! the classic Node `eventsource` example does (see [`loadtest::client::print`]).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use loadtest::client::print::Printer;
use loadtest::client::{
    ClientOptions, ClientPool, End, EventSource, Limits, PoolOptions, RequestOptions, Stop,
    Transport,
};
use reqwest::Url;

/// Connect to an SSE stream like a browser's EventSource and print its events.
#[derive(Debug, Parser)]
#[command(name = "sse-client", long_about = None)]
struct Args {
    /// The stream's URL, such as http://127.0.0.1:8080/digits, requested exactly as given
    /// (any SSE server).
    #[arg(required_unless_present = "url_flag")]
    url: Option<Url>,
    /// The same, as the load test takes it.
    #[arg(
        long = "url",
        id = "url_flag",
        value_name = "URL",
        conflicts_with = "url"
    )]
    url_flag: Option<Url>,
    /// Resume after this id on the first connection (sent as Last-Event-ID).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// Close the connection after N events, then reconnect (to watch a resume).
    #[arg(long, value_name = "N")]
    drop_after: Option<u64>,
    /// Exit after N events.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// The HTTP client: hyper (through reqwest) or the load test's minimal HTTP/1.1 client
    /// (no TLS, no HTTP/2).
    #[arg(long, value_enum, default_value_t = Transport::Hyper)]
    transport: Transport,
    /// The same limits as the load test's, with the same defaults.
    #[command(flatten)]
    limits: Limits,
    /// The same request flags as the load test's: method, headers, body, TLS, HTTP version.
    #[command(flatten)]
    request: RequestOptions,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(url) = args.url.clone().or_else(|| args.url_flag.clone()) else {
        eprintln!("sse-client: give the stream's URL");
        return ExitCode::FAILURE;
    };
    if let Err(e) = args.limits.validate() {
        eprintln!("sse-client: {e}");
        return ExitCode::FAILURE;
    }
    let request = match args.request.resolve().and_then(|spec| {
        args.transport.check(&spec, url.scheme())?;
        Ok(spec)
    }) {
        Ok(spec) => Arc::new(spec),
        Err(e) => {
            eprintln!("sse-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(warning) = request.insecure_warning() {
        eprintln!("sse-client: {warning}");
    }
    let pool_options = PoolOptions {
        clients: 1,
        source_addrs: Vec::new(),
        connect_timeout: args.limits.connect_timeout(),
        transport: args.transport,
    };
    let pool = match ClientPool::for_requests(&pool_options, &request) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("sse-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = ClientOptions::from_limits(&args.limits, args.drop_after).with_request(request);
    let stop = Arc::new(Stop::never());
    let mut printer = Printer::new(args.max_events, Arc::clone(&stop));
    let mut source = EventSource::new(pool.pick(0).clone(), url, options);
    if let Some(id) = &args.last_event_id {
        source.resume_from(id);
    }
    tokio::select! {
        end = source.run(&mut printer, &stop) => match end {
            End::Status(_) | End::ContentType(_) | End::Encoding(_) | End::TooManyRedirects => {
                ExitCode::FAILURE
            }
            End::Bye | End::NoContent | End::Stopped => ExitCode::SUCCESS,
        },
        _ = tokio::signal::ctrl_c() => ExitCode::from(130),
    }
}
