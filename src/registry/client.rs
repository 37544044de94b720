//! [`Client`]: one registry client for a program, talking to any number of registries:
//! requests with retries, auth driven by challenges, TLS per registry.
//!
//! SKELETON: signatures agreed between the pieces of issue 10; bodies to be written.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use super::Transfer;
use crate::archive::oci::Descriptor;
use crate::digest::Digest;
use crate::error::Result;
use crate::reference::Reference;

/// How a [`Client`] reaches registries: credentials, TLS, retries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(super) credentials: Option<(String, String)>,
    pub(super) auth_file: Option<PathBuf>,
    pub(super) tls_verify: bool,
    pub(super) cert_dir: Option<PathBuf>,
    pub(super) retries: u32,
    pub(super) retry_time: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions::new()
    }
}

impl ClientOptions {
    /// Docker's defaults: credentials from Docker's config, TLS verified (plain HTTP for
    /// `localhost` and `127.0.0.1`), five retries within two minutes.
    pub fn new() -> ClientOptions {
        ClientOptions {
            credentials: None,
            auth_file: None,
            tls_verify: true,
            cert_dir: None,
            retries: 5,
            retry_time: Duration::from_secs(120),
        }
    }

    /// Uses `username` and `password` for every registry (`--creds USER:PASS`) instead of
    /// the credential config.
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientOptions {
        self.credentials = Some((username.into(), password.into()));
        self
    }

    /// Reads credentials from this file (`--authfile`) instead of Docker's config.
    pub fn auth_file(mut self, path: impl Into<PathBuf>) -> ClientOptions {
        self.auth_file = Some(path.into());
        self
    }

    /// Whether TLS certificates are verified, and HTTPS required (`--tls-verify=false`
    /// allows plain HTTP and any certificate).
    pub fn tls_verify(mut self, verify: bool) -> ClientOptions {
        self.tls_verify = verify;
        self
    }

    /// A directory of `*.crt` CA files (and `*.cert`/`*.key` client pairs) used for every
    /// registry (`--cert-dir`), instead of `certs.d/HOST[:PORT]`.
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> ClientOptions {
        self.cert_dir = Some(dir.into());
        self
    }

    /// How many times a request is retried after a 5xx, a 429 or a failed connection, and
    /// for how long in all.
    pub fn retries(mut self, count: u32, within: Duration) -> ClientOptions {
        self.retries = count;
        self.retry_time = within;
        self
    }
}

/// A registry client. Cheap to clone (an `Arc` inside), `Send + Sync`: one serves a program
/// and its threads, keeping a connection pool and the tokens it was given.
#[derive(Debug, Clone)]
pub struct Client {
    options: ClientOptions,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

/// A blob being read from a registry: at most its descriptor's size, resumed with `Range`
/// after a cut connection. The reader does not check the digest; what it feeds does.
pub struct BlobReader {
    _todo: Box<dyn Read + Send>,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").finish_non_exhaustive()
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self._todo.read(buf)
    }
}

impl Client {
    /// A client with [`ClientOptions::new`].
    pub fn new() -> Client {
        Client::with_options(ClientOptions::new())
    }

    /// A client with these options.
    pub fn with_options(options: ClientOptions) -> Client {
        Client { options }
    }

    /// The options in force.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// HEADs the manifest `reference` names: its descriptor (media type, digest, size), or
    /// `None` when the registry does not have it.
    pub fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        let _ = reference;
        todo!()
    }

    /// GETs the manifest or index `reference` names, bytes exactly as served; the digest is
    /// checked against the reference's pin, and against `Docker-Content-Digest`.
    pub fn manifest(&self, reference: &Reference) -> Result<(Descriptor, Bytes)> {
        let _ = reference;
        todo!()
    }

    /// Reads a blob of `reference`'s repository.
    pub fn blob(&self, reference: &Reference, blob: &Descriptor) -> Result<BlobReader> {
        let _ = (reference, blob);
        todo!()
    }

    /// Reads a small blob (a config) whole, its size limited and its digest checked.
    pub fn small_blob(&self, reference: &Reference, blob: &Descriptor) -> Result<Bytes> {
        let _ = (reference, blob);
        todo!()
    }

    /// HEADs a blob: its size, or `None` when the repository does not have it.
    pub fn has_blob(&self, reference: &Reference, digest: Digest) -> Result<Option<u64>> {
        let _ = (reference, digest);
        todo!()
    }

    /// Puts a blob into `reference`'s repository: mounted from the first of `mount_from`
    /// (repositories of the same registry) that the registry links, else uploaded from
    /// what `open` gives (called again to start over after a failure). Returns
    /// [`Transfer::Mounted`] or [`Transfer::Done`]; `progress` hears bytes sent.
    pub fn put_blob(
        &self,
        reference: &Reference,
        blob: &Descriptor,
        mount_from: &[String],
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Transfer> {
        let _ = (reference, blob, mount_from, open, progress);
        todo!()
    }

    /// PUTs a manifest or index under `reference` (its tag, or its digest), with these
    /// bytes exactly; returns its digest.
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<Digest> {
        let _ = (reference, media_type, bytes);
        todo!()
    }
}
