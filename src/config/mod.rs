//! `hotline.toml`: the schema, its defaults and its validation.
//!
//! Loading is two steps: `toml` deserialises into the typed [`Config`]
//! (unknown keys are refused, so a typo is an error, not a silently ignored
//! setting), then [`Config::validate`] checks what types cannot (cross
//! references, ranges, duplicates). Every error names the file, the line and
//! the key at fault; the line is found with [`locate`] over the `toml_edit`
//! document so semantic errors point at the same place a parse error would.
//!
//! This module does no I/O beyond reading the one file it is given.

pub mod acd;
pub mod api;
pub mod events;
pub mod fork;
pub mod ivr;
mod listen;
mod locate;
mod media;
pub mod srtp;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

pub use acd::{AcdSettings, GroupConfig, NextStep, StrategyName};
pub use listen::{valid_origin, FloodConfig, HttpConfig, SipConfig, Transport};
pub use locate::locate;
pub use media::{MediaConfig, RecordingConfig};
pub use srtp::SrtpMode;

/// The configuration shipped with the repository, embedded so `hotline serve`
/// works from any working directory.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/hotline.toml");
/// The path the default configuration is reported under.
pub const DEFAULT_CONFIG_PATH: &str = "config/hotline.toml";

/// A configuration error, naming the file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// File at fault.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// TOML syntax or type error (toml names the line and column).
    #[error("{path}: {message}")]
    Parse {
        /// File at fault.
        path: PathBuf,
        /// toml's message, with line, column and a caret under the fault.
        message: String,
    },
    /// One or more semantic errors; all are reported at once.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Invalid>),
}

/// One semantic error in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// File at fault.
    pub path: PathBuf,
    /// 1-based line of the offending key, when it could be located.
    pub line: Option<usize>,
    /// Dotted key, e.g. `did[0].agents[3]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{}: {}: {}",
                self.path.display(),
                line,
                self.key,
                self.message
            ),
            None => write!(f, "{}: {}: {}", self.path.display(), self.key, self.message),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SIP listener and realm.
    pub sip: SipConfig,
    /// HTTP API listener.
    #[serde(default)]
    pub http: HttpConfig,
    /// The certificate of SIP over TLS and HTTPS.
    #[serde(default)]
    pub tls: Option<tls::TlsSettings>,
    /// Where state lives.
    #[serde(default)]
    pub data: DataConfig,
    /// The shared store of several nodes (absent: SQLite in `[data] dir`).
    #[serde(default)]
    pub store: StoreConfig,
    /// RTP ports, codecs, timeouts.
    #[serde(default)]
    pub media: MediaConfig,
    /// Agent registration policy.
    #[serde(default)]
    pub registrar: RegistrarConfig,
    /// Call timers.
    #[serde(default)]
    pub calls: CallsConfig,
    /// Carrier trunks.
    #[serde(default, rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// Operations centres.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Agents (their SIP accounts).
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentConfig>,
    /// Numbers and how they are routed.
    #[serde(default, rename = "did")]
    pub dids: Vec<DidConfig>,
    /// Call recording.
    #[serde(default)]
    pub recording: RecordingConfig,
    /// ACD settings.
    #[serde(default)]
    pub acd: AcdSettings,
    /// Skill groups.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// IVR flows, calendars, caller areas.
    #[serde(default)]
    pub ivr: ivr::IvrSettings,
    /// Block list seeds.
    #[serde(default, rename = "blacklist")]
    pub blacklist: Vec<ivr::BlacklistSeed>,
    /// The event outbox.
    #[serde(default)]
    pub events: events::EventsSettings,
    /// Webhook endpoints for events.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<events::WebhookConfig>,
    /// NATS JetStream servers for events (feature `nats`).
    #[serde(default, rename = "nats")]
    pub nats: Vec<events::NatsConfig>,
    /// HTTP API sessions.
    #[serde(default)]
    pub api: api::ApiSettings,
    /// How long records are kept.
    #[serde(default)]
    pub retention: api::RetentionSettings,
    /// Users of the HTTP API (seeds).
    #[serde(default, rename = "user")]
    pub users: Vec<api::UserSeed>,
    /// One-click transfer targets of the phone bar.
    #[serde(default, rename = "quick_transfer")]
    pub quick_transfers: Vec<api::QuickTransfer>,
    /// The file this was loaded from (for messages).
    #[serde(skip)]
    pub source_path: PathBuf,
    /// The file's text (a reload compares sections).
    #[serde(skip)]
    pub source_text: Option<String>,
    /// Loaded from the built-in default, not a file.
    #[serde(skip)]
    pub embedded: bool,
}

/// `[data]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory for the SQLite database, recordings, spool.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./var"),
        }
    }
}

/// `[store]` (docs/ha.md §1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/database`: registrations, the
    /// roster, the block list, the ACD's state, live legs, the events
    /// outbox and the call records in one PostgreSQL database shared by
    /// every node. Absent: the embedded SQLite databases `[data]
    /// dir`/hotline.db and the events database (`[events] db`).
    pub url: Option<String>,
    /// This node's name among the nodes sharing the store (the owner of
    /// the calls' legs it anchors). Default: its `[sip] listen` address.
    pub node: Option<String>,
    /// `nats://host:port[,nats://…]`: the nodes sharing `url` run one ACD
    /// (docs/ha.md §3): the node holding the store's lease leads it, the
    /// others send it their callers and agents' inputs over NATS. Needs
    /// `url` and a build with the `nats` feature. Absent: each node queues
    /// its own callers.
    pub nats: Option<String>,
}

