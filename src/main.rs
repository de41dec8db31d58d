//! The `callwatch` command line: parses arguments, loads the configuration and hands
//! over to the library. Wiring only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use callwatch::analyze::{self, Format, Options};
use callwatch::config::Config;

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
    /// The daemon: HEP, live capture, HTTP, websocket, metrics, store.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The daemon fed by a built-in simulated call centre.
    Demo {
        #[arg(long)]
        config: Option<PathBuf>,
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
        Command::Run { .. } | Command::Demo { .. } => {
            eprintln!(
                "callwatch: the daemon (run, demo) is not part of this build yet; \
                 use `callwatch analyze` on captures (see README)"
            );
            ExitCode::from(2)
        }
    }
}
