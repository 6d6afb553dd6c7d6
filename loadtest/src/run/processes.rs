//! `--processes N`: one run made of N load-generator processes. A process holds at most
//! about 19,900 streams under a hard open-files limit of 20,000, so more streams need more
//! processes. This process starts N copies of itself, each with its share of the users, of
//! the ramp-up rate and of the source addresses, all starting at one moment (`--start-at`)
//! and writing what they measured to a part file; it waits for all of them, adds the parts
//! and ends as a one-process run does.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};

use crate::probe::procstat;
use crate::report::console::Progress;
use crate::report::part::Part;
use crate::report::part_file;
use crate::run::options::{Options, DEFAULT_RATE, DEFAULT_USERS};

/// How far ahead of now the processes are told to start: time for each to set up (raise
/// its limits, build its clients, start goose) before the common moment.
const LEAD: Duration = Duration::from_secs(2);
/// How often the processes are checked while they run.
const POLL: Duration = Duration::from_millis(100);
/// Lines of a failed process's stderr quoted in the error.
const STDERR_TAIL_LINES: usize = 15;

/// Flags of this process only (each with a value): where the one result goes and how
/// the run is split. The processes get their own values or none.
const PARENT_ONLY: &[&str] = &[
    "--processes",
    "--summary-json",
    "--histograms-dir",
    "--hdr-log",
    "--report-dir",
    "--part-file",
    "--start-at",
    "--gate",
    "--progress-file",
];
/// Goose's flag whose value is optional: each process would write the same file.
const OPTIONAL_VALUE: &[&str] = &["--report-file"];
/// Every gate threshold flag starts so; the gate is applied once, to the sum.
const GATE_PREFIX: &str = "--gate-";

/// One process's share of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Its users (`-u`).
    pub users: usize,
    /// Its ramp-up rate (`-r`); `None` when the ramp is given as a time (`-s`), which every
    /// process keeps.
    pub rate: Option<String>,
    /// Its source addresses (`--source-addrs`), round-robin from the given ones.
    pub source_addrs: Option<Vec<IpAddr>>,
}

/// `total` split into `n` shares that differ by at most one, the larger ones first.
#[must_use]
pub fn split(total: usize, n: usize) -> Vec<usize> {
    let n = n.max(1);
    (0..n)
        .map(|i| total / n + usize::from(i < total % n))
        .collect()
}

/// The ramp-up rate `rate` (users per second) split into `n` shares: whole numbers that
/// differ by at most one when it is a whole number of at least `n`, else equal fractions.
///
/// # Errors
/// When `rate` is not a positive number.
pub fn split_rate(rate: &str, n: usize) -> Result<Vec<String>, String> {
    let value: f64 = rate
        .trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("-r {rate:?} is not a positive rate"))?;
    let n = n.max(1);
    if value.fract() == 0.0 && value >= n as f64 && value <= usize::MAX as f64 {
        return Ok(split(value as usize, n)
            .into_iter()
            .map(|r| r.to_string())
            .collect());
    }
    Ok(vec![format!("{}", value / n as f64); n])
}

/// Each process's share of `options`' run.
///
/// # Errors
/// When the run cannot be split: the embedded server, fewer users or source addresses
/// than processes, a bad rate; the message says why.
pub fn shares(options: &Options) -> Result<Vec<Share>, String> {
    let n = options.sse.processes;
    if n == 0 {
        return Err("--processes 0: give at least one".into());
    }
    if options.goose.host.is_none() && options.sse.url.is_none() {
        return Err(
            "--processes needs --host or --url: the embedded server lives inside the \
                    load test's process, so each of the processes would start a server of its \
                    own and no one server would carry the whole load; start the server on its \
                    own and give its address"
                .into(),
        );
    }
    let users = options.goose.users.unwrap_or(DEFAULT_USERS);
    if users < n {
        return Err(format!(
            "--processes {n} with {users} users: each process needs at least one user"
        ));
    }
    let rates = match (&options.goose.increase_time, &options.goose.increase_rate) {
        (Some(_), _) => vec![None; n],
        (None, rate) => split_rate(rate.as_deref().unwrap_or(DEFAULT_RATE), n)?
            .into_iter()
            .map(Some)
            .collect(),
    };
    let addrs = match &options.sse.source_addrs {
        Some(addrs) if addrs.0.len() < n => {
            return Err(format!(
                "--processes {n} with {} source addresses: each process needs one at least",
                addrs.0.len()
            ))
        }
        Some(addrs) => (0..n)
            .map(|i| Some(addrs.0.iter().skip(i).step_by(n).copied().collect()))
            .collect(),
        None => vec![None; n],
    };
    Ok(split(users, n)
        .into_iter()
        .zip(rates)
        .zip(addrs)
        .map(|((users, rate), source_addrs)| Share {
            users,
            rate,
            source_addrs,
        })
        .collect())
}

