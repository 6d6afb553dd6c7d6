//! One load-test run from options to [`Summary`]: resolve goose's settings, check the
//! open-files budget, start the embedded server (unless `--host`), run goose with the
//! scenario, watch progress and process figures, then merge everything.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::GooseAttack;
use sse_digits::config::Config;
use tokio::sync::{oneshot, Mutex};

use crate::client::request::{HttpVersion, Method};
use crate::client::{ClientOptions, ClientPool, CompletionOptions, PoolOptions, RequestSpec, Stop};
use crate::measure::hiccup::{self, HiccupMeter};
use crate::measure::metrics::Metrics;
use crate::probe::aftermath::{self, ServerAfterRun};
use crate::probe::procstat::{self, ProcSample};
use crate::report::part::{LlmSettings, Part};
use crate::report::summary::{LatenessAgainst, ProcessUsage, Processes, RequestSummary, Summary};
use crate::run::embedded::EmbeddedServer;
use crate::run::llm::{self, LlmContext};
use crate::run::monitor::{monitor, MonitorArgs};
use crate::run::options::{Options, SseOptions, DEFAULT_RATE, DEFAULT_RUN_TIME, DEFAULT_USERS};
use crate::run::scenario::{scenario, RunContext};

/// Time past goose's planned end before every event source stops: goose notices its run
/// time on a half-second tick, and users it has told to exit should not start again.
const GRACE: Duration = Duration::from_secs(1);
/// How long to wait after the run for the embedded server's streams to close.
const SETTLE: Duration = Duration::from_secs(5);

/// Goose settings this run resolved, with our defaults where the command line had none.
struct Plan {
    /// Goose's configuration, ready for `initialize_with_config`.
    goose: GooseConfiguration,
    /// Users.
    users: usize,
    /// Time to start every user.
    ramp: Duration,
    /// Time every user runs once all have started.
    run_time: Duration,
}

fn plan(goose: &GooseConfiguration) -> anyhow::Result<Plan> {
    let mut goose = goose.clone();
    if goose.iterations.is_some() {
        bail!("--iterations does not apply: each user holds one EventSource for the whole run (use -t)");
    }
    let users = *goose.users.get_or_insert(DEFAULT_USERS);
    if goose.increase_rate.is_none() && goose.increase_time.is_none() {
        goose.increase_rate = Some(DEFAULT_RATE.to_owned());
    }
    let run_time = goose
        .run_time
        .get_or_insert_with(|| DEFAULT_RUN_TIME.to_owned())
        .clone();
    let run_time = timespan(&run_time, "-t")?;
    let ramp = match (&goose.increase_time, &goose.increase_rate) {
        (Some(time), _) => timespan(time, "-s")?,
        (None, Some(rate)) => {
            let rate: f64 = rate
                .parse()
                .ok()
                .filter(|r: &f64| *r > 0.0)
                .ok_or_else(|| anyhow!("-r {rate:?} is not a positive rate"))?;
            Duration::from_secs_f64(users as f64 / rate)
        }
        (None, None) => Duration::ZERO,
    };
    // Our own progress line replaces goose's telnet controller and per-user chatter.
    goose.no_telnet = true;
    goose.no_reset_metrics = true;
    if goose.quiet == 0 && goose.verbose == 0 {
        goose.quiet = 1;
    }
    Ok(Plan {
        goose,
        users,
        ramp,
        run_time,
    })
}

fn timespan(text: &str, flag: &str) -> anyhow::Result<Duration> {
    goose::util::parse_timespan(text)
        .map(|secs| Duration::from_secs(secs as u64))
        .ok_or_else(|| anyhow!("{flag} {text:?} is not a time such as 30s or 2m"))
}

/// The embedded server's configuration: loopback, a free port, the run's schedule, and
/// its share of this process's open files as its stream limit.
#[must_use]
pub fn embedded_config(sse: &SseOptions, file_limit: procstat::FileLimit) -> Config {
    Config {
        bind: ([127, 0, 0, 1], 0).into(),
        interval_ms: sse.interval_ms(),
        workers: sse.server_workers,
        retry_ms: sse.server_retry_ms,
        drain_ms: sse.server_drain_ms,
        max_connections: procstat::embedded_server_streams(file_limit),
        ..Config::default()
    }
}

/// Runs the load test once.
///
/// # Errors
/// When the options are inconsistent, the open-files budget is too small, the embedded
/// server cannot start, or goose fails.
pub async fn run(options: Options) -> anyhow::Result<Summary> {
    Ok(run_part(options).await?.summary())
}

