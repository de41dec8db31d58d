//! The `callwatch` command line: parses arguments, loads the configuration and hands
//! over to the library. Wiring only.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use callwatch::analyze::{self, Format, Options};
use callwatch::config::Config;
use callwatch::daemon::{self, Listeners, Options as DaemonOptions};
use callwatch::loadgen::{self, LoadgenOptions, Story};

/// mimalloc instead of glibc's malloc: the daemon frees on the engine thread what the
/// HEP receive thread allocated, which glibc's per-thread arenas handle badly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "callwatch",
    version,
    about = "Watches call-centre SIP and RTP and enforces the service rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Table,
}

#[derive(Subcommand)]
enum Command {
    /// Reads pcap/pcapng captures and prints one JSON object per agent leg.
    Analyze {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Print customer numbers in full (they are masked otherwise).
        #[arg(long)]
        show_numbers: bool,
        #[arg(required = true)]
        pcap: Vec<PathBuf>,
    },
    /// Validates a configuration file and prints the effective configuration.
    CheckConfig { file: PathBuf },
    /// Reads a password on standard input (one line) and prints its Argon2id PHC string
    /// for `[[auth.users]] password_hash`. Simple passwords are refused (Art. 100).
    HashPassword,
    /// The daemon: HEP collector (UDP and TCP on capture.hep_listen), live rules,
    /// Prometheus metrics and health checks on http.listen. Stops on SIGTERM/SIGINT.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The daemon fed by a simulated call centre: `run` with HEP bound on 127.0.0.1 and
    /// a built-in floor of 36 agents in four teams (its own roster unless one is
    /// configured) playing calls, holds and registrations into it. Open the wallboard
    /// on http.listen (http://127.0.0.1:8080/ by default).
    Demo {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Sends simulated call-centre HEP traffic to a collector on this machine (loopback
    /// addresses only) for a bounded time, then prints what it sent.
    Loadgen {
        /// The collector (127.0.0.0/8 or ::1 only).
        #[arg(long, default_value = "127.0.0.1:9060")]
        target: SocketAddr,
        /// Calls started per second.
        #[arg(long, default_value_t = 10.0)]
        cps: f64,
        /// Most calls in flight at once.
        #[arg(long, default_value_t = 1000)]
        concurrent: usize,
        /// Seconds during which calls are started (calls in flight then finish).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        duration_s: u64,
        /// Send over one TCP connection instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// HEP capture agent id.
        #[arg(long, default_value_t = 1)]
        capture_id: u32,
        /// HEP auth key, when the collector checks one.
        #[arg(long)]
        auth_key: Option<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Scales every ring and talk time: 1.0 plays real durations (late answers ring
        /// 11-14 s); 0.01 makes calls a hundred times shorter, for throughput runs.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// The daemon's HTTP address: after the run, read its /metrics and print what it
        /// received and dropped.
        #[arg(long)]
        metrics: Option<SocketAddr>,
        /// Each answered call also sends an RTCP report (HEP type 5) from each side every
        /// N ms of its (scaled) talk time, between the SDP media addresses.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
        rtcp_interval_ms: Option<u64>,
        /// Offered HEP packets per second: sets --cps from the mean packets per call.
        #[arg(long)]
        pps: Option<f64>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Command::Analyze {
            config,
            format,
            show_numbers,
            pcap,
        } => {
            let cfg = match Config::load_validated(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("callwatch: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = Options {
                files: pcap,
                format: match format {
                    Some(FormatArg::Json) => Format::Json,
                    Some(FormatArg::Table) => Format::Table,
                    None => analyze::default_format(),
                },
                show_numbers,
                progress: std::io::stderr().is_terminal(),
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut err = std::io::stderr();
            match analyze::run(&cfg, &opts, &mut out, &mut err) {
                Ok(o) => ExitCode::from(o.exit_code),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("callwatch: writing output: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig { file } => match Config::load_validated(Some(&file)) {
            Ok(v) => {
                match toml::to_string_pretty(&v.raw) {
                    Ok(s) => print!("{s}"),
                    Err(e) => {
                        eprintln!("callwatch: cannot print the configuration: {e}");
                        return ExitCode::from(1);
                    }
                }
                eprintln!(
                    "callwatch: {} is valid ({} roster entries)",
                    file.display(),
                    v.roster.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("callwatch: {e}");
                ExitCode::from(2)
            }
        },
        Command::HashPassword => hash_password_main(),
        Command::Run { config } => daemon_main(config, false),
        Command::Demo { config } => daemon_main(config, true),
        Command::Loadgen {
            target,
            cps,
            concurrent,
            duration_s,
            tcp,
            capture_id,
            auth_key,
            seed,
            time_scale,
            metrics,
            rtcp_interval_ms,
            pps,
        } => {
            let mut opts = LoadgenOptions {
                target,
                cps,
                concurrent,
                duration: Some(Duration::from_secs(duration_s)),
                tcp,
                capture_id,
                auth_key: auth_key.map(String::into_bytes),
                seed,
                time_scale,
                rtcp_interval: rtcp_interval_ms.map(Duration::from_millis),
                ..LoadgenOptions::default()
            };
            if let Some(pps) = pps {
                opts.cps = pps / opts.mean_packets_per_call();
            }
            if !(time_scale > 0.0 && time_scale <= 10.0) {
                eprintln!("callwatch: --time-scale must be in (0, 10]");
                return ExitCode::from(2);
            }
            if let Err(e) = loadgen::check_target(target) {
                eprintln!("callwatch: {e}");
                return ExitCode::from(2);
            }
            match runtime().and_then(|rt| rt.block_on(loadgen_main(opts, metrics))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("callwatch: loadgen: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `callwatch hash-password`: a password on stdin, its PHC string on stdout.
fn hash_password_main() -> ExitCode {
    use callwatch::api::inspect::auth::{check_password_policy, hash_password};
    use std::io::BufRead;
    if std::io::stdin().is_terminal() {
        eprint!("password (shown as typed; `read -rs P && echo \"$P\" | callwatch hash-password` hides it): ");
    }
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("callwatch: reading the password: {e}");
        return ExitCode::from(2);
    }
    let pw = line.trim_end_matches(['\r', '\n']);
    if let Err(why) = check_password_policy(pw) {
        eprintln!("callwatch: password refused: {why}");
        return ExitCode::from(2);
    }
    match hash_password(pw) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("callwatch: hashing failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Resolves on SIGTERM or SIGINT.
async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn daemon_main(config: Option<PathBuf>, demo: bool) -> ExitCode {
    let cfg = match Config::load_validated(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callwatch: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    // Both addresses were checked by validation.
    let (Ok(mut hep), Ok(http)) = (
        cfg.raw.capture.hep_listen.parse::<SocketAddr>(),
        cfg.raw.http.listen.parse::<SocketAddr>(),
    ) else {
        eprintln!("callwatch: configuration: bad listen address");
        return ExitCode::from(2);
    };
    let cfg = if demo {
        callwatch::demo::prepare(cfg)
    } else {
        cfg
    };
    if demo {
        // The simulated call centre never needs a HEP port open to the network.
        hep = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), hep.port());
    }
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            let listeners = Listeners::bind(hep, http).await?;
            let hep_addr = listeners.hep_addr()?;
            eprintln!(
                "callwatch: HEP on {hep_addr} (UDP and TCP), metrics on http://{}/metrics",
                listeners.http_addr()?
            );
            if !demo {
                return daemon::run(&cfg, listeners, DaemonOptions::default(), terminate()).await;
            }
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let feed = callwatch::demo::DemoOptions {
                target: hep_addr,
                auth_key: Some(cfg.raw.capture.hep_auth_key.clone().into_bytes())
                    .filter(|k| !k.is_empty()),
                seed: std::process::id().into(),
                ..callwatch::demo::DemoOptions::default()
            };
            let extensions = callwatch::demo::extensions(&cfg);
            eprintln!(
                "callwatch: demo: {} simulated agents; wallboard on http://{}/",
                extensions.len(),
                listeners.http_addr()?
            );
            let feeder = tokio::spawn(async move {
                let mut stop = stop_rx;
                let r = callwatch::demo::run(&feed, &extensions, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
                if let Err(e) = r {
                    eprintln!("callwatch: demo feed stopped: {e:#}");
                }
            });
            let r = daemon::run(&cfg, listeners, DaemonOptions::default(), async move {
                terminate().await;
                let _ = stop_tx.send(true);
            })
            .await;
            let _ = feeder.await;
            r
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn loadgen_main(opts: LoadgenOptions, metrics: Option<SocketAddr>) -> anyhow::Result<()> {
    let r = loadgen::run(&opts, terminate()).await?;
    let stories: Vec<String> = Story::ALL
        .iter()
        .zip(r.by_story)
        .map(|(s, n)| format!("{} {n}", s.as_str()))
        .collect();
    eprintln!(
        "loadgen: {} calls started ({}), {} completed, {} skipped at the concurrency cap",
        r.calls_started,
        stories.join(", "),
        r.calls_completed,
        r.calls_skipped
    );
    eprintln!(
        "loadgen: {} HEP packets ({} bytes) over {} in {:.1} s, {} send errors; \
         {:.0} packets/s while starting calls ({} packets in {:.1} s)",
        r.packets_sent,
        r.bytes_sent,
        if opts.tcp { "TCP" } else { "UDP" },
        r.elapsed.as_secs_f64(),
        r.send_errors,
        r.window_packets_per_sec(),
        r.window_packets,
        r.window.as_secs_f64(),
    );
    eprintln!(
        "loadgen: {} of the packets RTCP, {} send calls (sendmmsg or TCP writes)",
        r.rtcp_sent, r.send_calls
    );
    if let Some(addr) = metrics {
        // Let the daemon's engine catch up with its queue before reading.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let text = loadgen::scrape(addr).await?;
        let sum =
            |name: &str, labels: &[(&str, &str)]| loadgen::metric_sum(&text, name, labels) + 0.0;
        eprintln!(
            "daemon: {} packets received, {} dropped at the engine queue, {} ingest errors, {} legs ended, {} violations",
            sum("callwatch_ingest_packets_total", &[]),
            sum("callwatch_events_dropped_total", &[("sink", "engine_queue")]),
            sum("callwatch_ingest_errors_total", &[]),
            sum("callwatch_legs_total", &[]),
            sum("callwatch_violations_total", &[]),
        );
    }
    Ok(())
}