/// `[registrar]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Shorter registrations get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer ones are clamped.
    pub max_expires: u32,
    /// Used when the REGISTER names none.
    pub default_expires: u32,
    /// Nonce lifetime; older nonces get `stale=true`.
    pub nonce_ttl_secs: u64,
    /// Failed authentications from one address before it is blocked.
    pub auth_failures_before_block: u32,
    /// How long a blocked address stays blocked.
    pub auth_block_secs: u64,
    /// Failed digest authentications for one user name, from any
    /// addresses, within a minute before the user is locked out (a
    /// password-guessing botnet; 0 = off). See `sip::user_lockout`.
    pub user_failures_before_lockout: u32,
    /// How long a locked-out user's requests (the right password too) get
    /// 503 with `Retry-After`; then the user authenticates again.
    pub user_lockout_secs: u64,
    /// Digest algorithms in use, most preferred first: "MD5", "SHA-256"
    /// (RFC 8760). The first is the realm's default: the one challenge an
    /// agent without a `digest_algorithm` of its own gets (see
    /// `sip::digest_policy`). Credentials in an algorithm not listed are
    /// refused.
    pub digest_algorithms: Vec<String>,
    /// How many challenges a 401/407 carries: "single" (default: one, in
    /// the algorithm chosen for the agent; phones such as baresip 1.0 give
    /// up on more) or "multiple" (RFC 8760 §2.4: one per listed algorithm
    /// the agent's credentials can answer).
    pub digest_challenge: String,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            nonce_ttl_secs: 300,
            auth_failures_before_block: 10,
            auth_block_secs: 60,
            user_failures_before_lockout: 20,
            user_lockout_secs: 300,
            digest_algorithms: vec!["MD5".into(), "SHA-256".into()],
            digest_challenge: "single".into(),
        }
    }
}

/// `[calls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// How long one ring attempt lasts.
    pub ring_timeout_secs: u64,
    /// A phone or trunk that sends no provisional response within this
    /// time is treated as unreachable (next target).
    pub no_response_secs: u64,
    /// Grace period for calls on shutdown.
    pub shutdown_grace_secs: u64,
    /// RFC 4028 Session-Expires we ask of the agent leg (0 = off).
    pub session_expires_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            ring_timeout_secs: 30,
            no_response_secs: 5,
            shutdown_grace_secs: 10,
            session_expires_secs: 1800,
        }
    }
}

/// `[[trunk]]`: a carrier interconnect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Unique name.
    pub name: String,
    /// Source networks whose requests are this carrier's (IP peering).
    #[serde(default)]
    pub inbound_cidrs: Vec<IpNet>,
    /// Where outbound requests go (host:port).
    pub proxy: Option<SocketAddr>,
    /// Transport for outbound requests.
    #[serde(default = "default_trunk_transport")]
    pub transport: Transport,
    /// Trunk tried next when this one fails within the same call attempt.
    pub backup: Option<String>,
    /// If no provisional response arrives within this many seconds the
    /// attempt moves to the backup.
    #[serde(default = "default_trunk_invite_timeout")]
    pub invite_timeout_secs: u64,
    /// Register to the carrier with these credentials.
    pub register: Option<TrunkRegistration>,
    /// Most calls in progress from this trunk at once; beyond it a new
    /// INVITE gets 503 with `Retry-After` (0 = no cap; see
    /// `switch::admission`).
    #[serde(default)]
    pub max_calls: u32,
    /// Most new calls from this trunk within any one second (CPS); beyond
    /// it 503 with `Retry-After: 1` (0 = no cap).
    #[serde(default)]
    pub max_cps: u32,
    /// SRTP (SDES) toward this carrier: our offers (callbacks, outbound
    /// calls) and, when `required`, plain offers from it refused with 488.
    #[serde(default)]
    pub srtp: SrtpMode,
    /// With `transport = "tls"`: the name sent as SNI and required in the
    /// carrier's certificate (default: the proxy's IP address).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// With `transport = "tls"`: PEM CA certificates the carrier's
    /// certificate must chain to (default: the system's roots).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
}

fn default_trunk_transport() -> Transport {
    Transport::Udp
}
fn default_trunk_invite_timeout() -> u64 {
    4
}

/// `[trunk.register]`: outbound registration to a carrier (client digest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkRegistration {
    /// Account user.
    pub username: String,
    /// Account password.
    pub password: String,
    /// Requested registration lifetime.
    #[serde(default = "default_trunk_expires")]
    pub expires_secs: u32,
}

fn default_trunk_expires() -> u32 {
    3600
}

/// `[[tenant]]`: an operations centre.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Stable id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Caller number used on outbound calls of this tenant.
    #[serde(default)]
    pub outbound_caller_id: String,
    /// Trunk for this tenant's outbound calls (callbacks); its backups follow.
    pub outbound_trunk: Option<String>,
    /// Days this tenant's records are kept (default: `[retention] days`).
    pub retention_days: Option<u32>,
    /// Most calls in progress for this centre at once, over all trunks;
    /// beyond it a new INVITE gets 503 with `Retry-After` (0 = no cap).
    #[serde(default)]
    pub max_calls: u32,
    /// Most new calls for this centre within any one second, over all
    /// trunks; beyond it 503 with `Retry-After: 1` (0 = no cap).
    #[serde(default)]
    pub max_cps: u32,
    /// Stream every answered call's audio to a WebSocket receiver
    /// (issue 18 §1 "Live audio fork").
    #[serde(default)]
    pub audio_fork: Option<fork::AudioForkConfig>,
}

