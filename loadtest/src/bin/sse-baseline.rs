//! `sse-baseline`: the smallest client that measures what the load test measures, to tell
//! the load test's own delays from the server's. One tokio task per stream, an HTTP/1.0
//! GET over a plain TCP socket (so the body comes unchunked), no goose, no reconnection, no
//! shared state while it runs: each task keeps its lateness samples in its own vector, and
//! they are put into HdrHistograms once every task has ended. Lateness is judged against the
//! same drift-free schedule as the load test's (`loadtest::measure::schedule`), events read
//! after the deadline are not measured (as in the load test), and the same hiccup tickers
//! watch its runtime.
//!
//! ```sh
//! taskset -c 1 sse-baseline --host http://127.0.0.1:8080 --streams 5000 --rate 2000 \
//!     --secs 20 --interval-ms 100
//! ```

use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser as _;
use hdrhistogram::Histogram;
use loadtest::measure::hiccup::{self, HiccupMeter};
use loadtest::measure::metrics::{new_histogram, record};
use loadtest::measure::schedule::{Lateness, Schedule};
use loadtest::report::summary::Percentiles;
use sse_digits::sse::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Hold SSE streams, measure each event's lateness, print the percentiles.
#[derive(Debug, clap::Parser)]
#[command(name = "sse-baseline", about, long_about = None)]
struct Args {
    /// The server, `http://HOST:PORT` (plain HTTP only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    host: String,
    /// The stream's path.
    #[arg(long, default_value = "/digits")]
    path: String,
    /// Streams held at once.
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// Streams opened per second until all are (the load test's `-r`).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds every stream is held once all have started (the load test's `-t`).
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// Interval asked of the server, ms: the schedule lateness is judged against.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
}

/// What one stream saw.
#[derive(Debug, Default)]
struct StreamResult {
    /// When its response headers arrived.
    opened: Option<Instant>,
    /// Per event after the anchor: arrival (µs since the start) and lateness (µs).
    samples: Vec<(u64, u64)>,
    /// Why it ended early, if it did.
    error: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse-baseline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let authority = args
        .host
        .strip_prefix("http://")
        .context("--host must be http://HOST:PORT")?
        .trim_end_matches('/')
        .to_owned();
    let addr = tokio::net::lookup_host(&authority)
        .await?
        .next()
        .context("--host resolves to no address")?;
    if args.rate.is_nan() || args.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let request = format!(
        "GET {}?interval_ms={} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\r\n",
        args.path, args.interval_ms
    );
    let ramp = Duration::from_secs_f64(args.streams as f64 / args.rate);
    let start = Instant::now();
    let deadline = start + ramp + Duration::from_secs(args.secs);
    // Room for every event of a stream, so no task reallocates while it measures.
    let capacity = usize::try_from((ramp + Duration::from_secs(args.secs)).as_millis())
        .unwrap_or(0)
        / usize::try_from(interval.as_millis()).unwrap_or(1).max(1)
        + 16;
    let meter = HiccupMeter::start(
        hiccup::tickers_for_current_runtime(),
        hiccup::DEFAULT_PERIOD,
        deadline,
    );
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| {
            let begin = start + Duration::from_secs_f64(i as f64 / args.rate);
            let request = request.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(begin.into()).await;
                let mut result = StreamResult {
                    samples: Vec::with_capacity(capacity),
                    ..StreamResult::default()
                };
                if let Err(e) = stream(addr, &request, interval, start, deadline, &mut result).await
                {
                    result.error = Some(e.to_string());
                }
                result
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("a stream's task panicked")?);
    }
    let hiccups = meter.stop().await;

    let opened = results.iter().filter(|r| r.opened.is_some()).count();
    let errors = results.iter().filter(|r| r.error.is_some()).count();
    // Steady: once the last stream had opened (the load test's "when steady").
    let steady_since_us = results
        .iter()
        .filter_map(|r| r.opened)
        .max()
        .map_or(u64::MAX, |at| micros(at - start));
    let mut lateness = new_histogram();
    let mut steady = new_histogram();
    for (at_us, late_us) in results.iter().flat_map(|r| r.samples.iter().copied()) {
        record(&mut lateness, Duration::from_micros(late_us));
        if at_us >= steady_since_us {
            record(&mut steady, Duration::from_micros(late_us));
        }
    }
    println!(
        "=== sse-baseline: {} streams of {}{}?interval_ms={} | opened {opened} | ended early {errors}",
        args.streams, args.host, args.path, args.interval_ms
    );
    if let Some(first) = results.iter().find_map(|r| r.error.as_deref()) {
        println!("  first error     {first}");
    }
    println!(
        "  {:<16}{:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "ms", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    row("lateness", &lateness);
    row("  when steady", &steady);
    row("hiccups", &hiccups.histogram);
    Ok(())
}

/// One stream: connect, GET, then read events until the deadline or the end.
async fn stream(
    addr: std::net::SocketAddr,
    request: &str,
    interval: Duration,
    start: Instant,
    deadline: Instant,
    result: &mut StreamResult,
) -> anyhow::Result<()> {
    // One timer per stream, as the load test has.
    let mut timer = pin!(tokio::time::sleep_until(deadline.into()));
    let mut socket = TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    socket.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut head = Vec::new();
    // The response head, up to its blank line; what follows it is body.
    let body_start = loop {
        let n = read_until(&mut socket, &mut buf, timer.as_mut()).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > 64 * 1024 {
            bail!("response head larger than 64 KiB");
        }
    };
    if !head.starts_with(b"HTTP/1.0 200") && !head.starts_with(b"HTTP/1.1 200") {
        let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        bail!("answered {}", String::from_utf8_lossy(line));
    }
    result.opened = Some(Instant::now());
    let mut parser = Parser::new();
    let mut schedule = Schedule::new(interval);
    let mut feed = |bytes: &[u8], at: Instant, samples: &mut Vec<(u64, u64)>| {
        parser.feed(bytes, |event| {
            let Ok(id) = event.last_event_id.parse::<u64>() else {
                return;
            };
            let late = match schedule.lateness(id, at) {
                Lateness::Anchor => return,
                Lateness::Late(late) => late,
                Lateness::Early(_) => Duration::ZERO,
            };
            samples.push((micros(at - start), micros(late)));
        });
    };
    feed(
        &head[body_start..],
        result.opened.unwrap_or(start),
        &mut result.samples,
    );
    loop {
        let n = read_until(&mut socket, &mut buf, timer.as_mut()).await?;
        let at = Instant::now();
        // The end, or read after the deadline: not measured.
        if n == 0 || at >= deadline {
            return Ok(());
        }
        feed(&buf[..n], at, &mut result.samples);
    }
}

/// Reads into `buf`; 0 at the end of the stream or at the deadline.
async fn read_until(
    socket: &mut TcpStream,
    buf: &mut [u8],
    deadline: Pin<&mut tokio::time::Sleep>,
) -> std::io::Result<usize> {
    tokio::select! {
        biased;
        n = socket.read(buf) => n,
        () = deadline => Ok(0),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn row(name: &str, h: &Histogram<u64>) {
    let p = Percentiles::of(h);
    println!(
        "  {name:<16}{:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.3}",
        p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.mean_ms
    );
}