/// Runs the load test once and returns what it measured as a [`Part`], which
/// [`Part::summary`] turns into the summary (and `--part-file` writes).
///
/// # Errors
/// As [`run`].
pub async fn run_part(options: Options) -> anyhow::Result<Part> {
    let sse = options.sse.clone();
    let plan = plan(&options.goose)?;
    let embedded = plan.goose.host.is_none() && sse.url.is_none();
    if sse.restart_at.is_some() && !embedded {
        bail!(
            "--restart-at needs the embedded server (it cannot restart a server given by --host)"
        );
    }
    sse.limits.validate().map_err(anyhow::Error::msg)?;
    let request = Arc::new(sse.request.resolve()?);
    if sse.llm && request.method == Method::Get {
        bail!(
            "--llm sends completion requests: give --method POST with a --body (or --body-file) \
             such as '{{\"model\":\"m\",\"stream\":true,\"messages\":[…]}}'"
        );
    }
    if plan.goose.accept_invalid_certs {
        bail!("--accept-invalid-certs is goose's own client's, which no event source uses: give --insecure");
    }
    let scheme = match (&sse.url, &plan.goose.host) {
        (Some(url), _) => url.scheme().to_owned(),
        (None, Some(host)) => host.split_once("://").map_or("http", |(s, _)| s).to_owned(),
        (None, None) => "http".to_owned(),
    };
    sse.transport.check(&request, &scheme)?;
    if embedded && request.http_version == HttpVersion::Http2 {
        bail!("--http2: the embedded server speaks HTTP/1.1 only; give --url or --host of a server that offers HTTP/2");
    }
    if let Some(warning) = request.insecure_warning() {
        eprintln!("loadtest: {warning}");
    }
    let file_limit = procstat::raise_nofile_limit().context("raising the open-files limit")?;
    procstat::check_file_budget(plan.users as u64, embedded, file_limit)
        .map_err(anyhow::Error::msg)?;

    let mut goose = plan.goose;
    let hosts = crate::run::targets::split_hosts(goose.host.as_deref())?;
    if let Some(first) = hosts.first() {
        // Goose needs one host; each user picks its own from the list.
        goose.host = Some(first.as_str().trim_end_matches('/').to_owned());
    }
    if let Some(url) = &sse.url {
        // Goose needs a host; every user requests the whole URL.
        goose.host = Some(url.origin().ascii_serialization());
    }
    let server = if embedded {
        let server = EmbeddedServer::start(embedded_config(&sse, file_limit))?;
        goose.host = Some(server.url());
        Some(server)
    } else {
        None
    };
    let host = goose.host.clone().unwrap_or_default();
    let target = match &sse.url {
        Some(url) => url.to_string(),
        None if hosts.len() > 1 => crate::run::targets::describe(&hosts, &sse.path_and_query()),
        None => format!("{}{}", host.trim_end_matches('/'), sse.path_and_query()),
    };
    let profile = sse.profile();

    // An external server's gauge and memory, from its /metrics, if it has one (read before the
    // run's clock starts).
    // A redirect from /metrics is no metrics page: not followed. The user's headers and
    // certificates let it in where the streams are let in.
    let scraper = request
        .apply_tls(reqwest::Client::builder())
        .default_headers(request.user_header_map())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let before_scrape = if embedded {
        None
    } else {
        aftermath::scrape(&scraper, &host).await
    };
    if let Some(at) = sse.start_at {
        crate::run::start_at::wait_until(at).await?;
    }
    let metrics = Metrics::new();
    let total = plan.ramp + plan.run_time + GRACE;
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let stop = Arc::new(Stop::at(started + total));
    // Attempts after the deadline (there should be none) land in the last bin.
    let _ = metrics
        .live
        .arrivals
        .set(crate::measure::storm::Arrivals::new(started, total));
    let context = Arc::new(RunContext {
        pool: ClientPool::for_requests(
            &PoolOptions {
                clients: sse.clients,
                source_addrs: sse.source_addrs.clone().map(|a| a.0).unwrap_or_default(),
                connect_timeout: sse.limits.connect_timeout(),
                transport: sse.transport,
            },
            &request,
        )?,
        metrics: Arc::clone(&metrics),
        stop: Arc::clone(&stop),
        client: ClientOptions::from_limits(&sse.limits, sse.drop_after)
            .with_request(Arc::clone(&request)),
        path_and_query: sse.path_and_query(),
        hosts: if hosts.len() > 1 { hosts } else { Vec::new() },
        request_name: sse
            .url
            .as_ref()
            .map_or_else(|| sse.path.clone(), |url| url.path().to_owned()),
        profile: profile.clone(),
        stall_threshold: sse.stall_threshold(),
    });

    let before_self = procstat::sample(None)?;
    let before_server = sse
        .server_pid
        .map(|pid| procstat::sample(Some(pid)))
        .transpose()?;
    // A Ctrl-C of an earlier run in this process must not stop this one.
    goose::reset_killswitch();
    let (done_tx, done_rx) = oneshot::channel();
    let monitor = monitor(
        MonitorArgs {
            metrics: Arc::clone(&metrics),
            stop: Arc::clone(&stop),
            started,
            total,
            users: plan.users,
            progress_every: Duration::from_secs(sse.progress_secs),
            progress_file: sse.progress_file.clone(),
            server_pid: sse.server_pid,
            server_url: host.clone(),
            scraper: scraper.clone(),
        },
        done_rx,
    );
    let server = Arc::new(Mutex::new(server));
    let restarter = sse.restart_at.map(|at| {
        tokio::spawn(restart_after(
            Arc::clone(&server),
            Duration::from_secs_f64(at.max(0.0)),
            Duration::from_millis(sse.restart_down_ms),
            Arc::clone(&stop),
            Arc::clone(&metrics),
        ))
    });

    let attack = GooseAttack::initialize_with_config(goose)
        .map_err(|e| anyhow!("goose: {e}"))?
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())
        .map_err(|e| anyhow!("goose: {e}"))?
        .register_scenario(if sse.llm {
            llm::scenario(Arc::new(LlmContext {
                run: Arc::clone(&context),
                completion: CompletionOptions::from_limits(
                    &sse.limits,
                    Duration::from_secs(sse.request_timeout_secs),
                    Arc::clone(&request),
                ),
                think: Duration::from_millis(sse.think_ms),
            }))
        } else {
            scenario(Arc::clone(&context))
        });
    // Tickers on the users' runtime, one per worker, until the users' deadline (the end's
    // burst of closing sources records no event).
    let hiccup_meter = HiccupMeter::start(
        hiccup::tickers_for_current_runtime(),
        hiccup::DEFAULT_PERIOD,
        stop.deadline(),
    );
    // The monitor is not spawned: it runs beside goose's own control loop on the thread
    // that awaits this run (`block_on`'s in the binary), not on the workers that run the
    // users, so its /proc reads, scrapes and progress line (a blocking write to stderr)
    // never hold up an event.
    let ((result, elapsed), peaks) = tokio::join!(
        async {
            let result = attack.execute().await;
            // Anything still waiting for the end ends now.
            stop.cancel();
            let elapsed = started.elapsed();
            let _ = done_tx.send(());
            (result, elapsed)
        },
        monitor,
    );
    let hiccups = hiccup_meter.stop().await;
    let server_cpu_of_stopped_threads = match restarter {
        Some(restarter) => restarter.await.context("the restart task panicked")??,
        None => Duration::ZERO,
    };
    result.map_err(|e| anyhow!("goose: {e}"))?;

    let server = server.lock().await.take();
    if let Some(server) = &server {
        let settle_until = Instant::now() + SETTLE;
        while server.streams_open() > 0 && Instant::now() < settle_until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let after_self = procstat::sample(None)?;
    // A server that exited or was killed during the run (a restart test) has no usage to
    // report: said, not an error that would lose the whole summary.
    let after_server = sse.server_pid.and_then(|pid| match procstat::sample(Some(pid)) {
        Ok(sample) => Some(sample),
        Err(error) => {
            eprintln!("loadtest: server process {pid} not readable after the run ({error}); its RSS and CPU are not reported");
            None
        }
    });
    // The client pool goes before memory is compared: only leftovers should remain.
    drop(context);
    let server_after = match (&server, before_scrape) {
        (Some(server), _) => {
            let _ = sse_digits::memory::release_free_memory();
            Some(ServerAfterRun::new(
                "this process (embedded server and load generator)",
                Some(server.streams_open()),
                Some(aftermath::mib(before_self.rss_bytes)),
                Some(aftermath::mib(procstat::sample(None)?.rss_bytes)),
            ))
        }
        (None, Some(before)) => Some(aftermath::external(&scraper, &host, before).await),
        (None, None) => None,
    };
    if let Some(server) = server {
        server.stop().await?;
    }

    let (histograms, counters) = metrics.merged();
    let connections = u64::try_from(peaks.open_streams.max(0)).unwrap_or(0);
    let usage = |before: ProcSample, peak: u64, after: ProcSample| {
        ProcessUsage::from_samples(
            before,
            peak.max(before.rss_bytes),
            after,
            after.cpu.saturating_sub(before.cpu),
            connections,
            counters.events,
            elapsed,
        )
    };
    let processes = Processes {
        this_process: ProcessUsage {
            cpu_percent_steady: peaks.steady_cpu_percent_self,
            ..usage(before_self, peaks.rss_self, after_self)
        },
        server: before_server.zip(after_server).map(|(b, a)| ProcessUsage {
            cpu_percent_steady: peaks.steady_cpu_percent_server,
            ..usage(b, peaks.rss_server, a)
        }),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        embedded_server_cpu_secs: embedded.then(|| {
            (after_self.server_threads_cpu + server_cpu_of_stopped_threads)
                .saturating_sub(before_self.server_threads_cpu)
                .as_secs_f64()
        }),
    };
    Ok(Part {
        target,
        request: request_summary(&request),
        started_unix_secs: started_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
        embedded,
        users: plan.users,
        interval_ms: sse.interval_ms(),
        lateness_against: LatenessAgainst::of(&profile.lateness),
        elapsed_secs: elapsed.as_secs_f64(),
        steady_events_per_sec: peaks.steady_events_per_sec,
        peak_open_streams: peaks.open_streams,
        server_lateness: peaks.server_lateness,
        server_after,
        file_limit,
        counters,
        histograms,
        hiccups: Some(hiccups),
        processes: vec![processes],
        timeline: peaks.timeline,
        storm: metrics
            .live
            .arrivals
            .get()
            .map(crate::measure::storm::Arrivals::bins)
            .unwrap_or_default(),
        lateness_slots: peaks.lateness_slots,
        llm: sse.llm.then_some(LlmSettings {
            think_ms: sse.think_ms,
            request_timeout_secs: sse.request_timeout_secs,
        }),
    })
}

