//! `[tls]`: the certificate hotline serves SIP over TLS (RFC 3261 §26.2,
//! RFC 5630) and HTTPS with (issue 14 §4), and optionally the CA whose
//! client certificates it verifies (mutual TLS for trunks' SBCs); and the
//! client side for trunks dialled over TLS (`trunk_client_config`: their
//! CA or the system's roots via `rustls-native-certs`, our certificate as
//! the client's).
//!
//! rustls (with the process-wide ring provider `main` installs) builds the
//! server configuration; certificates and keys are PEM files read with
//! `rustls-pki-types`' PEM reader. One certificate is served whatever SNI
//! name a client asks for: a switch has one identity per deployment.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `[tls]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain (the server's certificate first).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates: clients presenting a certificate must chain to
    /// one of them (trunks' SBCs with mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Refuse TLS clients without such a certificate (agents' phones
    /// usually have none: leave off unless only SBCs connect).
    #[serde(default)]
    pub require_client_cert: bool,
}

/// Why the TLS configuration cannot be used; names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("[tls] cert_file {path}: {reason}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("[tls] key_file {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The client CA file is unusable.
    #[error("[tls] client_ca_file {path}: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A trunk's TLS settings are unusable.
    #[error("trunk {trunk:?}: {reason}")]
    Trunk {
        /// The trunk.
        trunk: String,
        /// What is wrong (naming the file or the name).
        reason: String,
    },
    /// rustls refused the combination (e.g. the key does not match).
    #[error("[tls] cert_file {cert} with key_file {key}: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' words.
        reason: String,
    },
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("holds no PEM CERTIFICATE".into());
    }
    Ok(certs)
}

impl TlsSettings {
    /// A rustls server configuration offering `alpn` protocols (e.g.
    /// `http/1.1` for HTTPS, none for SIP).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let chain = certificates(&self.cert_file).map_err(|reason| TlsError::Cert {
            path: self.cert_file.clone(),
            reason,
        })?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::Key {
            path: self.key_file.clone(),
            reason: e.to_string(),
        })?;
        let builder = rustls::ServerConfig::builder();
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let ca_error = |reason: String| TlsError::ClientCa {
                    path: path.clone(),
                    reason,
                };
                let mut roots = rustls::RootCertStore::empty();
                for cert in certificates(path).map_err(ca_error)? {
                    roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots));
                let verifier = if self.require_client_cert {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| ca_error(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Pair {
                cert: self.cert_file.clone(),
                key: self.key_file.clone(),
                reason: e.to_string(),
            })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration for SIP over TLS to the trunk `trunk`:
/// its certificate checked against `ca_file` (or the system's roots), and
/// `ours` (the `[tls]` certificate, if any) presented as our client
/// certificate.
pub fn trunk_client_config(
    trunk: &str,
    ca_file: Option<&Path>,
    ours: Option<&TlsSettings>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let fail = |reason: String| TlsError::Trunk {
        trunk: trunk.to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = certificates(path)
                .map_err(|r| fail(format!("tls_ca_file {}: {r}", path.display())))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                roots.add(cert).ok();
            }
            if roots.is_empty() {
                return Err(fail(
                    "no tls_ca_file and no system CA certificates to check the carrier's certificate"
                        .into(),
                ));
            }
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match ours {
        None => builder.with_no_client_auth(),
        Some(t) => {
            let chain = certificates(&t.cert_file).map_err(|reason| TlsError::Cert {
                path: t.cert_file.clone(),
                reason,
            })?;
            let key = PrivateKeyDer::from_pem_file(&t.key_file).map_err(|e| TlsError::Key {
                path: t.key_file.clone(),
                reason: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Pair {
                    cert: t.cert_file.clone(),
                    key: t.key_file.clone(),
                    reason: e.to_string(),
                })?
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            client_ca_file: None,
            require_client_cert: false,
        }
    }

    #[test]
    fn missing_or_empty_files_name_the_file() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let err = settings(dir.path())
            .server_config(&[])
            .expect_err("no files");
        assert!(err.to_string().contains("cert.pem"), "{err}");
        std::fs::write(dir.path().join("cert.pem"), "not pem").expect("write");
        let err = settings(dir.path())
            .server_config(&[])
            .expect_err("no certificate");
        assert!(
            err.to_string().contains("holds no PEM CERTIFICATE"),
            "{err}"
        );
    }
}
