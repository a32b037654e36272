//! `[sip]` (transports, TLS address, `[sip.flood]` limits) and `[http]`:
//! where hotline listens and what one source may send it.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

/// A SIP transport we listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 3261 §18 over UDP.
    Udp,
    /// RFC 3261 §18 over TCP, framed by Content-Length.
    Tcp,
    /// RFC 3261 §26.2 over TLS (on `tls_listen`, certificate from `[tls]`).
    Tls,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// Address for all SIP transports.
    pub listen: SocketAddr,
    /// Transports to open on `listen`.
    #[serde(default = "default_transports")]
    pub transports: Vec<Transport>,
    /// Digest realm for agents.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// User-Agent / Server header value.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Kernel buffer asked for the SIP UDP socket, in bytes.
    #[serde(default = "default_udp_buffer")]
    pub udp_buffer_bytes: usize,
    /// Address of SIP over TLS (default: `listen`'s address, port 5061).
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    /// Per-source flood limits (`[sip.flood]`).
    #[serde(default)]
    pub flood: FloodConfig,
}

impl SipConfig {
    /// Where SIP over TLS listens: `tls_listen`, else `listen` on 5061.
    pub fn tls_listen(&self) -> SocketAddr {
        self.tls_listen
            .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), 5061))
    }
}

/// `[sip.flood]`: what one source address may send before it is banned
/// (issue 14 §5). Trunks' `inbound_cidrs` are always exempt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodConfig {
    /// SIP messages per second one address may send on average (0 = no
    /// limit).
    #[serde(default = "default_flood_rate")]
    pub rate: u32,
    /// Messages one address may send at once after a quiet spell.
    #[serde(default = "default_flood_burst")]
    pub burst: u32,
    /// Seconds a flooding address is ignored.
    #[serde(default = "default_flood_ban")]
    pub ban_secs: u64,
    /// Further addresses never limited (an SBC in front of the agents).
    #[serde(default)]
    pub exempt: Vec<IpNet>,
    /// SIP TCP connections one address may hold at once.
    #[serde(default = "default_tcp_per_source")]
    pub tcp_connections_per_source: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self {
            rate: default_flood_rate(),
            burst: default_flood_burst(),
            ban_secs: default_flood_ban(),
            exempt: Vec::new(),
            tcp_connections_per_source: default_tcp_per_source(),
        }
    }
}

fn default_flood_rate() -> u32 {
    50
}
fn default_flood_burst() -> u32 {
    200
}
fn default_flood_ban() -> u64 {
    60
}
fn default_tcp_per_source() -> usize {
    256
}

fn default_udp_buffer() -> usize {
    4 * 1024 * 1024
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Udp, Transport::Tcp]
}
fn default_realm() -> String {
    "hotline.local".into()
}
fn default_user_agent() -> String {
    format!("hotline/{}", env!("CARGO_PKG_VERSION"))
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP API.
    pub listen: SocketAddr,
    /// The reference pages (phone bar, wall-board) served under `/web/`.
    #[serde(default = "default_web_dir")]
    pub web_dir: PathBuf,
    /// Web origins (`https://tickets.example.gov.cn`) whose pages may call
    /// the API from a browser (CORS); none by default. Credentials travel
    /// in the `Authorization` header, never in cookies, so an allowed
    /// origin still needs a token.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Serve HTTPS (with the `[tls]` certificate) instead of HTTP.
    #[serde(default)]
    pub tls: bool,
}

/// A web origin as browsers send it (RFC 6454 §6.2): `scheme://host` or
/// `scheme://host:port`, http or https, no path, no wildcard.
pub fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (rest, None),
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0))
}

fn default_web_dir() -> PathBuf {
    PathBuf::from("./web")
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_dir: default_web_dir(),
            cors_origins: Vec::new(),
            tls: false,
        }
    }
}
