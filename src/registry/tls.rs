//! TLS for registries: the system's roots, each registry's own CAs and client certificate
//! from `certs.d/HOST[:PORT]` (or `--cert-dir`), read as Docker and skopeo read them.
//!
//! - Roots: `$SSL_CERT_FILE` if set, else `/etc/ssl/certs/ca-certificates.crt`; without
//!   either, the Mozilla roots built into the client (webpki-roots), which a registry's own
//!   CAs then replace rather than join.
//! - A registry's directory: [`ClientOptions::cert_dir`] if given, else every one of
//!   `/etc/docker/certs.d/HOST[:PORT]`, `/etc/containers/certs.d/HOST[:PORT]` and
//!   `~/.docker/certs.d/HOST[:PORT]` that exists. In it, `*.crt` files are CAs (PEM) and a
//!   `NAME.cert` with its `NAME.key` is a client certificate; the first pair by name is
//!   used (Go, which Docker is written in, also presents the first).
//!
//! One difference from Docker: the server's certificate must not itself be a CA
//! certificate. `openssl req -x509` makes one (`CA:TRUE`) that Go accepts as a server's own
//! when it is also the root trusted; rustls refuses it (`CaUsedAsEndEntity`). Sign a server
//! certificate with the CA instead, or use `--tls-verify=false`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::client::ClientOptions;
use crate::error::{Error, Result};

/// Debian's (and Ubuntu's, Alpine's) bundle of the system's roots.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The system-wide `certs.d` directories, as Docker and containers/image read them.
const CERTS_D: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];
/// The largest certificate file read.
const FILE_BYTES: u64 = 16 << 20;

/// The system's roots, parsed once for a client: `None` when there is no bundle.
pub(super) fn system_roots() -> Result<Option<Arc<Vec<Certificate<'static>>>>> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE));
    if !path.is_file() {
        return Ok(None);
    }
    let certs = certificates(&path)?;
    Ok(Some(Arc::new(certs)))
}

/// The directories holding `registry`'s CAs and client certificates.
fn directories(options: &ClientOptions, registry: &str) -> Vec<PathBuf> {
    if let Some(dir) = &options.cert_dir {
        return vec![dir.clone()];
    }
    // A registry name is a host with an optional port: never a path.
    if registry.is_empty() || registry.contains(['/', '\\']) || registry == "." || registry == ".."
    {
        return Vec::new();
    }
    let mut dirs: Vec<PathBuf> = CERTS_D
        .iter()
        .map(|d| Path::new(d).join(registry))
        .collect();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(&home).join(".docker/certs.d").join(registry));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// The TLS configuration for a registry: roots (the system's and its own CAs), its
/// client certificate if it has one, and whether certificates are verified.
///
/// `names` are the names its directories may have (`docker.io` and its API host).
pub(super) fn config(
    options: &ClientOptions,
    system: Option<&Arc<Vec<Certificate<'static>>>>,
    names: &[&str],
) -> Result<TlsConfig> {
    let mut cas = Vec::new();
    let mut client = None;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for name in names {
        for dir in directories(options, name) {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for dir in &dirs {
        let (found, pair) = read_directory(dir)?;
        cas.extend(found);
        if client.is_none() {
            client = pair;
        }
    }
    let roots = match (system, cas.is_empty()) {
        (Some(system), true) => RootCerts::Specific(Arc::clone(system)),
        (Some(system), false) => {
            let mut all: Vec<Certificate<'static>> = system.as_ref().clone();
            all.extend(cas);
            RootCerts::from(all)
        }
        (None, true) => RootCerts::WebPki,
        (None, false) => RootCerts::from(cas),
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .disable_verification(!options.tls_verify)
        .build())
}

/// The CAs (`*.crt`) and the first client pair (`*.cert` + `*.key`) of a directory.
fn read_directory(dir: &Path) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(Error::io(format!("reading `{}`", dir.display()), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading `{}`", dir.display()), e))?;
        names.push(entry.path());
    }
    names.sort();
    let ext = |p: &Path| p.extension().and_then(|e| e.to_str()).map(str::to_owned);
    let mut cas = Vec::new();
    let mut client = None;
    for path in &names {
        match ext(path).as_deref() {
            Some("crt") => cas.extend(certificates(path)?),
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.is_file() {
                    return Err(invalid(
                        path,
                        format!(
                            "missing key `{}` for this client certificate",
                            key.display()
                        ),
                    ));
                }
                if client.is_none() {
                    client = Some(client_cert(path, &key)?);
                }
            }
            Some("key") => {
                let cert = path.with_extension("cert");
                if !cert.is_file() {
                    return Err(invalid(
                        path,
                        format!(
                            "missing client certificate `{}` for this key",
                            cert.display()
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    Ok((cas, client))
}

/// An error about a certificate file's contents.
fn invalid(path: &Path, reason: String) -> Error {
    Error::io(
        format!("reading TLS file `{}`", path.display()),
        io::Error::new(io::ErrorKind::InvalidData, reason),
    )
}

fn read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(path)
        .map_err(|e| Error::io(format!("opening TLS file `{}`", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("reading TLS file `{}`", path.display()), e))?;
    Ok(bytes)
}

/// The PEM certificates of a file (other PEM items skipped); at least one.
fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(invalid(path, format!("bad PEM: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(invalid(path, "no PEM certificate in the file".to_owned()));
    }
    Ok(certs)
}

/// A client certificate chain and its key, checked to belong together (a pair that does
/// not would make the TLS library panic at the handshake).
fn client_cert(cert: &Path, key: &Path) -> Result<ClientCert> {
    let chain = certificates(cert)?;
    let key_bytes = read(key)?;
    let private = PrivateKey::from_pem(&key_bytes)
        .map_err(|e| invalid(key, format!("no usable PEM private key: {e}")))?;
    let der_chain: Vec<rustls::pki_types::CertificateDer<'static>> = chain
        .iter()
        .map(|c| rustls::pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let der_key = rustls::pki_types::PrivateKeyDer::try_from(private.der().to_vec())
        .map_err(|e| invalid(key, format!("unusable private key: {e}")))?;
    // The provider ureq itself builds its TLS configurations with.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(der_chain, der_key, &provider).map_err(|e| {
        invalid(
            cert,
            format!(
                "client certificate and key `{}` do not go together: {e}",
                key.display()
            ),
        )
    })?;
    Ok(ClientCert::new_with_certs(&chain, private))
}