/// How `spec`'s requests are shown: header names only.
fn request_summary(spec: &RequestSpec) -> RequestSummary {
    RequestSummary {
        method: spec.method.as_str().to_owned(),
        request_headers: spec.redacted_headers(),
        request_body: spec.body_description(),
        http_version: spec.http_version.label().to_owned(),
        insecure_tls: spec.tls.insecure,
    }
}

/// Stops the embedded server `at` into the run, keeps it down for `down`, starts it again.
/// Returns the CPU its stopped threads had used, which `/proc` forgets once they exit
/// (measured just before the stop, so the drain's own CPU is left out).
async fn restart_after(
    server: Arc<Mutex<Option<EmbeddedServer>>>,
    at: Duration,
    down: Duration,
    stop: Arc<Stop>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Duration> {
    let live = &metrics.live;
    if !stop.sleep(at).await {
        return Ok(Duration::ZERO);
    }
    let mut slot = server.lock().await;
    let Some(running) = slot.take() else {
        return Ok(Duration::ZERO);
    };
    eprintln!(
        "--- restarting the embedded server (down for {} ms)",
        down.as_millis()
    );
    let before = procstat::sample(None)?.server_threads_cpu;
    // Refusals from here until the server is back are the outage we asked for.
    live.outages.begin(Instant::now());
    let restarted = running.restart(down).await;
    live.outages.end(Instant::now());
    let restarted = restarted?;
    let after = procstat::sample(None)?.server_threads_cpu;
    *slot = Some(restarted);
    Ok(before.saturating_sub(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn plan_of(args: &[&str]) -> anyhow::Result<Plan> {
        let options =
            Options::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied()))?;
        plan(&options.goose)
    }

    #[test]
    fn defaults_fill_what_the_command_line_left_out() {
        let p = plan_of(&[]).unwrap();
        assert_eq!(p.users, DEFAULT_USERS);
        assert_eq!(p.run_time, Duration::from_secs(30));
        assert_eq!(p.ramp, Duration::from_secs(2));
        assert!(p.goose.no_telnet && p.goose.no_reset_metrics);
    }

    #[test]
    fn the_ramp_follows_the_rate_or_the_time() {
        assert_eq!(
            plan_of(&["-u", "100", "-r", "50"]).unwrap().ramp,
            Duration::from_secs(2)
        );
        assert_eq!(
            plan_of(&["-u", "100", "-s", "7s"]).unwrap().ramp,
            Duration::from_secs(7)
        );
        assert_eq!(
            plan_of(&["-t", "2m"]).unwrap().run_time,
            Duration::from_secs(120)
        );
    }

    #[test]
    fn iterations_are_refused_with_a_reason() {
        let err = plan_of(&["--iterations", "3"]).err().unwrap().to_string();
        assert!(err.contains("one EventSource"), "{err}");
    }
}
