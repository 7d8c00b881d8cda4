//! TLS trust shared by every client nodal opens (S3, the coordinator's
//! object proxy, RabbitMQ): extra CA certificates from a PEM file, checked
//! once with an error naming the file, and recognising a refused server
//! certificate in an error chain so that it is reported as such (and not
//! retried as if it were a network hiccup).

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;
use std::path::{Path, PathBuf};

/// CA certificates read from a PEM file, each checked to be usable as a
/// trust anchor.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificates {
    path: PathBuf,
    pem: Vec<u8>,
    count: usize,
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaCertificates")
            .field("path", &self.path)
            .field("certificates", &self.count)
            .finish()
    }
}

/// Why a CA file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CA file {path}: {message}")]
pub struct CaFileError {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl CaCertificates {
    /// Read `path`: one or more `-----BEGIN CERTIFICATE-----` blocks. A file
    /// that cannot be read, holds no certificate, or holds one that is not a
    /// usable CA certificate is an error naming the file (and the block).
    pub fn load(path: &Path) -> Result<Self, CaFileError> {
        let bad = |message: String| CaFileError {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        Self::from_pem(path, pem).map_err(bad)
    }

    fn from_pem(path: &Path, pem: Vec<u8>) -> Result<Self, String> {
        let ders = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM file: {e}"))?;
        if ders.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        for (i, der) in ders.iter().enumerate() {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(der.clone())
                .map_err(|e| format!("certificate #{} is not usable as a CA: {e}", i + 1))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            pem,
            count: ders.len(),
        })
    }

    /// The file the certificates came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PEM text, as read.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// How many certificates the file holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Never true for a loaded file (loading refuses an empty one).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The server-certificate failure somewhere in `err`'s chain of causes, as
/// one line (e.g. `invalid peer certificate: UnknownIssuer`), or `None` when
/// the failure is something else.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(found) = rustls_certificate_error(e) {
            return Some(found);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = rustls_certificate_error(inner)
        {
            return Some(found);
        }
        let text = e.to_string();
        if text.contains("invalid peer certificate") {
            return Some(text);
        }
        next = e.source();
    }
    None
}

fn rustls_certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    match e.downcast_ref::<rustls::Error>()? {
        tls @ rustls::Error::InvalidCertificate(_) => Some(tls.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = CaCertificates::load(&missing).unwrap_err();
        assert!(
            err.to_string().contains("missing.pem") && err.message.contains("cannot be read"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let err = CaCertificates::load(&empty).unwrap_err();
        assert!(err.message.contains("no PEM certificate"), "{err}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = CaCertificates::load(&garbage).unwrap_err();
        assert!(err.message.contains("certificate #1"), "{err}");
    }

    #[test]
    fn certificate_errors_are_found_in_a_chain() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let found = certificate_problem(&io).unwrap();
        assert!(found.contains("UnknownIssuer"), "{found}");
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(certificate_problem(&other), None);
    }
}

/// How an HTTP client of nodal's (the store proxy client, the API client)
/// connects: timeouts and which certificates it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: std::time::Duration,
    /// Time allowed for one request.
    pub request_timeout: std::time::Duration,
    /// PEM file of CA certificates to trust besides the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Trust only the certificates of `ca_file`.
    pub ca_only: bool,
}

/// The HTTP client `settings` describe; the error says what is wrong
/// (a CA file that does not load, `ca_only` without a CA file).
pub fn http_client(settings: &HttpClientSettings) -> Result<reqwest::Client, String> {
    if settings.ca_only && settings.ca_file.is_none() {
        return Err("trusting only the CA file needs a CA file".into());
    }
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!("nodal/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &settings.ca_file {
        let ca = CaCertificates::load(path).map_err(|e| e.to_string())?;
        let certificates = reqwest::Certificate::from_pem_bundle(ca.pem())
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
        builder = builder.tls_built_in_root_certs(!settings.ca_only);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