/// One process's command line: this one's arguments (program name left out) without the
/// flags only this process acts on, then the process's share, the common start, its part
/// file, and the file it keeps its progress in (or no progress at all). A repeated option
/// keeps its last value, so the share's `-u` and `-r` override the ones given.
#[must_use]
pub fn child_args(
    args: &[OsString],
    share: &Share,
    start_at: f64,
    part: &Path,
    progress: Option<&Path>,
) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut rest = args.iter().skip(1).peekable();
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy();
        let name = text.split('=').next().unwrap_or_default();
        let has_inline_value = text.contains('=');
        if PARENT_ONLY.contains(&name) || name.starts_with(GATE_PREFIX) {
            if !has_inline_value {
                rest.next();
            }
            continue;
        }
        if OPTIONAL_VALUE.contains(&name) {
            if !has_inline_value
                && rest
                    .peek()
                    .is_some_and(|v| !v.to_string_lossy().starts_with('-'))
            {
                rest.next();
            }
            continue;
        }
        out.push(arg.clone());
    }
    let mut push = |flag: &str, value: String| {
        out.push(flag.into());
        out.push(value.into());
    };
    push("-u", share.users.to_string());
    if let Some(rate) = &share.rate {
        push("-r", rate.clone());
    }
    if let Some(addrs) = &share.source_addrs {
        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        push("--source-addrs", list.join(","));
    }
    push("--start-at", format!("{start_at:.3}"));
    push("--part-file", part.display().to_string());
    match progress {
        Some(file) => push("--progress-file", file.display().to_string()),
        None => push("--progress-secs", "0".into()),
    }
    out
}