/// `[[agent]]`: an agent's SIP account.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// SIP user (also the extension).
    pub user: String,
    /// Plain password (demo); prefer `ha1_md5`/`ha1_sha256` in production.
    pub password: Option<String>,
    /// Pre-hashed MD5 HA1 = MD5(user:realm:password), lowercase hex.
    pub ha1_md5: Option<String>,
    /// Pre-hashed SHA-256 HA1, lowercase hex.
    pub ha1_sha256: Option<String>,
    /// The digest algorithm this agent's phone is challenged with ("MD5"
    /// or "SHA-256"); default: the first of `[registrar] digest_algorithms`
    /// its credentials can answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_algorithm: Option<String>,
    /// Tenant the agent belongs to.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Job number (工号); defaults to the SIP user.
    pub job_number: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Skill group id → level 1–10.
    #[serde(default)]
    pub skills: std::collections::BTreeMap<String, u8>,
    /// Sign in automatically when the phone registers.
    #[serde(default)]
    pub auto_login: bool,
    /// Ask the phone to answer calls by itself (Call-Info answer-after=0,
    /// Alert-Info alert-autoanswer): the agent hears a beep and talks.
    #[serde(default)]
    pub auto_answer: bool,
    /// May listen to, whisper to and barge into other agents' calls from
    /// the phone (`*31`/`*32`/`*33` + agent).
    #[serde(default)]
    pub supervisor: bool,
}

/// The ACD's id of an agent: the job number (工号), else the SIP user.
pub fn agent_id(a: &AgentConfig) -> &str {
    a.job_number.as_deref().unwrap_or(&a.user)
}

pub(crate) fn default_tenant() -> String {
    "default".into()
}

/// How a DID rings its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RingStrategy {
    /// One agent after another.
    Sequential,
    /// All at once; first answer wins, the others are cancelled.
    Simultaneous,
}

/// `[[did]]`: a called number.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DidConfig {
    /// The number, as it appears in the Request-URI user part.
    pub number: String,
    /// Owning tenant.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Sequential or simultaneous.
    #[serde(default = "default_ring")]
    pub ring: RingStrategy,
    /// Agents rung, in order.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Instead of agents: forward to this external number through trunks.
    pub forward_to: Option<String>,
    /// Trunk to forward through (its `backup` chain is followed).
    pub forward_trunk: Option<String>,
    /// Instead of agents: queue in this skill group.
    pub queue: Option<String>,
    /// Queue priority (higher first): 0–199 ordinary callers, 200–255 the
    /// emergency (Level I) lane, served before everyone, agents'
    /// consultations included (`acd::EMERGENCY_PRIORITY_MIN`).
    #[serde(default)]
    pub priority: u8,
}

fn default_ring() -> RingStrategy {
    RingStrategy::Sequential
}

impl Config {
    /// The events (and call records) database: `[events] db`, else
    /// `<data.dir>/events.db` (not used when `[store] url` is set: the
    /// outbox is in PostgreSQL then).
    pub fn events_db_path(&self) -> PathBuf {
        self.events
            .db
            .clone()
            .unwrap_or_else(|| self.data.dir.join("events.db"))
    }

    /// The centre's offset from UTC for the ACD's day (figures reset at
    /// local midnight): `[acd] utc_offset_minutes`, else `[recording]
    /// utc_offset_minutes`.
    pub fn acd_utc_offset_minutes(&self) -> i32 {
        self.acd
            .utc_offset_minutes
            .unwrap_or(self.recording.utc_offset_minutes)
    }

