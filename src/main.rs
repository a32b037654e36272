//! The `hotline` command line: `serve` runs the switch.
use std::net::SocketAddr;
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
    /// Log lines as `text` (for people) or `json` (one object per line,
    /// for a log collector: timestamp, level, message and fields).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HOTLINE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
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
    /// IVR flows: validate or draw them; their history (diff, rollback,
    /// replay of recorded calls through an edit).
    Flow {
        #[command(subcommand)]
        command: FlowCommand,
    },
    /// Explain a working-hours schedule at a moment: open or closed, why
    /// (weekday, weekend, public holiday, adjusted working day), and the
    /// next change.
    Schedule {
        /// Schedule name (a file in `<calendars_dir>/schedules/`).
        name: String,
        /// Local date `YYYY-MM-DD` or date and time `YYYY-MM-DDTHH:MM`
        /// (default: now).
        at: Option<String>,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List call records (from the events database), e.g. the missed
    /// calls of a day: `hotline records --from 2026-11-23 --missed`.
    Records(hotline::records::cli::RecordsArgs),
    /// KPI report by group, agent, hour or day as CSV, XLSX or JSON, e.g.
    /// `hotline report --from 2026-11-01 --to 2026-12-01 --by group`.
    Report(hotline::records::cli::ReportArgs),
    /// Call a number like a carrier or citizen would; prints a JSON report.
    Dial {
        /// Target URI, e.g. `sip:12345@127.0.0.1:5060`.
        target: String,
        /// Where to send the INVITE (default: the target's host:port).
        #[arg(long)]
        proxy: Option<SocketAddr>,
        /// Our SIP address.
        #[arg(long, default_value = "127.0.0.10:5062")]
        bind: SocketAddr,
        /// Caller number (From user).
        #[arg(long, default_value = "13800138000")]
        from: String,
        /// Answer a digest challenge as this user (an agent dialling a
        /// feature code, e.g. a supervisor's `*32<agent>`).
        #[arg(long, requires = "password")]
        user: Option<String>,
        /// Password for `--user`.
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Print the configuration lines that replace a clear password: an
    /// argon2id `password_hash` for a `[[user]]` and the SIP digest HA1s
    /// (`ha1_md5`, `ha1_sha256`) for an `[[agent]]`. The password is read
    /// from the first line of stdin, e.g. `hotline passwd --user 1001 <
    /// file`, never from the command line.
    Passwd {
        /// The user name (an API user or an agent's SIP user).
        #[arg(long)]
        user: String,
        /// SIP realm of the HA1s (default: `[sip] realm` of the configuration).
        #[arg(long)]
        realm: Option<String>,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Make a key for encrypting recordings and voicemails at rest
    /// (`[recording] encryption_key_file`): 32 random bytes written as 64
    /// hex digits to a new file with mode 0600. Prints the key's
    /// fingerprint, never the key.
    /// Check the agent forecast against a simulated 12345 day (issue 19):
    /// 140 seats in two skill groups, the ACD engine in virtual time, past
    /// weeks as the prior; prints, per half hour, the forecast made at its
    /// start against the 20 s answer rate measured, and the errors
    /// (Markdown, as in BENCHMARKS.md).
    ForecastDay {
        /// Seed of the day's draws (the run is deterministic for it).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Past weeks' same weekday simulated first, as the prior (the
        /// forecast looks back at most four).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=4))]
        weeks: u32,
    },
    Keygen {
        /// The key file to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Decrypt a recording or voicemail encrypted at rest into a plain WAV
    /// (e.g. for evidence handed over offline); every chunk is
    /// authenticated, and a damaged file is refused, naming the chunk.
    Unseal {
        /// The key file (`[recording] encryption_key_file`).
        #[arg(long)]
        key: PathBuf,
        /// The WAV to write (it must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The encrypted recording.
        file: PathBuf,
    },
    /// Register as an agent and answer calls; prints a JSON report per call.
    Phone {
        /// Our SIP address (the registered contact).
        #[arg(long, default_value = "127.0.0.21:5060")]
        bind: SocketAddr,
        /// Registrar (hotline's SIP address).
        #[arg(long, default_value = "127.0.0.1:5060")]
        registrar: SocketAddr,
        /// Agent user.
        #[arg(long, default_value = "1001")]
        user: String,
        /// Agent password.
        #[arg(long, default_value = "pass1001")]
        password: String,
        /// Calls to answer before exiting.
        #[arg(long, default_value_t = 1)]
        calls: usize,
        /// Ring this many seconds before answering.
        #[arg(long, default_value_t = 1.0)]
        answer_after: f64,
        #[command(flatten)]
        media: MediaArgs,
    },
}

#[derive(clap::Args)]
struct MediaArgs {
    /// Send this WAV (looped) instead of silence.
    #[arg(long, conflicts_with_all = ["tone", "no_rtp"])]
    play: Option<PathBuf>,
    /// Send a sine tone of this frequency (Hz).
    #[arg(long, conflicts_with = "no_rtp")]
    tone: Option<f32>,
    /// Send no RTP at all.
    #[arg(long)]
    no_rtp: bool,
    /// Record what is heard to this WAV (8 kHz mono).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Hang up this many seconds after answer (default: wait for BYE).
    #[arg(long)]
    hangup_after: Option<f64>,
    /// Press these keys as RFC 4733 events, e.g. `2#` (0-9, *, #, A-D);
    /// repeat for several bursts, each with its own `--dtmf-at`.
    #[arg(long)]
    dtmf: Vec<String>,
    /// Seconds after answer to start pressing each `--dtmf` burst (by
    /// position; a missing one means 1 s).
    #[arg(long)]
    dtmf_at: Vec<f64>,
    /// How to send keys: `rfc4733`, `inband` or `both`.
    #[arg(long, default_value = "rfc4733", value_parser = ["rfc4733", "inband", "both"])]
    dtmf_mode: String,
}

impl MediaArgs {
    fn script(&self) -> hotline::phone::Script {
        use hotline::phone::Audio;
        hotline::phone::Script {
            audio: match (&self.play, self.tone, self.no_rtp) {
                (Some(p), _, _) => Audio::Wav(p.clone()),
                (_, Some(hz), _) => Audio::Tone(hz),
                (_, _, true) => Audio::None,
                _ => Audio::Silence,
            },
            record: self.record.clone(),
            hangup_after: self.hangup_after.map(std::time::Duration::from_secs_f64),
            dtmf: self
                .dtmf
                .iter()
                .enumerate()
                .map(|(i, keys)| {
                    let at = self.dtmf_at.get(i).copied().unwrap_or(1.0);
                    (
                        std::time::Duration::from_secs_f64(at.max(0.0)),
                        keys.clone(),
                    )
                })
                .collect(),
            dtmf_mode: match self.dtmf_mode.as_str() {
                "inband" => hotline::phone::DtmfMode::InBand,
                "both" => hotline::phone::DtmfMode::Both,
                _ => hotline::phone::DtmfMode::Rfc4733,
            },
        }
    }
}

#[derive(Subcommand)]
enum FlowCommand {
    /// Validate flow files against the configuration (groups, trunks,
    /// agents, schedules, prompts); every error with file, line and node.
    Check {
        /// Flow files (default: every file in the configured flows_dir).
        files: Vec<PathBuf>,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a flow as a Graphviz DOT graph (or Mermaid).
    Graph {
        /// The flow file.
        file: PathBuf,
        /// Mermaid instead of DOT.
        #[arg(long)]
        mermaid: bool,
    },
    /// Every stored version of a flow (content hash, who and when).
    History {
        /// Flow name.
        name: String,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A unified diff of two stored versions (default: the version live
    /// before the live one, and the live one).
    Diff {
        /// Flow name.
        name: String,
        /// From this version (hash or unique prefix).
        from: Option<String>,
        /// To this version (default: the live one).
        to: Option<String>,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a stored version back to the flow's file (validated first;
    /// a running hotline takes it live at its next reload check).
    Rollback {
        /// Flow name.
        name: String,
        /// Version (hash or unique prefix).
        version: String,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replay the recorded calls of the flow through an edited flow file
    /// and report which callers would now end elsewhere.
    Replay {
        /// The edited flow file.
        file: PathBuf,
        /// How far back: 7d, 12h, 30m.
        #[arg(long, default_value = "7d")]
        since: String,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (default: the embedded one).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn load_config(path: Option<&PathBuf>) -> Result<hotline::config::Config, ExitCode> {
    let loaded = match path {
        Some(p) => hotline::config::Config::load(p),
        None => hotline::config::Config::embedded_default(),
    };
    loaded.map_err(|e| {
        eprintln!("hotline: configuration error:\n{e}");
        ExitCode::from(2)
    })
}

fn flow_check(files: Vec<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    use hotline::switch::ivr;
    let config = match load_config(config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let files = if files.is_empty() {
        ivr::flow_files(&config.ivr.flows_dir)
    } else {
        files
    };
    if files.is_empty() {
        eprintln!(
            "hotline: no flow files in {}",
            config.ivr.flows_dir.display()
        );
        return ExitCode::from(2);
    }
    let calendars = match ivr::load_calendars(&config) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let catalog = ivr::ConfigCatalog::new(&config, &calendars);
    match hotline::ivr::FlowSet::load(&files, &catalog) {
        Ok(set) => {
            for f in set.flows() {
                println!(
                    "{}: ok (flow \"{}\" version {}, {} nodes, DIDs {:?})",
                    f.path.display(),
                    f.name,
                    f.version,
                    f.nodes.len(),
                    f.dids
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} error(s); nothing changed", errors.len());
            ExitCode::from(2)
        }
    }
}

fn flow_graph(file: PathBuf, mermaid: bool) -> ExitCode {
    match hotline::ivr::Flow::load(&file) {
        Ok(flow) => {
            let text = if mermaid {
                hotline::ivr::to_mermaid(&flow)
            } else {
                hotline::ivr::to_dot(&flow)
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
    }
}

fn schedule(name: String, at: Option<String>, config: Option<PathBuf>) -> ExitCode {
    use hotline::time::civil;
    let config = match load_config(config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let calendars = match hotline::switch::ivr::load_calendars(&config) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::from(2);
        }
    };
    let Some(sched) = calendars.schedule(&name) else {
        let known: Vec<&str> = calendars.names().collect();
        eprintln!(
            "hotline: unknown schedule {name:?}; known: {}",
            known.join(", ")
        );
        return ExitCode::from(2);
    };
    let offset = sched.utc_offset_minutes();
    let unix = match at.as_deref() {
        None => hotline::util::unix_now() as i64,
        Some(text) => {
            let (date, time) = text.split_once('T').unwrap_or((text, "12:00"));
            let date = match civil::Date::parse(date) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("hotline: {e}");
                    return ExitCode::from(2);
                }
            };
            let minute = time
                .split_once(':')
                .and_then(|(h, m)| Some(h.parse::<u16>().ok()? * 60 + m.parse::<u16>().ok()?))
                .filter(|m| *m < 24 * 60);
            let Some(minute) = minute else {
                eprintln!("hotline: {time:?} is not a time HH:MM");
                return ExitCode::from(2);
            };
            civil::to_unix(date, minute, offset)
        }
    };
    match calendars.explain(&name, unix) {
        Some(e) => {
            println!("{e}");
            ExitCode::SUCCESS
        }
        None => ExitCode::from(2),
    }
}

/// Run a command that reads the configuration at `config` and writes to
/// standard output (records, reports, flow history): its error on standard
/// error and exit status 2.
fn cli_command<E: std::fmt::Display>(
    config: Option<&PathBuf>,
    run: impl FnOnce(&hotline::config::Config, &mut dyn std::io::Write) -> Result<(), E>,
) -> ExitCode {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(&config, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotline: {e}");
            ExitCode::from(2)
        }
    }
}

/// How often the switch hands freed heap pages back to the system.
const HEAP_TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// glibc keeps the memory a program frees in its arenas, so after a burst
/// of calls (their transactions linger 64×T1 and then go) RSS would stay at
/// the burst's peak for good. Every [`HEAP_TRIM_EVERY`] a thread of its own
/// asks glibc to give free pages back (`malloc_trim(0)`), so RSS follows the
/// load down (issue 16 item 4; cost and effect in BENCHMARKS.md,
/// "Signalling memory"). Off glibc there is nothing to call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn start_heap_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| loop {
            std::thread::sleep(HEAP_TRIM_EVERY);
            // SAFETY: malloc_trim takes no pointers and touches only glibc's
            // own free lists, which it locks while it runs.
            #[allow(unsafe_code)]
            unsafe {
                libc::malloc_trim(0);
            }
        });
    if let Err(e) = spawned {
        eprintln!("hotline: no heap trimmer thread: {e}");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn start_heap_trimmer() {}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hotline: cannot start runtime: {e}");
            ExitCode::FAILURE
        })
}

fn print_report(report: &hotline::phone::Report) {
    match serde_json::to_string(report) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("hotline: report: {e}"),
    }
}

fn main() -> ExitCode {
    // reqwest (webhooks) uses rustls: install one crypto provider for every
    // rustls user before any TLS is set up (two providers would panic).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter(&cli.log))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Colours only on a terminal: log files and pipes get plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
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
            start_heap_trimmer();
            match runtime.block_on(hotline::app::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hotline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match hotline::config::Config::load(&config) {
            Ok(loaded) => {
                // So is the key recordings are encrypted with.
                if let Err(e) = hotline::media::at_rest::SealingKey::load_optional(
                    loaded.recording.encryption_key_file.as_deref(),
                ) {
                    eprintln!("{}: {e}", config.display());
                    return ExitCode::from(2);
                }
                // Prompts are part of the configuration: a missing or broken
                // file is reported now, not as silence in a live call.
                if loaded.groups.iter().any(|g| g.queue_media) {
                    let dir = &loaded.media.sounds_dir;
                    if let Err(errors) = hotline::media::prompts::PromptLibrary::load(
                        dir,
                        hotline::config::acd::QUEUE_PROMPTS,
                    ) {
                        for e in errors {
                            eprintln!("{}: {e}", config.display());
                        }
                        return ExitCode::from(2);
                    }
                }
                // So are the IVR's flows, calendars, areas and block list.
                let ivr = hotline::switch::ivr::seed_blacklist(&loaded).and_then(|b| {
                    hotline::switch::ivr::load(
                        &loaded,
                        std::sync::Arc::new(std::sync::RwLock::new(b)),
                    )
                });
                if let Err(errors) = ivr {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(2);
                }
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Flow {
            command: FlowCommand::Check { files, config },
        } => flow_check(files, config),
        Command::Flow {
            command: FlowCommand::Graph { file, mermaid },
        } => flow_graph(file, mermaid),
        Command::Flow {
            command: FlowCommand::History { name, config },
        } => cli_command(config.as_ref(), |c, out| {
            hotline::switch::flow_cli::history(c, &name, out)
        }),
        Command::Flow {
            command:
                FlowCommand::Diff {
                    name,
                    from,
                    to,
                    config,
                },
        } => cli_command(config.as_ref(), |c, out| {
            hotline::switch::flow_cli::diff(c, &name, from.as_deref(), to.as_deref(), out)
        }),
        Command::Flow {
            command:
                FlowCommand::Rollback {
                    name,
                    version,
                    config,
                },
        } => cli_command(config.as_ref(), |c, out| {
            hotline::switch::flow_cli::rollback(c, &name, &version, out)
        }),
        Command::Flow {
            command:
                FlowCommand::Replay {
                    file,
                    since,
                    json,
                    config,
                },
        } => cli_command(config.as_ref(), |c, out| {
            hotline::switch::flow_cli::replay(c, &file, &since, json, out)
        }),
        Command::Schedule { name, at, config } => schedule(name, at, config),
        Command::Records(args) => cli_command(args.config.as_ref(), |c, out| {
            hotline::records::cli::records(c, &args, out)
        }),
        Command::Report(args) => cli_command(args.config.as_ref(), |c, out| {
            hotline::records::cli::report(c, &args, out)
        }),
        Command::ForecastDay { seed, weeks } => {
            let day =
                hotline::forecast::day::run(hotline::forecast::day::DayOptions { seed, weeks });
            print!("{}", hotline::forecast::day::table(&day));
            ExitCode::SUCCESS
        }
        Command::Keygen { out } => match hotline::media::at_rest::SealingKey::generate_file(&out) {
            Ok(key) => {
                println!(
                    "{}: new recording key, fingerprint {}",
                    out.display(),
                    key.fingerprint_hex()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hotline keygen: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Unseal { key, out, file } => unseal(&key, &file, &out),
        Command::Passwd {
            user,
            realm,
            config,
        } => passwd(&user, realm, config),
        Command::Dial {
            target,
            proxy,
            bind,
            from,
            user,
            password,
            media,
        } => {
            let runtime = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            let proxy = match proxy.or_else(|| target_addr(&target)) {
                Some(p) => p,
                None => {
                    eprintln!("hotline: cannot tell where to send {target:?}; give --proxy");
                    return ExitCode::from(2);
                }
            };
            let script = media.script();
            match runtime.block_on(hotline::phone::dial(
                bind,
                proxy,
                &target,
                &from,
                user.zip(password),
                &script,
            )) {
                Ok(report) => {
                    print_report(&report);
                    if (200..300).contains(&report.status) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("hotline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Phone {
            bind,
            registrar,
            user,
            password,
            calls,
            answer_after,
            media,
        } => {
            let runtime = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            let script = media.script();
            let wait = std::time::Duration::from_secs_f64(answer_after.max(0.0));
            let run = hotline::phone::answer(
                bind,
                registrar,
                &user,
                &password,
                calls,
                wait,
                &script,
                print_report,
            );
            match runtime.block_on(run) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hotline: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// `host:port` of a `sip:user@host:port` URI when host is an IP address.
fn target_addr(uri: &str) -> Option<SocketAddr> {
    let rest = uri.strip_prefix("sip:")?;
    let hostport = rest.rsplit('@').next()?.split(';').next()?;
    hostport
        .parse()
        .ok()
        .or_else(|| format!("{hostport}:5060").parse().ok())
}

/// The user's filter, with the SIP library's per-packet logs held at `warn`
/// unless the user mentions it.
fn log_filter(user: &str) -> String {
    // The libraries' own chatter, unless asked for: rsipstack's per
    // transaction, rtc-dtls's per handshake (a browser's ClientHello
    // offers extensions it does not know, each a warning).
    let mut filter = user.to_string();
    for (library, level) in [("rsipstack", "warn"), ("rtc_dtls", "error")] {
        if !user.contains(library) {
            filter.push_str(&format!(",{library}={level}"));
        }
    }
    filter
}

/// `hotline unseal`: the plaintext written to a new file, removed again if
/// any chunk fails.
fn unseal(key: &std::path::Path, file: &std::path::Path, out: &std::path::Path) -> ExitCode {
    use hotline::media::at_rest::{SealedFile, SealingKey};
    let result = (|| -> Result<u64, String> {
        let key = SealingKey::load(key).map_err(|e| e.to_string())?;
        let mut sealed = SealedFile::open(file, &key).map_err(|e| e.to_string())?;
        let dest = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .map_err(|e| format!("{}: create (it must not exist): {e}", out.display()))?;
        let mut w = std::io::BufWriter::new(dest);
        let len = sealed.plain_len();
        let copied = sealed.for_range(0, len, |piece| {
            std::io::Write::write_all(&mut w, piece).map_err(|source| {
                hotline::media::at_rest::SealError::Io {
                    path: out.to_path_buf(),
                    op: "write",
                    source,
                }
            })
        });
        let flushed = copied.map_err(|e| e.to_string()).and_then(|()| {
            std::io::Write::flush(&mut w).map_err(|e| format!("{}: {e}", out.display()))
        });
        if let Err(e) = flushed {
            drop(w);
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
        Ok(len)
    })();
    match result {
        Ok(bytes) => {
            println!("{}: {bytes} bytes decrypted", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hotline unseal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `hotline passwd`.
fn passwd(user: &str, realm: Option<String>, config: Option<PathBuf>) -> ExitCode {
    let realm = match realm {
        Some(r) => r,
        None => {
            let loaded = match &config {
                Some(p) => hotline::config::Config::load(p),
                None => hotline::config::Config::embedded_default(),
            };
            match loaded {
                Ok(c) => c.sip.realm.clone(),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let password = match hotline::app::passwd::read_password(std::io::stdin().lock()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot read the password from stdin: {e}");
            return ExitCode::from(2);
        }
    };
    match hotline::app::passwd::credential_lines(user, &realm, &password) {
        Ok(lines) => {
            print!("{lines}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