/// Runs `options`' run as `options.sse.processes` copies of this program, given this
/// process's command line `args`, and adds what they measured.
///
/// # Errors
/// When the run cannot be split (see [`shares`]), a process's share is over the open-files
/// budget, a process cannot start or fails (named, with the end of its stderr), or a part
/// cannot be read or added.
pub async fn run(options: &Options, args: Vec<OsString>) -> anyhow::Result<Part> {
    let shares = shares(options).map_err(anyhow::Error::msg)?;
    let n = shares.len();
    let most = shares.iter().map(|s| s.users).max().unwrap_or(0);
    let limit = procstat::raise_nofile_limit().context("raising the open-files limit")?;
    procstat::check_file_budget(most as u64, false, limit)
        .map_err(|e| anyhow!("each of the {n} processes holds up to {most} streams: {e}"))?;
    let start_at = match options.sse.start_at {
        Some(at) => at,
        None => (SystemTime::now() + LEAD)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    };
    let exe = std::env::current_exe().context("finding this program to start its copies")?;
    let dir = tempfile::tempdir().context("creating a folder for the processes' parts")?;
    let mut children: Vec<(usize, Child)> = Vec::with_capacity(n);
    let progress_every = Duration::from_secs(options.sse.progress_secs);
    let progress_file = |i: usize| dir.path().join(format!("progress-{i}.json"));
    for (i, share) in shares.iter().enumerate() {
        let part = dir.path().join(format!("part-{i}.json"));
        let progress = (!progress_every.is_zero()).then(|| progress_file(i));
        let stdout = std::fs::File::create(dir.path().join(format!("{i}.out")))?;
        let stderr = std::fs::File::create(dir.path().join(format!("{i}.err")))?;
        let spawned = Command::new(&exe)
            .args(child_args(
                &args,
                share,
                start_at,
                &part,
                progress.as_deref(),
            ))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn();
        match spawned {
            Ok(child) => children.push((i, child)),
            Err(e) => {
                stop_all(&mut children);
                bail!("starting load-generator process {} of {n}: {e}", i + 1);
            }
        }
    }
    eprintln!(
        "--- {n} load-generator processes (pids {}), {} users in shares of {}, starting at {start_at:.3}",
        children
            .iter()
            .map(|(_, c)| c.id().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        shares.iter().map(|s| s.users).sum::<usize>(),
        shares
            .iter()
            .map(|s| s.users.to_string())
            .collect::<Vec<_>>()
            .join("/"),
    );
    let users = shares.iter().map(|s| s.users).sum();
    let progress = (!progress_every.is_zero()).then(|| ProgressOfAll {
        every: progress_every,
        files: (0..n).map(progress_file).collect(),
        users,
    });
    wait_all(&mut children, dir.path(), n, progress.as_ref()).await?;
    let parts = (0..n)
        .map(|i| part_file::read(&dir.path().join(format!("part-{i}.json"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Part::sum(parts)
}

/// The progress line of processes side by side, from the files they keep theirs in.
struct ProgressOfAll {
    every: Duration,
    files: Vec<PathBuf>,
    users: usize,
}

impl ProgressOfAll {
    /// The processes' lines added into one; nothing until one has reported. A file not
    /// written yet is a process that has not reported yet.
    fn line(&self) -> Option<Progress> {
        let lines: Vec<Progress> = self
            .files
            .iter()
            .filter_map(|file| std::fs::read(file).ok())
            .filter_map(|json| serde_json::from_slice(&json).ok())
            .collect();
        Progress::of_processes(&lines, self.users)
    }
}

/// Waits for every process, printing their progress line if asked; the first that fails
/// stops the others and fails the run.
async fn wait_all(
    children: &mut Vec<(usize, Child)>,
    dir: &Path,
    n: usize,
    progress: Option<&ProgressOfAll>,
) -> anyhow::Result<()> {
    let mut last_look = Instant::now();
    let mut last_line: Option<Progress> = None;
    while !children.is_empty() {
        if let Some(progress) = progress.filter(|p| last_look.elapsed() >= p.every) {
            last_look = Instant::now();
            // Once the processes stop reporting (their runs over, their summaries being
            // written), the same line is not printed again.
            if let Some(line) = progress.line().filter(|line| Some(*line) != last_line) {
                eprintln!("{line}");
                last_line = Some(line);
            }
        }
        let mut failed: Option<(usize, u32, ExitStatus)> = None;
        let mut k = 0;
        while k < children.len() {
            let (i, child) = &mut children[k];
            match child
                .try_wait()
                .context("waiting for a load-generator process")?
            {
                Some(status) if status.success() => {
                    children.remove(k);
                }
                Some(status) => {
                    failed = Some((*i, child.id(), status));
                    children.remove(k);
                    break;
                }
                None => k += 1,
            }
        }
        if let Some((i, pid, status)) = failed {
            stop_all(children);
            let tail = stderr_tail(&dir.join(format!("{i}.err")));
            bail!(
                "load-generator process {} of {n} (pid {pid}) failed ({status}); the end of its \
                 stderr:\n{tail}",
                i + 1
            );
        }
        if !children.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// Ends the processes still running (each by its own handle) and reaps them.
fn stop_all(children: &mut Vec<(usize, Child)>) {
    for (_, child) in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    children.clear();
}

/// The last lines of a file, or why it could not be read.
fn stderr_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("({} not readable: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn options(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).unwrap()
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn shares_differ_by_at_most_one() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(9, 3), vec![3, 3, 3]);
        assert_eq!(split(2, 4), vec![1, 1, 0, 0]);
        for (total, n) in [(40_000, 3), (7, 7), (101, 4)] {
            let s = split(total, n);
            assert_eq!(s.iter().sum::<usize>(), total);
            assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn rates_split_whole_or_as_fractions() {
        assert_eq!(split_rate("500", 3).unwrap(), vec!["167", "167", "166"]);
        assert_eq!(split_rate("1", 2).unwrap(), vec!["0.5", "0.5"]);
        assert_eq!(split_rate("2.5", 2).unwrap(), vec!["1.25", "1.25"]);
        assert!(split_rate("-1", 2).is_err());
        assert!(split_rate("fast", 2).is_err());
    }

    #[test]
    fn each_process_gets_its_share_of_users_rate_and_addresses() {
        let o = options(&[
            "--host",
            "http://127.0.0.1:1",
            "--processes",
            "3",
            "-u",
            "10",
            "-r",
            "5",
            "--source-addrs",
            "127.0.0.1-127.0.0.4",
        ]);
        let s = shares(&o).unwrap();
        assert_eq!(s.iter().map(|s| s.users).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(
            s.iter()
                .map(|s| s.rate.clone().unwrap())
                .collect::<Vec<_>>(),
            vec!["2", "2", "1"]
        );
        let addr = |n: u8| IpAddr::from([127, 0, 0, n]);
        assert_eq!(s[0].source_addrs, Some(vec![addr(1), addr(4)]));
        assert_eq!(s[1].source_addrs, Some(vec![addr(2)]));
        assert_eq!(s[2].source_addrs, Some(vec![addr(3)]));
        // A ramp given as a time is every process's.
        let o = options(&["--host", "http://h:1", "--processes", "2", "-s", "5s"]);
        assert!(shares(&o).unwrap().iter().all(|s| s.rate.is_none()));
    }

    #[test]
    fn a_run_that_cannot_be_split_is_refused_with_the_reason() {
        let err = shares(&options(&["--processes", "2"])).unwrap_err();
        assert!(err.contains("embedded server"), "{err}");
        let err = shares(&options(&[
            "--host",
            "http://h:1",
            "--processes",
            "3",
            "-u",
            "2",
        ]))
        .unwrap_err();
        assert!(err.contains("at least one user"), "{err}");
        let err = shares(&options(&[
            "--url",
            "http://h:1/s",
            "--processes",
            "3",
            "--source-addrs",
            "127.0.0.1,127.0.0.2",
        ]))
        .unwrap_err();
        assert!(err.contains("source addresses"), "{err}");
    }

    #[test]
    fn the_processes_progress_files_add_into_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("progress-{i}.json")))
            .collect();
        let all = ProgressOfAll {
            every: Duration::from_secs(1),
            files: files.clone(),
            users: 30,
        };
        assert_eq!(all.line(), None, "nothing reported yet");
        let line = |open: i64, events: u64| Progress {
            elapsed: Duration::from_secs(2),
            total: Duration::from_secs(10),
            open_streams: open,
            users: 10,
            events_per_sec: 50.0,
            events,
            errors: 0,
            lost: 0,
        };
        crate::run::monitor::keep_progress(&files[0], &line(10, 100));
        crate::run::monitor::keep_progress(&files[1], &line(4, 40));
        // A later line replaces the earlier one; the third process has not reported.
        crate::run::monitor::keep_progress(&files[1], &line(9, 90));
        let sum = all.line().unwrap();
        assert_eq!((sum.open_streams, sum.users, sum.events), (19, 30, 190));
        assert!((sum.events_per_sec - 100.0).abs() < 1e-9);
        assert!(
            !files[1].with_extension("tmp").exists(),
            "written aside, then renamed"
        );
    }

    #[test]
    fn a_process_gets_the_run_without_the_parents_outputs() {
        let args = os(&[
            "loadtest",
            "--host",
            "http://h:1",
            "-u",
            "40",
            "--processes",
            "2",
            "--summary-json",
            "s.json",
            "--report-dir=r",
            "--gate",
            "ci.toml",
            "--gate-max-lost",
            "0",
            "--report-file",
            "-t",
            "3s",
        ]);
        let share = Share {
            users: 20,
            rate: Some("5".into()),
            source_addrs: None,
        };
        let child = child_args(
            &args,
            &share,
            1_700_000_000.25,
            Path::new("/tmp/p.json"),
            None,
        );
        let child: Vec<String> = child
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            child,
            [
                "--host",
                "http://h:1",
                "-u",
                "40",
                "-t",
                "3s",
                "-u",
                "20",
                "-r",
                "5",
                "--start-at",
                "1700000000.250",
                "--part-file",
                "/tmp/p.json",
                "--progress-secs",
                "0"
            ]
        );
        // With a progress line: the file instead of silence, and the user's own file not
        // passed on.
        let mut with_file = args.clone();
        with_file.extend(os(&["--progress-file", "mine.json"]));
        let child: Vec<String> = child_args(
            &with_file,
            &share,
            1_700_000_000.25,
            Path::new("/tmp/p.json"),
            Some(Path::new("/tmp/progress-0.json")),
        )
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        assert!(child.ends_with(&[
            "--part-file".to_owned(),
            "/tmp/p.json".to_owned(),
            "--progress-file".to_owned(),
            "/tmp/progress-0.json".to_owned()
        ]));
        assert!(!child
            .iter()
            .any(|a| a == "mine.json" || a == "--progress-secs"));
        // And it parses, the share's -u winning.
        let parsed =
            Options::try_parse_from(std::iter::once("loadtest".to_owned()).chain(child)).unwrap();
        assert_eq!(parsed.goose.users, Some(20));
        assert_eq!(parsed.sse.processes, 1);
        assert!(parsed.sse.outputs.summary_json.is_none() && parsed.gate.file.is_none());
    }
}