    /// The prompts this configuration needs from `media.sounds_dir`.
    pub fn required_prompts(&self) -> &'static [&'static str] {
        if self.groups.iter().any(|g| g.queue_media) {
            acd::QUEUE_PROMPTS
        } else if self.media.music_on_hold {
            &["moh"]
        } else {
            &[]
        }
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str_at(&text, path)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        let mut c = Self::from_str_at(DEFAULT_CONFIG, Path::new(DEFAULT_CONFIG_PATH))?;
        c.embedded = true;
        Ok(c)
    }

    /// Parse and validate `text`, reporting errors against `path`.
    pub fn from_str_at(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.source_path = path.to_path_buf();
        config.source_text = Some(text.to_string());
        let problems = config.validate();
        if problems.is_empty() {
            return Ok(config);
        }
        let doc = text.parse::<toml_edit::ImDocument<String>>().ok();
        let invalid = problems
            .into_iter()
            .map(|(key, message)| Invalid {
                path: path.to_path_buf(),
                line: doc.as_ref().and_then(|d| locate(d, text, &key)),
                key,
                message,
            })
            .collect();
        Err(ConfigError::Invalid(invalid))
    }

    /// Check a configuration built at run time (the file with the stored
    /// agents and groups, or an admin's change to them): every problem as
    /// one line, with agents and groups named instead of numbered.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let problems = self.validate();
        if problems.is_empty() {
            return Ok(());
        }
        Err(problems
            .into_iter()
            .map(|(key, message)| format!("{}: {message}", self.name_key(&key)))
            .collect())
    }

    /// `agent[3].skills.g1` → `agent "1004" skills.g1` (and groups alike).
    fn name_key(&self, key: &str) -> String {
        let named = |prefix: &str, name: &dyn Fn(usize) -> Option<String>| {
            let rest = key.strip_prefix(prefix)?;
            let (ix, tail) = rest.split_once(']')?;
            let n = name(ix.parse().ok()?)?;
            Some(format!(
                "{} {n:?}{}",
                prefix.trim_end_matches('['),
                tail.replacen('.', " ", 1)
            ))
        };
        named("agent[", &|i| self.agents.get(i).map(|a| a.user.clone()))
            .or_else(|| named("group[", &|i| self.groups.get(i).map(|g| g.id.clone())))
            .unwrap_or_else(|| key.to_string())
    }

    /// Semantic checks; returns `(dotted key, message)` for every problem.
    /// Agent `i`'s digest setting: a known algorithm, in use, that its
    /// credentials can answer; and credentials that answer at least one
    /// algorithm in use.
    fn agent_digest_problems(&self, i: usize, a: &AgentConfig) -> Vec<(String, String)> {
        use crate::sip::auth::DigestAlgorithm;
        let in_use: Vec<DigestAlgorithm> = self
            .registrar
            .digest_algorithms
            .iter()
            .filter_map(|t| DigestAlgorithm::parse(t).ok())
            .collect();
        let can_answer = |alg: DigestAlgorithm| {
            a.password.is_some()
                || match alg {
                    DigestAlgorithm::Md5 => a.ha1_md5.is_some(),
                    DigestAlgorithm::Sha256 => a.ha1_sha256.is_some(),
                }
        };
        let mut out = Vec::new();
        if let Some(token) = &a.digest_algorithm {
            let key = format!("agent[{i}].digest_algorithm");
            match DigestAlgorithm::parse(token) {
                Err(_) => out.push((
                    key,
                    format!("unknown digest algorithm {token:?}; supported: \"SHA-256\", \"MD5\""),
                )),
                Ok(alg) if !in_use.is_empty() && !in_use.contains(&alg) => out.push((
                    key,
                    format!("{token:?} is not in [registrar] digest_algorithms"),
                )),
                Ok(alg) if !can_answer(alg) => out.push((
                    key,
                    format!(
                        "{token:?} needs a password or ha1_{}",
                        alg.token().to_ascii_lowercase().replace('-', "")
                    ),
                )),
                Ok(_) => {}
            }
        }
        let has_credentials = a.password.is_some() || a.ha1_md5.is_some() || a.ha1_sha256.is_some();
        if has_credentials && !in_use.is_empty() && !in_use.iter().any(|alg| can_answer(*alg)) {
            out.push((
                format!("agent[{i}].user"),
                "the agent's stored hashes answer none of [registrar] digest_algorithms".into(),
            ));
        }
        out
    }

    /// This node's name among the nodes sharing a store: `[store] node`, or
    /// its `[sip] listen` address.
    pub fn node_id(&self) -> String {
        self.store
            .node
            .clone()
            .unwrap_or_else(|| self.sip.listen.to_string())
    }

    /// Where the other nodes reach this node's HTTP API (a recording
    /// made here, asked of another node, is fetched from it): `[http]
    /// listen`, with `[media] address` as the host when it listens on
    /// every address; `https` with `[http] tls`.
    pub fn node_http_url(&self) -> String {
        let scheme = if self.http.tls { "https" } else { "http" };
        let ip = if self.http.listen.ip().is_unspecified() {
            self.media.address
        } else {
            self.http.listen.ip()
        };
        let host = std::net::SocketAddr::new(ip, self.http.listen.port());
        format!("{scheme}://{host}")
    }

    fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.tls.is_none() {
            if self.sip.transports.contains(&Transport::Tls) {
                out.push((
                    "sip.transports".into(),
                    "\"tls\" needs a [tls] section with cert_file and key_file".into(),
                ));
            }
            if self.http.tls {
                out.push((
                    "http.tls".into(),
                    "HTTPS needs a [tls] section with cert_file and key_file".into(),
                ));
            }
        }
        if let Some(url) = &self.store.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                out.push((
                    "store.url".into(),
                    "must be a PostgreSQL URL, postgres://user:password@host:port/database (leave it out for the embedded SQLite store)".into(),
                ));
            }
        }
        if let Some(nats) = &self.store.nats {
            if self.store.url.is_none() {
                out.push((
                    "store.nats".into(),
                    "one ACD for several nodes needs their shared store: set store.url too".into(),
                ));
            } else if !nats.split(',').all(|u| u.trim().starts_with("nats://")) {
                out.push((
                    "store.nats".into(),
                    "must be nats://host:port (several separated by commas)".into(),
                ));
            } else if !cfg!(feature = "nats") {
                out.push((
                    "store.nats".into(),
                    "this hotline was built without the nats feature (cargo build --features nats)"
                        .into(),
                ));
            }
        }
        let m = &self.media;
        if m.rtp_port_min >= m.rtp_port_max || m.rtp_port_max - m.rtp_port_min < 3 {
            out.push((
                "media.rtp_port_max".into(),
                format!(
                    "RTP range {}..={} holds no port pair; need rtp_port_min < rtp_port_max",
                    m.rtp_port_min, m.rtp_port_max
                ),
            ));
        }
        if m.rtp_port_min < 1024 {
            out.push((
                "media.rtp_port_min".into(),
                "ports below 1024 are reserved".into(),
            ));
        }
        if m.codecs.is_empty() {
            out.push(("media.codecs".into(), "at least one codec is needed".into()));
        }
        for (i, c) in m.codecs.iter().enumerate() {
            if !matches!(c.to_ascii_uppercase().as_str(), "PCMA" | "PCMU") {
                out.push((
                    format!("media.codecs[{i}]"),
                    format!("unknown codec {c:?}; supported: \"PCMA\", \"PCMU\""),
                ));
            }
        }
        for (i, o) in self.http.cors_origins.iter().enumerate() {
            if !valid_origin(o) {
                out.push((
                    format!("http.cors_origins[{i}]"),
                    format!("{o:?} is not a web origin; write scheme://host[:port], e.g. \"https://tickets.example.gov.cn\" (no path, no \"*\")"),
                ));
            }
        }
        if self.sip.transports.is_empty() {
            out.push((
                "sip.transports".into(),
                "at least one of \"udp\", \"tcp\"".into(),
            ));
        }
        let r = &self.registrar;
        if r.min_expires > r.max_expires {
            out.push((
                "registrar.min_expires".into(),
                format!(
                    "min_expires {} exceeds max_expires {}",
                    r.min_expires, r.max_expires
                ),
            ));
        }
        for (i, a) in r.digest_algorithms.iter().enumerate() {
            if crate::sip::auth::DigestAlgorithm::parse(a).is_err() {
                out.push((
                    format!("registrar.digest_algorithms[{i}]"),
                    format!("unknown digest algorithm {a:?}; supported: \"SHA-256\", \"MD5\""),
                ));
            }
        }
        // A lockout must end (issue 14 §5): at least a second, at most a day.
        if r.user_failures_before_lockout > 0 && !(1..=86_400).contains(&r.user_lockout_secs) {
            out.push((
                "registrar.user_lockout_secs".into(),
                "must be 1 to 86400 (a day) while user_failures_before_lockout is set (0 turns the lockout off)".into(),
            ));
        }
        if crate::sip::digest_policy::ChallengeMode::parse(&r.digest_challenge).is_none() {
            out.push((
                "registrar.digest_challenge".into(),
                format!(
                    "unknown value {:?}; expected \"single\" or \"multiple\"",
                    r.digest_challenge
                ),
            ));
        }
        if self.calls.ring_timeout_secs == 0 {
            out.push((
                "calls.ring_timeout_secs".into(),
                "must be at least 1".into(),
            ));
        }

        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            if !seen.insert(t.name.as_str()) {
                out.push((
                    format!("trunk[{i}].name"),
                    format!("trunk {:?} is defined twice", t.name),
                ));
            }
        }
        for (i, t) in self.trunks.iter().enumerate() {
            if let Some(b) = &t.backup {
                if b == &t.name {
                    out.push((
                        format!("trunk[{i}].backup"),
                        "a trunk cannot be its own backup".into(),
                    ));
                } else if !self.trunks.iter().any(|o| &o.name == b) {
                    out.push((
                        format!("trunk[{i}].backup"),
                        format!("no trunk named {b:?}"),
                    ));
                }
            }
            if t.register.is_some() && t.proxy.is_none() {
                out.push((
                    format!("trunk[{i}].register"),
                    "registration needs `proxy` (the registrar address)".into(),
                ));
            }
            if t.transport == Transport::Tls {
                if t.proxy.is_none() {
                    out.push((
                        format!("trunk[{i}].transport"),
                        "\"tls\" needs `proxy` (the carrier's TLS address, port 5061 by custom)"
                            .into(),
                    ));
                }
                if !self.sip.transports.contains(&Transport::Tls) {
                    out.push((
                        format!("trunk[{i}].transport"),
                        "\"tls\" to a trunk needs \"tls\" in [sip] transports (our TLS address goes in Via and Contact)".into(),
                    ));
                }
            }
        }

        let mut tenants = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if !tenants.insert(t.id.as_str()) {
                out.push((
                    format!("tenant[{i}].id"),
                    format!("tenant {:?} is defined twice", t.id),
                ));
            }
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if let Some(f) = &t.audio_fork {
                for (field, msg) in f.problems() {
                    out.push((format!("tenant[{i}].audio_fork.{field}"), msg));
                }
                if !self.recording.enabled {
                    out.push((
                        format!("tenant[{i}].audio_fork"),
                        "the fork taps the call's recording: [recording] enabled must be true"
                            .into(),
                    ));
                }
            }
            if let Some(trunk) = &t.outbound_trunk {
                if !self.trunks.iter().any(|x| &x.name == trunk) {
                    out.push((
                        format!("tenant[{i}].outbound_trunk"),
                        format!("no trunk named {trunk:?}"),
                    ));
                }
            }
        }
        let tenant_known = |id: &str| id == "default" || tenants.contains(id);

        let mut users = std::collections::HashSet::new();
        let mut job_numbers = std::collections::HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            if !users.insert(a.user.as_str()) {
                out.push((
                    format!("agent[{i}].user"),
                    format!("agent {:?} is defined twice", a.user),
                ));
            }
            let id = agent_id(a);
            if !job_numbers.insert(id) {
                out.push((
                    format!("agent[{i}].job_number"),
                    format!("job number {id:?} is used by two agents"),
                ));
            }
            if a.user.is_empty() || id.is_empty() {
                out.push((
                    format!("agent[{i}].user"),
                    "the SIP user and job number must not be empty".into(),
                ));
            }
            if a.password.is_none() && a.ha1_md5.is_none() && a.ha1_sha256.is_none() {
                out.push((
                    format!("agent[{i}].user"),
                    "agent has no credentials: set password, ha1_md5 or ha1_sha256".into(),
                ));
            }
            for (key, len, v) in [
                ("ha1_md5", 32, &a.ha1_md5),
                ("ha1_sha256", 64, &a.ha1_sha256),
            ] {
                if let Some(v) = v {
                    if v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        out.push((
                            format!("agent[{i}].{key}"),
                            format!("expected {len} hex digits"),
                        ));
                    }
                }
            }
            out.extend(self.agent_digest_problems(i, a));
            if !tenant_known(&a.tenant) {
                out.push((
                    format!("agent[{i}].tenant"),
                    format!("no tenant {:?}", a.tenant),
                ));
            }
        }

        let mut numbers = std::collections::HashSet::new();
        for (i, d) in self.dids.iter().enumerate() {
            if !numbers.insert(d.number.as_str()) {
                out.push((
                    format!("did[{i}].number"),
                    format!("number {:?} is defined twice", d.number),
                ));
            }
            if !tenant_known(&d.tenant) {
                out.push((
                    format!("did[{i}].tenant"),
                    format!("no tenant {:?}", d.tenant),
                ));
            }
            for (j, a) in d.agents.iter().enumerate() {
                if !users.contains(a.as_str()) {
                    out.push((format!("did[{i}].agents[{j}]"), format!("no agent {a:?}")));
                }
            }
            match (&d.forward_to, &d.forward_trunk) {
                (Some(_), None) => out.push((
                    format!("did[{i}].forward_to"),
                    "forward_to needs forward_trunk".into(),
                )),
                (_, Some(t)) if !self.trunks.iter().any(|x| &x.name == t) => out.push((
                    format!("did[{i}].forward_trunk"),
                    format!("no trunk named {t:?}"),
                )),
                _ => {}
            }
            let targets = [
                !d.agents.is_empty(),
                d.forward_to.is_some(),
                d.queue.is_some(),
            ];
            match targets.iter().filter(|t| **t).count() {
                0 => out.push((
                    format!("did[{i}].number"),
                    "a number needs one of agents, queue or forward_to".into(),
                )),
                1 => {}
                _ => out.push((
                    format!("did[{i}].number"),
                    "agents, queue and forward_to are alternatives: set one".into(),
                )),
            }
            if let Some(q) = &d.queue {
                if !self.groups.iter().any(|g| &g.id == q) {
                    out.push((format!("did[{i}].queue"), format!("no group {q:?}")));
                }
            }
        }
        let skills: Vec<&std::collections::BTreeMap<String, u8>> =
            self.agents.iter().map(|a| &a.skills).collect();
        acd::validate(&self.acd, &self.groups, &skills, &tenant_known, &mut out);
        out
    }

    /// The trunk with this name.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The chain `name`, its backup, the backup's backup… without repeats.
    pub fn trunk_chain(&self, name: &str) -> Vec<&TrunkConfig> {
        let mut chain: Vec<&TrunkConfig> = Vec::new();
        let mut next = self.trunk(name);
        while let Some(t) = next {
            if chain.iter().any(|c| c.name == t.name) {
                break;
            }
            chain.push(t);
            next = t.backup.as_deref().and_then(|b| self.trunk(b));
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_plain_web_origins() {
        for good in [
            "https://tickets.example.gov.cn",
            "http://10.1.2.3:8443",
            "https://[2001:db8::1]:443",
            "http://localhost",
        ] {
            assert!(valid_origin(good), "{good}");
        }
        for bad in [
            "*",
            "tickets.example.gov.cn",
            "https://tickets.example.gov.cn/app",
            "ftp://x",
            "https://",
            "https://evil.example:0",
            "https://a b",
            "null",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded_default().expect("default config");
        assert_eq!(c.agents.len(), 10);
        // 12345 and 12328 are claimed by the shipped IVR flows.
        assert!(c.dids.is_empty());
        assert_eq!(c.ivr.flows_dir, Path::new("./ivr-flows"));
        assert_eq!(c.blacklist.len(), 1);
        assert_eq!(c.sip.listen.port(), 5060);
    }

    #[test]
    fn recording_format_is_read_and_an_unknown_one_names_its_line() {
        use crate::media::recorder::RecordingFormat;
        let base = "[sip]\nlisten = \"127.0.0.1:5060\"\n";
        let at = |extra: &str| Config::from_str_at(&format!("{base}{extra}"), Path::new("x.toml"));
        assert_eq!(at("").unwrap().recording.format, RecordingFormat::Pcm16);
        for f in RecordingFormat::ALL {
            let c = at(&format!("[recording]\nformat = \"{}\"\n", f.name())).unwrap();
            assert_eq!(c.recording.format, f);
        }
        let msg = at("[recording]\nenabled = true\nformat = \"mp3\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("x.toml"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("format"), "{msg}");
        assert!(
            msg.contains("pcm16") && msg.contains("alaw") && msg.contains("opus"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_key_names_line() {
        let text = "[sip]\nlisten = \"127.0.0.1:5060\"\nlisen = 1\n";
        let err = Config::from_str_at(text, Path::new("x.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("lisen"), "{msg}");
    }

    #[test]
    fn semantic_errors_name_file_line_and_key() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"

[[agent]]
user = "1001"
password = "x"

[[did]]
number = "12345"
agents = ["1001", "9999"]
"#;
        let err = Config::from_str_at(text, Path::new("h.toml")).unwrap_err();
        let ConfigError::Invalid(list) = err else {
            panic!("expected semantic error")
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].key, "did[0].agents[1]");
        assert_eq!(list[0].line, Some(10));
        assert_eq!(
            list[0].to_string(),
            "h.toml:10: did[0].agents[1]: no agent \"9999\""
        );
    }

    #[test]
    fn a_tls_trunk_needs_a_proxy_and_our_tls_transport() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"
[[trunk]]
name = "carrier"
transport = "tls"
srtp = "required"
"#;
        let err = Config::from_str_at(text, Path::new("h.toml")).unwrap_err();
        let ConfigError::Invalid(list) = err else {
            panic!("expected semantic error")
        };
        let keys: Vec<_> = list.iter().map(|i| i.to_string()).collect();
        assert_eq!(list.len(), 2, "{keys:?}");
        assert!(keys[0].contains("trunk[0].transport") && keys[0].contains("proxy"));
        assert!(keys[1].contains("[sip] transports"), "{keys:?}");
        // An unknown SRTP mode is a parse error naming the value.
        let bad = "[sip]\nlisten = \"127.0.0.1:5060\"\n[media]\nsrtp_agents = \"sometimes\"\n";
        let err = Config::from_str_at(bad, Path::new("h.toml")).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn all_errors_reported_at_once() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"
[media]
address = "127.0.0.1"
rtp_port_min = 100
rtp_port_max = 50
rtp_timeout_secs = 1
codecs = ["G729"]
[[trunk]]
name = "a"
backup = "nope"
"#;
        let ConfigError::Invalid(list) =
            Config::from_str_at(text, Path::new("h.toml")).unwrap_err()
        else {
            panic!()
        };
        let keys: Vec<_> = list.iter().map(|i| i.key.as_str()).collect();
        assert!(keys.contains(&"media.rtp_port_max"));
        assert!(keys.contains(&"media.rtp_port_min"));
        assert!(keys.contains(&"media.codecs[0]"));
        assert!(keys.contains(&"trunk[0].backup"));
        let backup = list.iter().find(|i| i.key == "trunk[0].backup").unwrap();
        assert_eq!(backup.line, Some(11));
    }

    #[test]
    fn acd_sections_parse_and_cross_references_are_checked() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"
[[group]]
id = "general"
overflow_after_secs = 60
overflow_to = "nowhere"
[[agent]]
user = "1001"
password = "x"
job_number = "A01"
skills = { general = 5, complaints = 11 }
[[did]]
number = "12345"
queue = "general"
priority = 9
"#;
        let ConfigError::Invalid(list) =
            Config::from_str_at(text, Path::new("h.toml")).unwrap_err()
        else {
            panic!()
        };
        let msgs: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert!(
            msgs.contains(&"h.toml:6: group[0].overflow_to: no group \"nowhere\"".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("agent[0].skills.complaints: no group")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("skill level 11 is outside 1..=10")),
            "{msgs:?}"
        );

        let bad_key = "[sip]\nlisten = \"127.0.0.1:5060\"\n[[agent]]\nuser = \"1\"\npassword = \"x\"\nskils = {}\n";
        let err = Config::from_str_at(bad_key, Path::new("h.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("skils"), "{err}");
    }

    #[test]
    fn the_acd_day_follows_its_own_offset_or_the_recording_one() {
        let base = "[sip]\nlisten = \"127.0.0.1:5060\"\n";
        let at = |extra: &str| Config::from_str_at(&format!("{base}{extra}"), Path::new("h.toml"));
        assert_eq!(at("").unwrap().acd_utc_offset_minutes(), 480);
        let c = at("[recording]\nutc_offset_minutes = -300\n").unwrap();
        assert_eq!(c.acd_utc_offset_minutes(), -300);
        let c =
            at("[recording]\nutc_offset_minutes = -300\n[acd]\nutc_offset_minutes = 0\n").unwrap();
        assert_eq!(c.acd_utc_offset_minutes(), 0);
        let err = at("[acd]\nutc_offset_minutes = 900\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h.toml:4: acd.utc_offset_minutes: 900 is outside -720..=840"),
            "{err}"
        );
    }

    #[test]
    fn a_store_url_that_is_not_postgres_is_refused_with_its_line() {
        let text = "[sip]\nlisten = \"127.0.0.1:5060\"\n[store]\nurl = \"mysql://db/h\"\n";
        let err = Config::from_str_at(text, Path::new("h.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h.toml:4: store.url: must be a PostgreSQL URL"),
            "{err}"
        );
        let ok =
            "[sip]\nlisten = \"127.0.0.1:5060\"\n[store]\nurl = \"postgres://h@127.0.0.1/h\"\n";
        let c = Config::from_str_at(ok, Path::new("h.toml")).unwrap();
        assert_eq!(c.store.url.as_deref(), Some("postgres://h@127.0.0.1/h"));
    }

    #[test]
    fn one_acd_over_nats_needs_the_shared_store_and_a_nats_url() {
        let lone =
            "[sip]\nlisten = \"127.0.0.1:5060\"\n[store]\nnats = \"nats://127.0.0.1:4222\"\n";
        let err = Config::from_str_at(lone, Path::new("h.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "h.toml:4: store.nats: one ACD for several nodes needs their shared store"
            ),
            "{err}"
        );
        let wrong = "[sip]\nlisten = \"127.0.0.1:5060\"\n[store]\nurl = \"postgres://h@127.0.0.1/h\"\nnats = \"127.0.0.1:4222\"\n";
        let err = Config::from_str_at(wrong, Path::new("h.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("h.toml:5: store.nats: must be nats://host:port"),
            "{err}"
        );
        let ok = "[sip]\nlisten = \"127.0.0.1:5060\"\n[store]\nurl = \"postgres://h@127.0.0.1/h\"\nnats = \"nats://127.0.0.1:4222\"\n";
        let built = Config::from_str_at(ok, Path::new("h.toml"));
        if cfg!(feature = "nats") {
            let c = built.expect("accepted with the nats feature");
            assert_eq!(c.store.nats.as_deref(), Some("nats://127.0.0.1:4222"));
        } else {
            let e = built
                .expect_err("refused without the nats feature")
                .to_string();
            assert!(e.contains("built without the nats feature"), "{e}");
        }
    }

    #[test]
    fn a_priority_boost_into_the_emergency_lane_is_refused() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"
[[group]]
id = "general"
priority_boost = [[30, 5], [60, 200]]
[[did]]
number = "12345"
queue = "general"
priority = 255
"#;
        let ConfigError::Invalid(list) =
            Config::from_str_at(text, Path::new("h.toml")).unwrap_err()
        else {
            panic!()
        };
        let msgs: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "h.toml:5: group[0].priority_boost[1]: priority 200 is in the emergency lane (200-255): a boost stays within 0-199"
                    .to_string()
            ],
            "the emergency number itself (priority 255) is fine"
        );
        let fine = text.replace("[60, 200]", "[60, 199]");
        assert!(Config::from_str_at(&fine, Path::new("h.toml")).is_ok());
    }

    #[test]
    fn trunk_chain_follows_backups_without_loops() {
        let text = r#"[sip]
listen = "127.0.0.1:5060"
[[trunk]]
name = "a"
backup = "b"
[[trunk]]
name = "b"
backup = "a"
"#;
        let c = Config::from_str_at(text, Path::new("h.toml")).unwrap();
        let names: Vec<_> = c.trunk_chain("a").iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_run_time_check_names_agents_and_groups_and_job_numbers_are_unique() {
        let text = "[sip]\nlisten = \"127.0.0.1:5060\"\n\n[[group]]\nid = \"g\"\n\n[[agent]]\nuser = \"1001\"\npassword = \"x\"\nskills = { g = 3 }\n";
        let mut c = Config::from_str_at(text, Path::new("h.toml")).unwrap();
        assert_eq!(c.check(), Ok(()));
        let mut twin = c.agents[0].clone();
        twin.user = "1002".into();
        twin.job_number = Some("1001".into());
        twin.skills.insert("nowhere".into(), 11);
        c.agents.push(twin);
        let problems = c.check().unwrap_err();
        assert!(
            problems.contains(
                &"agent \"1002\" job_number: job number \"1001\" is used by two agents".to_string()
            ),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("agent \"1002\" skills.nowhere: no group")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("outside 1..=10")),
            "{problems:?}"
        );
    }

    #[test]
    fn caps_and_the_user_lockout_parse_and_a_lockout_must_end() {
        let text = "[sip]\nlisten = \"127.0.0.1:5060\"\n[registrar]\nuser_lockout_secs = 0\n[[trunk]]\nname = \"a\"\nmax_calls = 30\nmax_cps = 5\n[[tenant]]\nid = \"city\"\nmax_calls = 60\n";
        let ConfigError::Invalid(list) =
            Config::from_str_at(text, Path::new("h.toml")).unwrap_err()
        else {
            panic!()
        };
        let got: Vec<_> = list.iter().map(|i| (i.key.clone(), i.line)).collect();
        assert_eq!(got, [("registrar.user_lockout_secs".to_string(), Some(4))]);
        let c = Config::from_str_at(
            &text.replace("user_lockout_secs = 0", "user_failures_before_lockout = 0"),
            Path::new("h.toml"),
        )
        .unwrap();
        assert_eq!((c.trunks[0].max_calls, c.trunks[0].max_cps), (30, 5));
        assert_eq!((c.tenants[0].max_calls, c.tenants[0].max_cps), (60, 0));
        let r = RegistrarConfig::default();
        assert_eq!(
            (r.user_failures_before_lockout, r.user_lockout_secs),
            (20, 300)
        );
    }

    #[test]
    fn digest_settings_are_checked_per_agent() {
        let sha = "a".repeat(64);
        let md5 = "b".repeat(32);
        let text = format!(
            r#"[sip]
listen = "127.0.0.1:5060"
[registrar]
digest_algorithms = ["MD5"]
digest_challenge = "both"
[[agent]]
user = "1001"
password = "x"
digest_algorithm = "SHA-512"
[[agent]]
user = "1002"
password = "x"
digest_algorithm = "SHA-256"
[[agent]]
user = "1003"
ha1_sha256 = "{sha}"
[[agent]]
user = "1004"
ha1_md5 = "{md5}"
digest_algorithm = "MD5"
"#
        );
        let ConfigError::Invalid(list) =
            Config::from_str_at(&text, Path::new("h.toml")).unwrap_err()
        else {
            panic!()
        };
        let got: Vec<(String, Option<usize>)> =
            list.iter().map(|i| (i.key.clone(), i.line)).collect();
        assert_eq!(
            got,
            vec![
                ("registrar.digest_challenge".to_string(), Some(5)),
                ("agent[0].digest_algorithm".to_string(), Some(9)),
                ("agent[1].digest_algorithm".to_string(), Some(13)),
                ("agent[2].user".to_string(), Some(15)),
            ],
            "{list:?}"
        );
        // With SHA-256 in use, the same agents are fine (but for 1001's
        // unknown algorithm), and 1004's MD5 setting needs its MD5 hash.
        let fixed = text
            .replace("[\"MD5\"]", "[\"MD5\", \"SHA-256\"]")
            .replace("\"both\"", "\"multiple\"")
            .replace("\"SHA-512\"", "\"MD5\"");
        let c = Config::from_str_at(&fixed, Path::new("h.toml")).unwrap();
        assert_eq!(c.agents[1].digest_algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(RegistrarConfig::default().digest_challenge, "single");
        assert_eq!(
            RegistrarConfig::default().digest_algorithms,
            ["MD5", "SHA-256"]
        );
    }
}
