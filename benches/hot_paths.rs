//! Benchmarks of the hot paths: SSE encoding, the digits stream without the network, SSE
//! parsing, and one stream over loopback through the real server.
//!
//! `cargo bench` runs them all; `cargo bench -- parse` picks one group.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use sse_digits::config::Config;
use sse_digits::digits::{DigitsStream, StreamPlan};
use sse_digits::limits::StreamLimit;
use sse_digits::shutdown::Shutdown;
use sse_digits::sse::{encode, Event, Parser};
use sse_digits::startup::Application;
use sse_digits::telemetry::Metrics;

/// Encoding one digits event, and a multi-line event, into a reused buffer.
fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut buf = BytesMut::with_capacity(256);
    let mut n = 1_000_000u64;
    encode::write_number_event(&mut buf, n);
    group.throughput(Throughput::Bytes(buf.split().len() as u64));
    group.bench_function("digits_event", |b| {
        b.iter(|| {
            n += 1;
            encode::write_number_event(&mut buf, n);
            buf.split().freeze()
        });
    });
    let multi_line = Event::default()
        .with_id("12345")
        .unwrap()
        .with_event("update")
        .unwrap()
        .with_data("first line\nsecond line\r\nthird line\rfourth line");
    group.throughput(Throughput::Bytes(multi_line.to_bytes().len() as u64));
    group.bench_function("multi_line_event", |b| {
        b.iter(|| {
            multi_line.encode_into(&mut buf);
            buf.split().freeze()
        });
    });
    group.finish();
}

/// The digits stream polled with interval 0: how fast it produces events, no network.
fn stream_without_network(c: &mut Criterion) {
    const EVENTS: u64 = 100_000;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let metrics = Metrics::new(1);
    let limit = StreamLimit::new(1);
    let shutdown = Shutdown::new(Duration::ZERO);
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(EVENTS));
    group.bench_function("interval_0", |b| {
        b.iter(|| {
            let plan = StreamPlan {
                first_id: 1,
                count: EVENTS,
                interval: Duration::ZERO,
                retry_ms: 3000,
                keepalive: Some(Duration::from_secs(15)),
                max_duration: None,
                write_stall: None,
            };
            runtime.block_on(async {
                // The stream's timer needs the runtime, so it is built inside it.
                let tracker = metrics.stream_started(limit.try_acquire().unwrap());
                DigitsStream::new(plan, shutdown.clone(), tracker)
                    .fold(0usize, |bytes, chunk| async move {
                        bytes + chunk.unwrap().len()
                    })
                    .await
            })
        });
    });
    group.finish();
}

/// A recorded digits stream (ids 1..100000 with keep-alives), fed to the parser in chunks.
fn parsing(c: &mut Criterion) {
    let mut body = BytesMut::new();
    encode::write_retry(&mut body, 3000);
    for n in 1..100_000 {
        encode::write_number_event(&mut body, n);
        if n % 100 == 0 {
            encode::write_comment(&mut body, "keep-alive");
        }
    }
    encode::write_named_event(&mut body, 100_000, "bye", "bye-bye");
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for chunk_size in [16usize, 256, 4096] {
        group.bench_with_input(
            BenchmarkId::new("digits_stream", chunk_size),
            &chunk_size,
            |b, &size| {
                b.iter(|| {
                    let mut parser = Parser::new();
                    let mut events = 0u64;
                    for chunk in body.chunks(size) {
                        parser.feed(chunk, |_| events += 1);
                    }
                    assert_eq!(events, 100_000);
                });
            },
        );
    }
    group.finish();
}

/// One stream over loopback through the real server, as fast as it will go: events/s one
/// connection carries, parsed on the client side.
fn one_connection_over_loopback(c: &mut Criterion) {
    const EVENTS: u64 = 20_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr, handle) = runtime.block_on(async {
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            workers: 1,
            ..Config::default()
        };
        // Interval 0 is refused by default; a benchmark wants it.
        config.limits.min_interval_ms = 0;
        let app = Application::build(config).unwrap();
        let addr = app.local_addr();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        (addr, handle)
    });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/digits?interval_ms=0&count={EVENTS}");
    let mut group = c.benchmark_group("loopback");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    group.bench_function("one_stream", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    let mut response = client.get(&url).send().await.unwrap();
                    let mut parser = Parser::new();
                    let mut events = 0u64;
                    while let Some(chunk) = response.chunk().await.unwrap() {
                        parser.feed(&chunk, |_| events += 1);
                    }
                    assert_eq!(events, EVENTS);
                }
                started.elapsed()
            })
        });
    });
    group.finish();
    runtime.block_on(handle.stop());
}

criterion_group!(
    benches,
    encoding,
    stream_without_network,
    parsing,
    one_connection_over_loopback
);
criterion_main!(benches);
