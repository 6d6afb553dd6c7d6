//! `openai-mock`: serves the mock on a TCP address until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use openai_mock::MockConfig;

/// A mock of OpenAI's streaming chat completions with exact token timing, for load tests.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; loopback unless asked otherwise.
    #[arg(long, default_value = "127.0.0.1:8085")]
    bind: SocketAddr,
    /// Milliseconds from the request to the first content token.
    #[arg(long, default_value_t = duration_ms(MockConfig::DEFAULT_TTFT))]
    ttft_ms: u64,
    /// Content tokens per second after the first one.
    #[arg(long, default_value_t = MockConfig::DEFAULT_TOKENS_PER_SEC, value_parser = positive_rate)]
    tokens_per_sec: f64,
    /// Tokens joined into one chunk.
    #[arg(long, default_value_t = MockConfig::DEFAULT_TOKENS_PER_EVENT,
          value_parser = clap::value_parser!(u32).range(1..))]
    tokens_per_event: u32,
    /// Tokens per completion; a request's max_tokens may ask for fewer.
    #[arg(long, default_value_t = MockConfig::DEFAULT_OUTPUT_TOKENS)]
    output_tokens: u32,
    /// Require `Authorization: Bearer KEY` on every completion request.
    #[arg(long, env = "MOCK_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Refuses rates the schedule would treat as unpaced: on the command line they are typos.
fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of tokens per second"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = MockConfig {
        ttft: Duration::from_millis(args.ttft_ms),
        tokens_per_sec: args.tokens_per_sec,
        tokens_per_event: args.tokens_per_event,
        output_tokens: args.output_tokens,
        api_key: args.api_key,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("openai-mock: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args.bind, config))
}

async fn run(bind: SocketAddr, config: MockConfig) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("openai-mock: cannot listen on {bind}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(bind);
    println!("openai-mock listening on http://{address}/v1/chat/completions");
    match openai_mock::serve_with_shutdown(listener, config, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openai-mock: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (the signal service managers send).
async fn stop_signal() {
    let ctrl_c = async {
        // Without a Ctrl-C handler the process can still be stopped by other signals.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => drop(term.recv().await),
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_library() {
        let args = Args::try_parse_from(["openai-mock"]).unwrap();
        assert_eq!(args.bind, "127.0.0.1:8085".parse().unwrap());
        assert_eq!(
            Duration::from_millis(args.ttft_ms),
            MockConfig::DEFAULT_TTFT
        );
        assert_eq!(args.tokens_per_sec, MockConfig::DEFAULT_TOKENS_PER_SEC);
        assert_eq!(args.tokens_per_event, 1);
        assert_eq!(args.output_tokens, 64);
    }

    #[test]
    fn bad_rates_and_batches_are_refused() {
        for rate in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(
                Args::try_parse_from(["openai-mock", "--tokens-per-sec", rate]).is_err(),
                "{rate}"
            );
        }
        assert!(Args::try_parse_from(["openai-mock", "--tokens-per-event", "0"]).is_err());
    }

    #[test]
    fn flags_are_read() {
        let args = Args::try_parse_from([
            "openai-mock",
            "--bind=127.0.0.1:0",
            "--ttft-ms=5",
            "--tokens-per-sec=12.5",
            "--tokens-per-event=3",
            "--output-tokens=7",
            "--api-key=k",
        ])
        .unwrap();
        assert_eq!(args.ttft_ms, 5);
        assert_eq!(args.tokens_per_sec, 12.5);
        assert_eq!(args.tokens_per_event, 3);
        assert_eq!(args.output_tokens, 7);
        assert_eq!(args.api_key.as_deref(), Some("k"));
    }
}
