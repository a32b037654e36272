//! A real soft-phone for tests: Debian's baresip 1.0 as an agent, with its
//! own config directory, sending a WAV file and dumping what it decodes;
//! over UDP, or over TLS checking hotline's certificate against a CA file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One agent (1501, job number A1501, auto-login) in group `general`, which
/// number 12399 queues for: what a baresip test phone signs in as.
pub const QUEUED_AGENT: &str = r#"
[[group]]
id = "general"
ring_timeout_secs = 10
acw_secs = 1

[[agent]]
user = "1501"
password = "pass1501"
job_number = "A1501"
skills = { general = 5 }
auto_login = true

[[did]]
number = "12399"
queue = "general"
"#;

/// The UDP port of baresip's console (`cons.so`), on its SIP address.
const CONSOLE_PORT: u16 = 5555;

/// How a [`Baresip`] runs beyond the defaults (UDP, registered, plain RTP).
pub struct Options<'a> {
    /// Over TLS to `registrar:5061`, checking hotline's certificate
    /// against this CA file.
    pub tls_ca: Option<&'a Path>,
    /// baresip's media encryption (`srtp`: best effort, `srtp-mand`:
    /// RTP/SAVP only).
    pub mediaenc: Option<&'a str>,
    /// Register (an agent) or not (a carrier's caller).
    pub register: bool,
    /// Dial this SIP URI at start (a caller).
    pub dial: Option<&'a str>,
    /// Take menu commands (`/transfer …`) on UDP `bind:5555`
    /// ([`Baresip::command`]), as a person's keys on the phone.
    pub console: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            tls_ca: None,
            mediaenc: None,
            register: true,
            dial: None,
            console: false,
        }
    }
}

/// baresip with its own config directory, stopped by PID when dropped
/// (also when the test panics).
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
}

impl Baresip {
    /// Start baresip as agent `user` (password `pass<user>`) bound to
    /// `bind`, registering at `registrar` (an IP address), sending
    /// `source` (a WAV file) and dumping what it hears under its directory.
    pub fn start(user: &str, bind: &str, registrar: &str, source: &Path) -> Self {
        Self::start_with(user, bind, registrar, source, None)
    }

    /// As [`Baresip::start`], over TLS to `registrar:5061` when `tls_ca`
    /// names the CA file that hotline's certificate must chain to.
    pub fn start_with(
        user: &str,
        bind: &str,
        registrar: &str,
        source: &Path,
        tls_ca: Option<&Path>,
    ) -> Self {
        Self::start_opts(
            user,
            bind,
            registrar,
            source,
            &Options {
                tls_ca,
                ..Options::default()
            },
        )
    }

    /// As [`Baresip::start`], with `options`.
    pub fn start_opts(
        user: &str,
        bind: &str,
        registrar: &str,
        source: &Path,
        options: &Options<'_>,
    ) -> Self {
        let tls_ca = options.tls_ca;
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = dir.path().join("dump");
        std::fs::create_dir(&dump).expect("dump dir");
        // baresip 1.0: `aufile` is a source only; `sndfile` writes the
        // encoded and decoded audio of each call to WAV files; `aubridge`
        // stands in for a sound card; `menu` answers `answermode=auto` calls.
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t{bind}:5060\n\
             call_local_timeout\t120\n\
             audio_player\taubridge,nil\n\
             audio_source\taufile,{source}\n\
             audio_alert\taubridge,nil\n\
             ausrc_format\ts16\n\
             auplay_format\ts16\n\
             auenc_format\ts16\n\
             audec_format\ts16\n\
             jitter_buffer_delay\t5-10\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\tg711.so\n\
             module\taufile.so\n\
             module\taubridge.so\n\
             module\tsndfile.so\n\
             module\tsrtp.so\n\
             module_tmp\taccount.so\n\
             module_app\tmenu.so\n\
             snd_path\t{dump}\n\
             {console}\
             {ca}",
            source = source.display(),
            dump = dump.display(),
            console = if options.console {
                format!("module\tcons.so\ncons_listen\t{bind}:{CONSOLE_PORT}\n")
            } else {
                String::new()
            },
            ca = tls_ca.map_or(String::new(), |ca| format!(
                "sip_cafile\t{}\n",
                ca.display()
            )),
        );
        let registrar = match tls_ca {
            Some(_) => format!("{registrar}:5061;transport=tls"),
            None => registrar.to_string(),
        };
        std::fs::write(dir.path().join("config"), config).expect("baresip config");
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "<sip:{user}@{registrar}>;auth_pass=pass{user};answermode=auto;\
                 audio_codecs=PCMA,PCMU;regint={regint}{mediaenc}\n",
                regint = if options.register { 600 } else { 0 },
                mediaenc = options
                    .mediaenc
                    .map_or(String::new(), |m| format!(";mediaenc={m}")),
            ),
        )
        .expect("baresip accounts");
        let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log");
        let mut command = Command::new("baresip");
        command.arg("-f").arg(dir.path());
        if let Some(uri) = options.dial {
            command.arg("-e").arg(format!("/dial {uri}"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("baresip is installed (scripts/test installs Debian's baresip)");
        Self { child, dir }
    }

    /// Type menu command `cmd` (e.g. `/transfer sip:2002@…`) on the
    /// console of a baresip started with [`Options::console`] at `bind`.
    pub fn command(&self, bind: &str, cmd: &str) {
        let sock = std::net::UdpSocket::bind(format!("{bind}:0")).expect("console socket");
        sock.send_to(
            format!("{cmd}\n").as_bytes(),
            format!("{bind}:{CONSOLE_PORT}"),
        )
        .expect("console command");
    }

    /// What baresip logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// The WAV file baresip wrote of the audio it decoded, once complete.
    pub fn heard(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path().join("dump"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        if std::thread::panicking() {
            eprintln!("--- baresip log ---\n{}", self.log());
        }
    }
}

/// A 8 kHz mono WAV of a `hz` sine, `secs` long (baresip 1.0 hangs up
/// when its source file ends, so the file outlasts the call).
pub fn write_tone(path: &Path, hz: f64, secs: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("tone wav");
    for n in 0..secs * 8000 {
        let t = f64::from(n) / 8000.0;
        let s = (2.0 * std::f64::consts::PI * hz * t).sin() * 8000.0;
        w.write_sample(s as i16).expect("tone sample");
    }
    w.finalize().expect("tone wav");
}

/// Samples of a WAV file, or `None` while it is incomplete.
pub fn samples(path: &Path) -> Option<(u16, Vec<i16>)> {
    let mut r = hound::WavReader::open(path).ok()?;
    let channels = r.spec().channels;
    let s: Result<Vec<i16>, _> = r.samples::<i16>().collect();
    s.ok().filter(|s| !s.is_empty()).map(|s| (channels, s))
}
