//! `[media]` (RTP ports, codecs, prompts, SRTP toward agents, the media
//! IO workers and their overload limit) and `[recording]` (whether, where
//! and in which format calls are recorded, and the key at rest).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::SrtpMode;

/// `[media]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Address RTP sockets bind to and SDP advertises.
    pub address: IpAddr,
    /// First RTP port (even).
    pub rtp_port_min: u16,
    /// Last RTP port.
    pub rtp_port_max: u16,
    /// A call whose RTP stops for this long is cleared (0 = never).
    pub rtp_timeout_secs: u64,
    /// Codec preference for our offers: "PCMA", "PCMU".
    pub codecs: Vec<String>,
    /// Directory of prompts and music on hold (relative to the working
    /// directory).
    #[serde(default = "default_sounds_dir")]
    pub sounds_dir: PathBuf,
    /// Play `moh` from `sounds_dir` to a caller the agent puts on hold.
    #[serde(default = "default_true")]
    pub music_on_hold: bool,
    /// SRTP (SDES) in our offers to agents' and supervisors' phones.
    #[serde(default)]
    pub srtp_agents: SrtpMode,
    /// Media IO worker threads serving connected calls (0: one per core,
    /// at most 8).
    #[serde(default)]
    pub io_workers: usize,
    /// How long a media IO worker lets datagrams gather before it reads
    /// them again after a busy pass, in microseconds (0: read at once).
    /// Fewer wake-ups under load for at most this much added delay.
    #[serde(default = "default_io_coalesce_us")]
    pub io_coalesce_us: u64,
    /// New calls get 503 while the busiest media IO worker ran on a core
    /// this share of the last second, in percent, or at least half of its
    /// 20 ms ticks ran a whole tick late (0: never).
    #[serde(default = "default_overload_percent")]
    pub overload_percent: u32,
}

fn default_overload_percent() -> u32 {
    90
}

fn default_io_coalesce_us() -> u64 {
    0
}

fn default_true() -> bool {
    true
}

fn default_sounds_dir() -> PathBuf {
    PathBuf::from("./sounds")
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            rtp_timeout_secs: 60,
            codecs: vec!["PCMA".into(), "PCMU".into()],
            sounds_dir: default_sounds_dir(),
            music_on_hold: true,
            srtp_agents: SrtpMode::Off,
            io_workers: 0,
            io_coalesce_us: default_io_coalesce_us(),
            overload_percent: default_overload_percent(),
        }
    }
}

/// `[recording]`: every bridged call as one stereo file (caller left, agent
/// right), WAV or Ogg Opus by `format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Record calls.
    pub enabled: bool,
    /// Root directory; default `<data.dir>/recordings`.
    pub dir: Option<PathBuf>,
    /// Local time offset for the date folders (China Standard Time: 480).
    pub utc_offset_minutes: i32,
    /// Encrypt recordings and voicemails at rest with the key in this file
    /// (64 hex digits; `hotline keygen --out FILE`). Unset: plain files.
    pub encryption_key_file: Option<PathBuf>,
    /// How calls are stored (issue 16 item 3): `pcm16` (WAV, 16-bit
    /// linear), `alaw` (WAV, G.711 A-law, half the bytes) or `opus` (Ogg
    /// Opus, about a tenth: the archive format). Voicemails stay PCM16.
    pub format: crate::media::recorder::RecordingFormat,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: None,
            utc_offset_minutes: 480,
            encryption_key_file: None,
            format: crate::media::recorder::RecordingFormat::Pcm16,
        }
    }
}
