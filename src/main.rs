//! The `hotline` command line: `serve` runs the switch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "Softswitch and call-centre engine for a 12345 hotline"
)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `hotline=debug,rsipstack=info`.
    /// The SIP library logs every packet at info; it is held at `warn`
    /// unless the filter names it.
    #[arg(long, global = true, default_value = "info", env = "HOTLINE_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch.
    Serve {
        /// Configuration file; without it the embedded `config/hotline.toml` is used.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and exit (non-zero with every error listed).
    Check {
        /// Configuration file.
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter(&cli.log))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    match cli.command {
        Command::Serve { config } => {
            let loaded = match &config {
                Some(path) => hotline::config::Config::load(path),
                None => hotline::config::Config::embedded_default(),
            };
            let config = match loaded {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("hotline: configuration error:\n{e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("hotline: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(hotline::switch::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hotline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match hotline::config::Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The user's filter, with the SIP library's per-packet logs held at `warn`
/// unless the user mentions it.
fn log_filter(user: &str) -> String {
    if user.contains("rsipstack") {
        user.to_string()
    } else {
        format!("{user},rsipstack=warn")
    }
}
