//! [`Client`]: one registry client for a program, talking to any number of registries:
//! requests with retries, auth driven by challenges, TLS per registry; the distribution
//! API's calls (manifests, blobs, uploads, mounts, tags).
//!
//! Every request goes through [`Client::execute`] (endpoint, auth, one retry after a 401,
//! redirects for reads) and [`Client::send`] (the one place where requests are retried).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ureq::http::{self, Method, Response};
use ureq::tls::Certificate;
use ureq::{Agent, Body, BodyReader};

use super::auth::{self, encode, lock, pull_scope, push_scope, Challenge, TokenCache};
use super::credentials::{self, is_hub, Credentials};
use super::{tls, Transfer};
use crate::archive::oci::{
    Descriptor, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, INDEX_V1, MANIFEST_V1,
};
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::reference::Reference;

/// `User-Agent` of every request.
const USER_AGENT: &str = concat!("layercake/", env!("CARGO_PKG_VERSION"));
/// Docker Hub's API host.
const HUB_HOST: &str = "registry-1.docker.io";
/// What a manifest request accepts.
const ACCEPT: [&str; 4] = [
    MANIFEST_V1,
    INDEX_V1,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_LIST,
];
/// How much of an error answer is read.
const ERROR_BYTES: u64 = 64 << 10;
/// How many redirects a read follows.
const MAX_REDIRECTS: usize = 10;
/// The first pause before a retry; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The longest pause between two tries.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How a [`Client`] reaches registries: credentials, TLS, retries.
///
/// `Debug` shows the user name of [`ClientOptions::credentials`], never the password.
///
/// ```
/// use std::time::Duration;
/// use layercake::registry::{Client, ClientOptions};
///
/// let options = ClientOptions::new()
///     .credentials("ci", "s3cret")
///     .tls_verify(false)
///     .retries(3, Duration::from_secs(30));
/// assert!(!format!("{options:?}").contains("s3cret"));
/// let client = Client::with_options(options);
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct ClientOptions {
    pub(super) credentials: Option<(String, String)>,
    pub(super) auth_file: Option<PathBuf>,
    pub(super) tls_verify: bool,
    pub(super) cert_dir: Option<PathBuf>,
    pub(super) retries: u32,
    pub(super) retry_time: Duration,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, _)| (user, "***")),
            )
            .field("auth_file", &self.auth_file)
            .field("tls_verify", &self.tls_verify)
            .field("cert_dir", &self.cert_dir)
            .field("retries", &self.retries)
            .field("retry_time", &self.retry_time)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions::new()
    }
}

impl ClientOptions {
    /// Docker's defaults: credentials from Docker's config, TLS verified (plain HTTP for
    /// `localhost` and `127.0.0.1`), five retries within two minutes.
    ///
    /// ```
    /// use layercake::registry::ClientOptions;
    ///
    /// let options = ClientOptions::new();
    /// assert!(format!("{options:?}").contains("tls_verify: true"));
    /// ```
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
    ///
    /// ```
    /// use layercake::registry::ClientOptions;
    ///
    /// let options = ClientOptions::new().credentials("me", "pw");
    /// assert!(format!("{options:?}").contains(r#"("me", "***")"#));
    /// ```
    pub fn credentials(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> ClientOptions {
        self.credentials = Some((username.into(), password.into()));
        self
    }

    /// Reads credentials from this file (`--authfile`) instead of Docker's config.
    ///
    /// ```
    /// use layercake::registry::ClientOptions;
    ///
    /// let options = ClientOptions::new().auth_file("/run/user/1000/containers/auth.json");
    /// assert!(format!("{options:?}").contains("auth.json"));
    /// ```
    pub fn auth_file(mut self, path: impl Into<PathBuf>) -> ClientOptions {
        self.auth_file = Some(path.into());
        self
    }

    /// Whether TLS certificates are verified, and HTTPS required (`--tls-verify=false`
    /// allows plain HTTP and any certificate).
    ///
    /// Without verification a registry is tried over HTTPS accepting any certificate, then
    /// over plain HTTP if that fails, as Docker does for an insecure registry.
    ///
    /// ```
    /// use layercake::registry::ClientOptions;
    ///
    /// let options = ClientOptions::new().tls_verify(false);
    /// assert!(format!("{options:?}").contains("tls_verify: false"));
    /// ```
    pub fn tls_verify(mut self, verify: bool) -> ClientOptions {
        self.tls_verify = verify;
        self
    }

    /// A directory of `*.crt` CA files (and `*.cert`/`*.key` client pairs) used for every
    /// registry (`--cert-dir`), instead of `certs.d/HOST[:PORT]`.
    ///
    /// ```
    /// use layercake::registry::ClientOptions;
    ///
    /// let options = ClientOptions::new().cert_dir("/etc/docker/certs.d/registry.example:5000");
    /// assert!(format!("{options:?}").contains("registry.example:5000"));
    /// ```
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> ClientOptions {
        self.cert_dir = Some(dir.into());
        self
    }

    /// How many times a request is retried after a 5xx, a 429 or a failed connection, and
    /// for how long in all.
    ///
    /// Pauses start at 200 ms and double up to 10 s; a 429's `Retry-After` is waited for
    /// when it fits in the time left. The budget is per call (a whole upload, a whole blob
    /// read with its resumptions).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake::registry::ClientOptions;
    ///
    /// // Fail fast in a test.
    /// let options = ClientOptions::new().retries(0, Duration::ZERO);
    /// assert!(format!("{options:?}").contains("retries: 0"));
    /// ```
    pub fn retries(mut self, count: u32, within: Duration) -> ClientOptions {
        self.retries = count;
        self.retry_time = within;
        self
    }
}

/// A registry client. Cheap to clone (an `Arc` inside), `Send + Sync`: one serves a program
/// and its threads, keeping a connection pool and the tokens it was given.
///
/// Each registry gets its own connection pool and TLS settings, and is pinged (`GET /v2/`)
/// once to learn its scheme and how it wants to be authenticated. `localhost`, `127.0.0.1`
/// and `[::1]` (any port) speak plain HTTP, as Docker lets them; other registries HTTPS
/// (see [`ClientOptions::tls_verify`]), other loopback addresses such as `127.0.0.2`
/// included. Docker Hub (`docker.io`) is reached at
/// `registry-1.docker.io`.
///
/// `Debug` shows the options and the registries known, never a credential or token.
///
/// ```
/// use layercake::registry::Client;
///
/// let client = Client::new();
/// let for_a_thread = client.clone(); // the same pool and tokens
/// std::thread::spawn(move || drop(for_a_thread)).join().unwrap();
/// assert!(format!("{client:?}").starts_with("Client"));
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    options: ClientOptions,
    /// The system's roots, read with the first registry (`None` inside: no bundle).
    system_roots: Mutex<Option<Option<Arc<Vec<Certificate<'static>>>>>>,
    registries: Mutex<HashMap<String, Arc<Registry>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registries = lock(&self.inner.registries);
        let mut names: Vec<&Registry> = registries.values().map(Arc::as_ref).collect();
        names.sort_by(|a, b| a.name.cmp(&b.name));
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .field("registries", &names)
            .finish()
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

/// One registry as a client knows it: where, how, and the tokens it gave.
pub(super) struct Registry {
    /// As references name it: `docker.io`, `127.0.0.1:5000`.
    pub(super) name: String,
    /// The API host: `registry-1.docker.io`, `127.0.0.1:5000`.
    host: String,
    /// Plain HTTP only (a loopback host).
    plain: bool,
    agent: Agent,
    /// Learnt by the ping: scheme and host, and the challenge.
    endpoint: Mutex<Option<Endpoint>>,
    credentials: Mutex<Option<Credentials>>,
    pub(super) tokens: Mutex<TokenCache>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = lock(&self.endpoint).clone();
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("base", &endpoint.as_ref().map(|e| e.base.clone()))
            .field(
                "auth",
                &endpoint.and_then(|e| e.challenge.map(|c| c.scheme)),
            )
            .field("tokens", &lock(&self.tokens).len())
            .finish()
    }
}

impl Registry {
    /// Adopts the challenge of a 401 as the registry's.
    pub(super) fn set_challenge(&self, challenge: Challenge) {
        if let Some(endpoint) = lock(&self.endpoint).as_mut() {
            endpoint.challenge = Some(challenge);
        }
    }
}

/// Where a registry answers (`https://host[:port]`) and how it wants auth.
#[derive(Debug, Clone)]
struct Endpoint {
    base: String,
    challenge: Option<Challenge>,
}

/// What a request is about, for errors and for auth: the repository, `METHOD /path`, the
/// scopes its token needs.
#[derive(Debug, Clone)]
pub(super) struct Op<'a> {
    pub(super) repository: &'a str,
    pub(super) request: String,
    pub(super) scopes: BTreeSet<String>,
}

impl<'a> Op<'a> {
    fn new(
        repository: &'a str,
        method: &Method,
        url: &str,
        scopes: impl IntoIterator<Item = String>,
    ) -> Op<'a> {
        Op {
            repository,
            request: format!("{method} {}", path_of(url)),
            scopes: scopes.into_iter().collect(),
        }
    }
}

/// One HTTP request: method, URL (absolute, or a path of the registry), headers, body, and
/// whether it may be retried (a chunk of an upload may not) and its redirects followed.
#[derive(Debug, Clone)]
pub(super) struct Req<'a> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<&'a [u8]>,
    retry: bool,
    follow: bool,
}

impl<'a> Req<'a> {
    pub(super) fn new(method: Method, url: String) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: None,
            retry: true,
            follow: false,
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Req<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn body(mut self, body: &'a [u8]) -> Req<'a> {
        self.body = Some(body);
        self
    }

    /// Not retried: the caller starts over (an upload).
    fn once(mut self) -> Req<'a> {
        self.retry = false;
        self
    }

    /// Redirects followed (reads).
    fn follow(mut self) -> Req<'a> {
        self.follow = true;
        self
    }

    fn at(&self, url: String) -> Req<'a> {
        Req {
            url,
            ..self.clone()
        }
    }
}

/// The retries left to one call: a count, a deadline, the next pause.
#[derive(Debug)]
pub(super) struct Budget {
    left: u32,
    deadline: Instant,
    delay: Duration,
}

impl Budget {
    fn new(options: &ClientOptions) -> Budget {
        let now = Instant::now();
        Budget {
            left: options.retries,
            deadline: now.checked_add(options.retry_time).unwrap_or(now),
            delay: FIRST_DELAY,
        }
    }

    /// Waits before another try (`hint`, a `Retry-After`, or the backoff); `false`, without
    /// waiting, when the count or the time is spent.
    fn pause(&mut self, hint: Option<Duration>) -> bool {
        if self.left == 0 {
            return false;
        }
        let wait = hint.unwrap_or(self.delay);
        match Instant::now().checked_add(wait) {
            Some(end) if end <= self.deadline => {}
            _ => return false,
        }
        std::thread::sleep(wait);
        self.left -= 1;
        if hint.is_none() {
            self.delay = (self.delay * 2).min(MAX_DELAY);
        }
        true
    }
}

impl Client {
    /// The size of the chunks of an upload; a blob no larger goes in one `PUT`.
    ///
    /// ```
    /// assert_eq!(layercake::registry::Client::CHUNK_BYTES, 4 << 20);
    /// ```
    pub const CHUNK_BYTES: u64 = 4 << 20;

    /// A client with [`ClientOptions::new`].
    ///
    /// ```
    /// let client = layercake::registry::Client::new();
    /// # let _ = client;
    /// ```
    pub fn new() -> Client {
        Client::with_options(ClientOptions::new())
    }

    /// A client with these options.
    ///
    /// ```
    /// use layercake::registry::{Client, ClientOptions};
    ///
    /// let client = Client::with_options(ClientOptions::new().tls_verify(false));
    /// # let _ = client;
    /// ```
    pub fn with_options(options: ClientOptions) -> Client {
        Client {
            inner: Arc::new(Inner {
                options,
                system_roots: Mutex::new(None),
                registries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The options in force.
    ///
    /// ```
    /// use layercake::registry::{Client, ClientOptions};
    ///
    /// let client = Client::with_options(ClientOptions::new().credentials("me", "pw"));
    /// // A second client like the first, but reading another credential file.
    /// let other = Client::with_options(client.options().clone().auth_file("auth.json"));
    /// # let _ = other;
    /// ```
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Checks that `registry` (`docker.io`, `localhost:5000`) answers the distribution API
    /// and, when there are credentials for it, that it accepts them: `GET /v2/`, through a
    /// token server if the registry uses one.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, ClientOptions};
    ///
    /// let client = Client::with_options(ClientOptions::new().credentials("me", "pw"));
    /// client.ping("registry.example.com")?;
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`]: not reachable (no `status`), credentials refused (401, from the
    /// registry or its token server); [`Error::InvalidReference`] for a name that is not a
    /// host.
    pub fn ping(&self, registry: &str) -> Result<()> {
        let reg = self.registry(registry)?;
        let mut budget = Budget::new(self.options());
        let endpoint = self.endpoint(&reg, &mut budget)?;
        if endpoint.challenge.is_none() || self.credentials(&reg)? == Credentials::Anonymous {
            return Ok(());
        }
        let url = "/v2/".to_owned();
        let mut op = Op::new("", &Method::GET, &url, []);
        let mut response = self.execute(&reg, &mut op, &Req::new(Method::GET, url), &mut budget)?;
        if !response.status().is_success() {
            return Err(self.status_error(&reg, &op, &mut response));
        }
        drain(&mut response);
        Ok(())
    }

    /// HEADs the manifest `reference` names: its descriptor (media type, digest, size), or
    /// `None` when the registry does not have it.
    ///
    /// The descriptor comes from `Content-Type`, `Docker-Content-Digest` and
    /// `Content-Length`; a registry that leaves one out is asked for the manifest itself.
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let client = Client::new();
    /// match client.head_manifest(&Reference::parse("busybox:latest")?)? {
    ///     Some(desc) => println!("{} {}", desc.digest, desc.media_type),
    ///     None => println!("no such tag"),
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] for any answer but 200 and 404, or no answer;
    /// [`Error::DigestMismatch`] when the registry names another digest than the
    /// reference's pin.
    pub fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let url = format!("/v2/{repo}/manifests/{}", manifest_target(reference));
        let mut op = Op::new(repo, &Method::HEAD, &url, [pull_scope(repo)]);
        let req = Req::new(Method::HEAD, url)
            .header("accept", ACCEPT.join(", "))
            .follow();
        let mut response = self.execute(&reg, &mut op, &req, &mut budget)?;
        match response.status().as_u16() {
            404 => return Ok(None),
            200 => {}
            _ => return Err(self.status_error(&reg, &op, &mut response)),
        }
        let media_type = content_type(&response);
        let digest = header(&response, "docker-content-digest").and_then(|d| d.parse().ok());
        let size = header(&response, "content-length").and_then(|s| s.parse::<u64>().ok());
        drain(&mut response);
        match (media_type, digest, size) {
            (Some(media_type), Some(digest), Some(size)) if !is_generic(&media_type) => {
                if let Some(pin) = reference.digest() {
                    if pin != digest {
                        return Err(Error::DigestMismatch {
                            what: format!("manifest {reference} (Docker-Content-Digest)"),
                            expected: pin,
                            actual: digest,
                        });
                    }
                }
                Ok(Some(Descriptor::of_blob(&media_type, digest, size)))
            }
            _ => match self.manifest(reference) {
                Ok((descriptor, _)) => Ok(Some(descriptor)),
                Err(Error::Registry {
                    status: Some(404), ..
                }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// GETs the manifest or index `reference` names, bytes exactly as served; the digest is
    /// checked against the reference's pin, and against `Docker-Content-Digest`.
    ///
    /// The media type is the `Content-Type`, or the document's own `mediaType` when the
    /// registry answers a generic type (`application/json`). The size is limited to
    /// [`Limits`]' `json_bytes` (20 MiB).
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let client = Client::new();
    /// let (desc, bytes) = client.manifest(&Reference::parse("busybox:latest")?)?;
    /// assert!(desc.digest.verify(&bytes));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] for any answer but 200 (`MANIFEST_UNKNOWN` with 404);
    /// [`Error::DigestMismatch`]; [`Error::LimitExceeded`] past 20 MiB.
    pub fn manifest(&self, reference: &Reference) -> Result<(Descriptor, Bytes)> {
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let url = format!("/v2/{repo}/manifests/{}", manifest_target(reference));
        let mut op = Op::new(repo, &Method::GET, &url, [pull_scope(repo)]);
        let req = Req::new(Method::GET, url)
            .header("accept", ACCEPT.join(", "))
            .follow();
        let limit = Limits::default().json_bytes;
        let (response, bytes) = self.get_json(&reg, &mut op, &req, limit, &mut budget)?;
        let bytes = Bytes::from(bytes);
        let digest = Digest::sha256(&bytes);
        if let Some(pin) = reference.digest() {
            if pin != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {reference}"),
                    expected: pin,
                    actual: digest,
                });
            }
        }
        if let Some(claimed) = header(&response, "docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok())
            .filter(|d| d.algorithm() == Algorithm::Sha256)
        {
            if claimed != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {reference} (Docker-Content-Digest)"),
                    expected: claimed,
                    actual: digest,
                });
            }
        }
        let served = content_type(&response);
        let media_type = match served {
            Some(t) if !is_generic(&t) => t,
            other => own_media_type(&bytes).or(other).unwrap_or_default(),
        };
        let descriptor = Descriptor::of_blob(&media_type, digest, bytes.len() as u64);
        Ok((descriptor, bytes))
    }

    /// Reads a blob of `reference`'s repository.
    ///
    /// The reader gives at most `blob.size` bytes (a longer answer is an error), follows the
    /// registry's redirect to its storage (without the registry's credentials), and after a
    /// cut connection or an early end asks again with `Range: bytes=N-`, within the retry
    /// budget. It does not check the digest: what it feeds does.
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    /// # fn layer() -> layercake::archive::oci::Descriptor { unimplemented!() }
    ///
    /// let client = Client::new();
    /// let busybox = Reference::parse("busybox:latest")?;
    /// let blob = layer();
    /// let mut file = std::fs::File::create("layer.tar.gz")?;
    /// std::io::copy(&mut client.blob(&busybox, &blob)?, &mut file)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] when the first request fails (404 `BLOB_UNKNOWN`);
    /// [`Error::SizeMismatch`] when the registry announces another size. Later failures
    /// come from `read` as `io::Error`s that carry an [`Error`].
    pub fn blob(&self, reference: &Reference, blob: &Descriptor) -> Result<BlobReader> {
        let (reg, repo) = self.target(reference)?;
        let mut reader = BlobReader {
            client: self.clone(),
            reg,
            repository: repo.to_owned(),
            digest: blob.digest,
            size: blob.size,
            offset: 0,
            body: None,
            done: false,
            budget: Budget::new(self.options()),
        };
        reader.connect()?;
        Ok(reader)
    }

    /// Reads a small blob (a config) whole, its size limited and its digest checked.
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    /// # fn config() -> layercake::archive::oci::Descriptor { unimplemented!() }
    ///
    /// let client = Client::new();
    /// let bytes = client.small_blob(&Reference::parse("busybox:latest")?, &config())?;
    /// let config: serde_json::Value = serde_json::from_slice(&bytes)?;
    /// # let _ = config;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] for a blob over 20 MiB; [`Error::DigestMismatch`],
    /// [`Error::SizeMismatch`]; [`Error::Registry`].
    pub fn small_blob(&self, reference: &Reference, blob: &Descriptor) -> Result<Bytes> {
        let limit = Limits::default().json_bytes;
        if blob.size > limit {
            return Err(Error::LimitExceeded {
                limit: "json_bytes",
                value: blob.size,
                max: limit,
            });
        }
        if blob.digest.algorithm() != Algorithm::Sha256 {
            return Err(Error::UnsupportedAlgorithm {
                algorithm: blob.digest.algorithm().as_str().to_owned(),
            });
        }
        let mut reader = self.blob(reference, blob)?;
        let mut bytes = Vec::with_capacity(blob.size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| from_io(e, format!("reading blob {}", blob.digest)))?;
        if bytes.len() as u64 != blob.size {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", blob.digest),
                expected: blob.size,
                actual: bytes.len() as u64,
            });
        }
        let actual = Digest::sha256(&bytes);
        if actual != blob.digest {
            return Err(Error::DigestMismatch {
                what: format!("blob of {}", reference.name()),
                expected: blob.digest,
                actual,
            });
        }
        Ok(Bytes::from(bytes))
    }

    /// HEADs a blob: its size, or `None` when the repository does not have it.
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::{Digest, Reference};
    ///
    /// let client = Client::new();
    /// let app = Reference::parse("localhost:5000/app:1")?;
    /// if client.has_blob(&app, Digest::EMPTY_TAR)?.is_none() {
    ///     println!("the empty layer needs an upload");
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] for any answer but 200 and 404, or one without `Content-Length`.
    pub fn has_blob(&self, reference: &Reference, digest: Digest) -> Result<Option<u64>> {
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let url = format!("/v2/{repo}/blobs/{digest}");
        let mut op = Op::new(repo, &Method::HEAD, &url, [pull_scope(repo)]);
        let req = Req::new(Method::HEAD, url).follow();
        let mut response = self.execute(&reg, &mut op, &req, &mut budget)?;
        match response.status().as_u16() {
            404 => Ok(None),
            200 => {
                let size = header(&response, "content-length").and_then(|s| s.parse().ok());
                drain(&mut response);
                match size {
                    Some(size) => Ok(Some(size)),
                    None => Err(self.error(
                        &reg,
                        &op,
                        Some(200),
                        None,
                        "the answer has no Content-Length".to_owned(),
                    )),
                }
            }
            _ => Err(self.status_error(&reg, &op, &mut response)),
        }
    }

    /// Puts a blob into `reference`'s repository: mounted from the first of `mount_from`
    /// (repositories of the same registry) that the registry links, else uploaded from
    /// what `open` gives (called again to start over after a failure). Returns
    /// [`Transfer::Mounted`] or [`Transfer::Done`]; `progress` hears bytes sent.
    ///
    /// A mount is `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=SOURCE` with one token for
    /// both repositories. An upload is one `PUT` for a blob of at most
    /// [`Client::CHUNK_BYTES`], else `PATCH`es of that size and a closing `PUT`. The bytes
    /// are checked against `blob`'s size and digest before the closing request, so a wrong
    /// source fails here, not in the registry. `progress` hears the bytes sent so far by
    /// the current attempt (it starts again from 0 when an upload starts over).
    ///
    /// ```no_run
    /// use layercake::archive::oci::Descriptor;
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let client = Client::new();
    /// let bytes = b"{}".to_vec();
    /// let blob = Descriptor::of("application/vnd.oci.image.config.v1+json", &bytes);
    /// let transfer = client.put_blob(
    ///     &Reference::parse("localhost:5000/app:1")?,
    ///     &blob,
    ///     &["library/base".to_owned()],
    ///     &mut || Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
    ///     &mut |sent| println!("{sent} bytes sent"),
    /// )?;
    /// println!("{transfer:?}");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] when the registry refuses or cannot be reached within the retry
    /// budget; [`Error::SizeMismatch`], [`Error::DigestMismatch`] when `open` gives other
    /// bytes than `blob` describes; what `open` returns.
    pub fn put_blob(
        &self,
        reference: &Reference,
        blob: &Descriptor,
        mount_from: &[String],
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Transfer> {
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let digest = blob.digest;
        let sources: Vec<&String> = mount_from
            .iter()
            .filter(|s| !s.is_empty() && s.as_str() != repo)
            .collect();
        let mut location = None;
        for (i, source) in sources.iter().enumerate() {
            let url = format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                encode(&digest.to_string()),
                encode(source)
            );
            let mut op = Op::new(
                repo,
                &Method::POST,
                &url,
                [push_scope(repo), pull_scope(source)],
            );
            let req = Req::new(Method::POST, url).body(&[]);
            let mut response = match self.execute(&reg, &mut op, &req, &mut budget) {
                Ok(response) => response,
                // Refused (no right to read the source): try the next, then upload.
                Err(Error::Registry {
                    status: Some(400..=499),
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            match response.status().as_u16() {
                201 => {
                    drain(&mut response);
                    return Ok(Transfer::Mounted {
                        digest,
                        from: (*source).clone(),
                    });
                }
                202 => {
                    let started = self.location(&reg, &op, &mut response)?;
                    if i + 1 < sources.len() {
                        // Not there: give the session back and try the next source.
                        let mut cancel = Op::new(repo, &Method::DELETE, &started, []);
                        cancel.scopes = op.scopes.clone();
                        let req = Req::new(Method::DELETE, started).once();
                        if let Ok(mut r) = self.execute(&reg, &mut cancel, &req, &mut budget) {
                            drain(&mut r);
                        }
                    } else {
                        location = Some(started);
                    }
                }
                _ => drain(&mut response),
            }
        }
        loop {
            match self.upload(
                &reg,
                repo,
                blob,
                location.take(),
                open,
                progress,
                &mut budget,
            ) {
                Ok(transfer) => return Ok(transfer),
                Err(e) if restartable(&e) && budget.pause(None) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt at an upload: a session (the one given, or a new one), the bytes, the
    /// closing `PUT`.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        reg: &Registry,
        repo: &str,
        blob: &Descriptor,
        location: Option<String>,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        progress: &mut dyn FnMut(u64),
        budget: &mut Budget,
    ) -> Result<Transfer> {
        let digest = blob.digest;
        let scopes = [push_scope(repo)];
        let mut location = match location {
            Some(location) => location,
            None => {
                let url = format!("/v2/{repo}/blobs/uploads/");
                let mut op = Op::new(repo, &Method::POST, &url, scopes.clone());
                let req = Req::new(Method::POST, url).body(&[]);
                let mut response = self.execute(reg, &mut op, &req, budget)?;
                if !response.status().is_success() {
                    return Err(self.status_error(reg, &op, &mut response));
                }
                self.location(reg, &op, &mut response)?
            }
        };
        let what = || format!("blob {digest} to upload");
        let mut reader = HashingReader::new(open()?);
        let read_error = |e| Error::io(format!("reading blob {digest} to upload"), e);
        let mut chunk = Vec::new();
        let mut sent = 0u64;
        loop {
            chunk.clear();
            (&mut reader)
                .take(Client::CHUNK_BYTES)
                .read_to_end(&mut chunk)
                .map_err(read_error)?;
            if chunk.is_empty() {
                break;
            }
            if sent + chunk.len() as u64 > blob.size {
                // Count what is left, to say how long the source really is.
                let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
                return Err(Error::SizeMismatch {
                    what: what(),
                    expected: blob.size,
                    actual: sent + chunk.len() as u64 + rest,
                });
            }
            if blob.size <= Client::CHUNK_BYTES {
                // Monolithic: the whole blob goes with the closing PUT, if that was all.
                sent = chunk.len() as u64;
                let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
                if rest > 0 {
                    return Err(Error::SizeMismatch {
                        what: what(),
                        expected: blob.size,
                        actual: sent + rest,
                    });
                }
                break;
            }
            let end = sent + chunk.len() as u64 - 1;
            let mut op = Op::new(repo, &Method::PATCH, &location, scopes.clone());
            let req = Req::new(Method::PATCH, location.clone())
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{sent}-{end}"))
                .body(&chunk)
                .once();
            let mut response = self.execute(reg, &mut op, &req, budget)?;
            if !response.status().is_success() {
                return Err(self.status_error(reg, &op, &mut response));
            }
            if header(&response, "location").is_some() {
                location = self.location(reg, &op, &mut response)?;
            } else {
                drain(&mut response);
            }
            sent = end + 1;
            progress(sent);
        }
        if sent != blob.size {
            return Err(Error::SizeMismatch {
                what: what(),
                expected: blob.size,
                actual: sent,
            });
        }
        if reader.digest() != digest {
            return Err(Error::DigestMismatch {
                what: what(),
                expected: digest,
                actual: reader.digest(),
            });
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", encode(&digest.to_string()));
        let body: &[u8] = if blob.size <= Client::CHUNK_BYTES {
            &chunk
        } else {
            &[]
        };
        let mut op = Op::new(repo, &Method::PUT, &url, scopes);
        let mut req = Req::new(Method::PUT, url).body(body).once();
        if !body.is_empty() {
            req = req.header("content-type", "application/octet-stream");
        }
        let mut response = self.execute(reg, &mut op, &req, budget)?;
        if !response.status().is_success() {
            return Err(self.status_error(reg, &op, &mut response));
        }
        check_claimed(&response, digest, || format!("blob {digest} as uploaded"))?;
        drain(&mut response);
        if blob.size <= Client::CHUNK_BYTES {
            progress(sent);
        }
        Ok(Transfer::Done {
            digest,
            size: blob.size,
        })
    }

    /// PUTs a manifest or index under `reference` (its tag, or its digest), with these
    /// bytes exactly; returns its digest.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use layercake::archive::oci::MANIFEST_V1;
    /// use layercake::registry::Client;
    /// use layercake::{Digest, Reference};
    /// # fn manifest_bytes() -> Bytes { unimplemented!() }
    ///
    /// let client = Client::new();
    /// let bytes = manifest_bytes();
    /// let digest = client.put_manifest(&Reference::parse("localhost:5000/app:1")?, MANIFEST_V1, &bytes)?;
    /// assert_eq!(digest, Digest::sha256(&bytes));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`] when the reference is pinned to another digest than the
    /// bytes', or the registry names another; [`Error::Registry`] when it refuses them
    /// (`MANIFEST_BLOB_UNKNOWN`, `MANIFEST_INVALID`).
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<Digest> {
        let (reg, repo) = self.target(reference)?;
        let digest = Digest::sha256(bytes);
        if let (Some(pin), None) = (reference.digest(), reference.tag()) {
            if pin != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest to put as {reference}"),
                    expected: pin,
                    actual: digest,
                });
            }
        }
        let mut budget = Budget::new(self.options());
        let url = format!("/v2/{repo}/manifests/{}", manifest_target(reference));
        let mut op = Op::new(repo, &Method::PUT, &url, [push_scope(repo)]);
        let req = Req::new(Method::PUT, url)
            .header("content-type", media_type)
            .body(bytes);
        let mut response = self.execute(&reg, &mut op, &req, &mut budget)?;
        if !response.status().is_success() {
            return Err(self.status_error(&reg, &op, &mut response));
        }
        check_claimed(&response, digest, || {
            format!("manifest {reference} as stored")
        })?;
        drain(&mut response);
        Ok(digest)
    }

    /// The tags of `reference`'s repository, in the registry's order, every page of them
    /// (`GET /v2/NAME/tags/list`, following `Link`).
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let client = Client::new();
    /// for tag in client.tags(&Reference::parse("localhost:5000/app")?)? {
    ///     println!("{tag}");
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] (404 `NAME_UNKNOWN` for a repository the registry does not
    /// have); [`Error::LimitExceeded`] for a page over 20 MiB.
    pub fn tags(&self, reference: &Reference) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let mut url = format!("/v2/{repo}/tags/list");
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        // One op for every page: a scope a page's 401 asked for stays asked.
        let mut op = Op::new(repo, &Method::GET, &url, [pull_scope(repo)]);
        loop {
            op.request = format!("GET {}", path_of(&url));
            let req = Req::new(Method::GET, url.clone()).follow();
            let limit = Limits::default().json_bytes;
            let (response, bytes) = self.get_json(&reg, &mut op, &req, limit, &mut budget)?;
            let page: Page = serde_json::from_slice(&bytes).map_err(|e| {
                self.error(
                    &reg,
                    &op,
                    Some(200),
                    None,
                    format!("the tag list is not JSON: {e}"),
                )
            })?;
            tags.extend(page.tags.unwrap_or_default());
            let next = response
                .headers()
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            seen.insert(url.clone());
            match next {
                Some(next) => {
                    let next = join(&url, &next);
                    if !seen.insert(next.clone()) {
                        return Ok(tags);
                    }
                    url = next;
                }
                None => return Ok(tags),
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // The machinery: registries, endpoints, requests, retries, errors.

    /// The registry of a reference, and its repository.
    fn target<'r>(&self, reference: &'r Reference) -> Result<(Arc<Registry>, &'r str)> {
        Ok((self.registry(reference.domain())?, reference.repository()))
    }

    /// The registry named `name`, made on first use: its TLS settings and connection pool.
    fn registry(&self, name: &str) -> Result<Arc<Registry>> {
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "/\\@?#%".contains(c))
        {
            return Err(Error::InvalidReference {
                reference: name.to_owned(),
                reason: "not a registry host",
            });
        }
        let name = if is_hub(name) { "docker.io" } else { name };
        let mut registries = lock(&self.inner.registries);
        if let Some(reg) = registries.get(name) {
            return Ok(Arc::clone(reg));
        }
        let host = if name == "docker.io" { HUB_HOST } else { name };
        let system = {
            let mut roots = lock(&self.inner.system_roots);
            match &*roots {
                Some(found) => found.clone(),
                None => {
                    let found = tls::system_roots()?;
                    *roots = Some(found.clone());
                    found
                }
            }
        };
        let tls = tls::config(self.options(), system.as_ref(), &[name, host])?;
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(USER_AGENT)
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(8)
            .build();
        let reg = Arc::new(Registry {
            name: name.to_owned(),
            host: host.to_owned(),
            plain: is_loopback(host),
            agent: Agent::new_with_config(config),
            endpoint: Mutex::new(None),
            credentials: Mutex::new(None),
            tokens: Mutex::new(TokenCache::default()),
        });
        registries.insert(name.to_owned(), Arc::clone(&reg));
        Ok(reg)
    }

    /// The credentials for a registry, looked up once.
    pub(super) fn credentials(&self, reg: &Registry) -> Result<Credentials> {
        let mut slot = lock(&reg.credentials);
        if let Some(found) = &*slot {
            return Ok(found.clone());
        }
        let found = credentials::lookup(self.options(), &reg.name)?;
        *slot = Some(found.clone());
        Ok(found)
    }

    /// The registry's endpoint, pinging it the first time (one thread pings; the others
    /// wait for its answer).
    fn endpoint(&self, reg: &Registry, budget: &mut Budget) -> Result<Endpoint> {
        let mut slot = lock(&reg.endpoint);
        if let Some(endpoint) = &*slot {
            return Ok(endpoint.clone());
        }
        let endpoint = self.ping_endpoint(reg, budget)?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// `GET /v2/` over HTTPS, or plain HTTP for loopback hosts, or HTTPS then plain HTTP
    /// without TLS verification; the challenge of a 401.
    fn ping_endpoint(&self, reg: &Registry, budget: &mut Budget) -> Result<Endpoint> {
        let schemes: &[&str] = if reg.plain {
            &["http"]
        } else if self.options().tls_verify {
            &["https"]
        } else {
            &["https", "http"]
        };
        let op = Op::new("", &Method::GET, "/v2/", []);
        let mut failed: Option<Error> = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let base = format!("{scheme}://{}", reg.host);
            let mut req = Req::new(Method::GET, format!("{base}/v2/"));
            let last = i + 1 == schemes.len();
            if !last {
                req = req.once();
            }
            match self.send(reg, &op, &req, None, budget) {
                Ok(mut response) => {
                    let challenge = if response.status().as_u16() == 401 {
                        auth::pick(&response)
                    } else {
                        None
                    };
                    drain(&mut response);
                    return Ok(Endpoint { base, challenge });
                }
                Err(e @ Error::Registry { status: None, .. }) if !last => failed = Some(e),
                Err(e) => {
                    return Err(match (failed, e) {
                        (
                            Some(Error::Registry { reason: first, .. }),
                            Error::Registry {
                                registry,
                                repository,
                                request,
                                status,
                                code,
                                reason,
                            },
                        ) => Error::Registry {
                            registry,
                            repository,
                            request,
                            status,
                            code,
                            reason: format!("over HTTPS: {first}; over plain HTTP: {reason}"),
                        },
                        (_, e) => e,
                    })
                }
            }
        }
        Err(self.error(reg, &op, None, None, "no scheme to try".to_owned()))
    }

    /// A request to the registry: its endpoint, the auth its challenge asks (with one more
    /// try after a 401 that asks for more), redirects followed for reads. Answers any
    /// status below 500 but 401 and 429; those, and failures, are errors.
    pub(super) fn execute(
        &self,
        reg: &Registry,
        op: &mut Op<'_>,
        req: &Req<'_>,
        budget: &mut Budget,
    ) -> Result<Response<Body>> {
        let mut again = false;
        loop {
            let endpoint = self.endpoint(reg, budget)?;
            let url = join(&format!("{}/", endpoint.base), &req.url);
            let auth = if same_origin(&url, &endpoint.base) {
                self.authorization(reg, endpoint.challenge.as_ref(), op, budget)?
            } else {
                None
            };
            let here = req.at(url);
            let mut response = self.send(reg, op, &here, auth.as_deref(), budget)?;
            let status = response.status().as_u16();
            if status == 401 {
                if !again && self.reauthorize(reg, &response, op, auth.is_some()) {
                    again = true;
                    drain(&mut response);
                    continue;
                }
                return Err(self.status_error(reg, op, &mut response));
            }
            if req.follow && is_redirect(status) {
                return self.follow(reg, op, &here, &endpoint.base, auth, response, budget);
            }
            return Ok(response);
        }
    }

    /// Follows redirects of a read; the registry's `Authorization` goes only to the
    /// registry's own scheme and host.
    #[allow(clippy::too_many_arguments)]
    fn follow(
        &self,
        reg: &Registry,
        op: &Op<'_>,
        req: &Req<'_>,
        base: &str,
        auth: Option<String>,
        mut response: Response<Body>,
        budget: &mut Budget,
    ) -> Result<Response<Body>> {
        let mut url = req.url.clone();
        for _ in 0..MAX_REDIRECTS {
            let status = response.status().as_u16();
            if !is_redirect(status) {
                return Ok(response);
            }
            let Some(location) = header(&response, "location") else {
                return Err(self.status_error(reg, op, &mut response));
            };
            url = join(&url, &location);
            drain(&mut response);
            let keep = same_origin(&url, base).then_some(auth.as_deref()).flatten();
            response = self.send(reg, op, &req.at(url.clone()), keep, budget)?;
            if response.status().as_u16() == 401 {
                return Err(self.status_error(reg, op, &mut response));
            }
        }
        Err(self.error(
            reg,
            op,
            Some(response.status().as_u16()),
            None,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// Sends a request, and again after a 5xx, a 429 or a failed connection, within the
    /// budget (unless the request may not be repeated). Answers any status below 500 but
    /// 429; those, and failures, are errors. The only place requests are retried.
    pub(super) fn send(
        &self,
        reg: &Registry,
        op: &Op<'_>,
        req: &Req<'_>,
        auth: Option<&str>,
        budget: &mut Budget,
    ) -> Result<Response<Body>> {
        loop {
            match attempt(reg, req, auth) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status < 500 && status != 429 {
                        return Ok(response);
                    }
                    let hint = if status == 429 {
                        retry_after(&response)
                    } else {
                        None
                    };
                    if req.retry && budget.pause(hint) {
                        drain(&mut response);
                        continue;
                    }
                    return Err(self.status_error(reg, op, &mut response));
                }
                Err(e) => {
                    if req.retry && transient(&e) && budget.pause(None) {
                        continue;
                    }
                    return Err(self.error(reg, op, None, None, describe(&e)));
                }
            }
        }
    }

    /// A GET of a JSON document, size limited; read again (within the budget) when the
    /// connection breaks while reading it.
    fn get_json(
        &self,
        reg: &Registry,
        op: &mut Op<'_>,
        req: &Req<'_>,
        limit: u64,
        budget: &mut Budget,
    ) -> Result<(Response<Body>, Vec<u8>)> {
        loop {
            let mut response = self.execute(reg, op, req, budget)?;
            if response.status().as_u16() != 200 {
                return Err(self.status_error(reg, op, &mut response));
            }
            match read_limited(&mut response, limit) {
                Ok(Some(bytes)) => return Ok((response, bytes)),
                Ok(None) => {
                    return Err(Error::LimitExceeded {
                        limit: "json_bytes",
                        value: limit + 1,
                        max: limit,
                    })
                }
                Err(_) if budget.pause(None) => continue,
                Err(e) => {
                    return Err(self.error(
                        reg,
                        op,
                        Some(200),
                        None,
                        format!("reading the answer: {e}"),
                    ))
                }
            }
        }
    }

    /// The `Location` of an upload session, absolute.
    fn location(
        &self,
        reg: &Registry,
        op: &Op<'_>,
        response: &mut Response<Body>,
    ) -> Result<String> {
        let Some(location) = header(response, "location") else {
            let status = response.status().as_u16();
            drain(response);
            return Err(self.error(
                reg,
                op,
                Some(status),
                None,
                "the answer has no Location".to_owned(),
            ));
        };
        drain(response);
        let base = lock(&reg.endpoint)
            .as_ref()
            .map(|e| format!("{}/", e.base))
            .unwrap_or_default();
        Ok(join(&base, &location))
    }

    /// An error about a request.
    fn error(
        &self,
        reg: &Registry,
        op: &Op<'_>,
        status: Option<u16>,
        code: Option<String>,
        reason: String,
    ) -> Error {
        Error::Registry {
            registry: reg.name.clone(),
            repository: op.repository.to_owned(),
            request: op.request.clone(),
            status,
            code,
            reason,
        }
    }

    /// The error a response's status means, with the registry's code and message read
    /// from its body (`{"errors":[{"code","message","detail"}]}`).
    pub(super) fn status_error(
        &self,
        reg: &Registry,
        op: &Op<'_>,
        response: &mut Response<Body>,
    ) -> Error {
        let status = response.status();
        let body = read_limited(response, ERROR_BYTES)
            .ok()
            .flatten()
            .unwrap_or_default();
        let (code, message) = registry_errors(&body);
        let reason = match message {
            Some(message) => message,
            None => {
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                let phrase = status
                    .canonical_reason()
                    .unwrap_or("unexpected answer")
                    .to_ascii_lowercase();
                if text.is_empty() || text.len() > 200 || text.starts_with(['{', '<']) {
                    phrase
                } else {
                    format!("{phrase}: {text}")
                }
            }
        };
        self.error(reg, op, Some(status.as_u16()), code, reason)
    }
}

/// One exchange, no retry.
fn attempt(
    reg: &Registry,
    req: &Req<'_>,
    auth: Option<&str>,
) -> std::result::Result<Response<Body>, ureq::Error> {
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(req.url.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(*name, value.as_str());
    }
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    match req.body {
        Some(body) => reg.agent.run(builder.body(body)?),
        None => reg.agent.run(builder.body(())?),
    }
}

/// Whether a failure to get an answer may pass: a broken or refused connection, a timeout.
/// Not a certificate refused, a bad URL, a host that does not resolve.
fn transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(e) => !matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

/// A failure to get an answer, in words.
fn describe(e: &ureq::Error) -> String {
    let text = match e {
        ureq::Error::Io(io) => match io.get_ref() {
            Some(inner) => format!("connection failed: {inner}"),
            None => format!("connection failed: {io}"),
        },
        ureq::Error::HostNotFound => "host not found".to_owned(),
        e => e.to_string(),
    };
    if text.contains("CaUsedAsEndEntity") {
        // Go accepts a self-signed CA certificate as a server's own; rustls does not.
        return format!(
            "{text} (the server presents a CA certificate as its own: sign a server \
             certificate with that CA, or use --tls-verify=false)"
        );
    }
    text
}

/// Whether an upload that failed this way may start over: no answer, a 5xx or 429, or a
/// session the registry forgot.
fn restartable(e: &Error) -> bool {
    match e {
        Error::Registry { status: None, .. } => true,
        Error::Registry {
            status: Some(status),
            code,
            ..
        } => {
            *status >= 500
                || *status == 429
                || *status == 416
                || (*status == 404 && code.as_deref() == Some("BLOB_UPLOAD_UNKNOWN"))
        }
        _ => false,
    }
}

/// A 429's `Retry-After`: seconds, or an HTTP date.
fn retry_after(response: &Response<Body>) -> Option<Duration> {
    let value = header(response, "retry-after")?;
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = http_date(&value)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    Some(Duration::from_secs((at - now).max(0) as u64))
}

/// The Unix time of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let rfc3339 = format!("{year:0>4}-{month:02}-{day:0>2}T{time}Z");
    crate::timestamp::Timestamp::parse(&rfc3339)
        .ok()
        .map(|t| t.unix_seconds())
}

/// Reads a body whole, at most `limit` bytes: `None` when there is more.
pub(super) fn read_limited(
    response: &mut Response<Body>,
    limit: u64,
) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Reads what is left of a short answer, so that its connection can serve again.
fn drain(response: &mut Response<Body>) {
    let _ = io::copy(
        &mut response.body_mut().as_reader().take(ERROR_BYTES),
        &mut io::sink(),
    );
}

/// The `code` and words of a registry's JSON error body.
fn registry_errors(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    let Ok(Errors { errors }) = serde_json::from_slice::<Errors>(body) else {
        return (None, None);
    };
    let code = errors.iter().find_map(|e| e.code.clone());
    let words: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let message = e.message.clone().or_else(|| e.code.clone())?;
            Some(match &e.detail {
                Some(serde_json::Value::String(d)) if !d.is_empty() => format!("{message}: {d}"),
                Some(d) if !d.is_null() && d.to_string().len() <= 200 => {
                    format!("{message}: {d}")
                }
                _ => message,
            })
        })
        .collect();
    (code, (!words.is_empty()).then(|| words.join("; ")))
}

/// A header's value as text.
fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The `Content-Type`, parameters left out.
fn content_type(response: &Response<Body>) -> Option<String> {
    let value = header(response, "content-type")?;
    let media = value.split(';').next().unwrap_or("").trim();
    (!media.is_empty()).then(|| media.to_owned())
}

/// Whether a served type says nothing about what kind of manifest it is.
fn is_generic(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/json" | "text/plain" | "application/octet-stream"
    )
}

/// The `mediaType` a manifest names itself.
fn own_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Typed>(bytes).ok()?.media_type
}

/// The digest a registry names in `Docker-Content-Digest`, checked against the one computed.
fn check_claimed(
    response: &Response<Body>,
    digest: Digest,
    what: impl FnOnce() -> String,
) -> Result<()> {
    let claimed = header(response, "docker-content-digest")
        .and_then(|d| d.parse::<Digest>().ok())
        .filter(|d| d.algorithm() == Algorithm::Sha256);
    match claimed {
        Some(claimed) if claimed != digest => Err(Error::DigestMismatch {
            what: what(),
            expected: digest,
            actual: claimed,
        }),
        _ => Ok(()),
    }
}

/// What a manifest URL names: the digest if pinned, else the tag.
fn manifest_target(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    }
}

/// The `next` target of a `Link` header (`<url>; rel="next"`).
fn next_link(value: &str) -> Option<String> {
    for link in value.split(',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else {
            continue;
        };
        let Some((target, params)) = rest.split_once('>') else {
            continue;
        };
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        if is_next {
            return Some(target.to_owned());
        }
    }
    None
}

/// Whether a status is a redirect to follow.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// `scheme://authority` of a URL (empty if it has none).
fn origin(url: &str) -> &str {
    let Some(at) = url.find("://") else {
        return "";
    };
    let rest = &url[at + 3..];
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |e| at + 3 + e);
    &url[..end]
}

/// Whether a URL is on the registry's own scheme and host.
fn same_origin(url: &str, base: &str) -> bool {
    origin(url).eq_ignore_ascii_case(base)
}

/// The path of a URL or of a registry path, without its query: what errors show.
fn path_of(url: &str) -> &str {
    let origin = origin(url);
    let rest = &url[origin.len()..];
    let path = rest.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Resolves `target` (absolute, `//host/…`, `/path`, or relative) against the URL `base`.
fn join(base: &str, target: &str) -> String {
    if target.contains("://") && !target.starts_with('/') {
        return target.to_owned();
    }
    let origin = origin(base);
    if let Some(rest) = target.strip_prefix("//") {
        let scheme = origin.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    if target.starts_with('/') {
        return format!("{origin}{target}");
    }
    let path = path_of(base);
    let dir = &path[..path.rfind('/').map_or(0, |at| at + 1)];
    format!("{origin}{dir}{target}")
}

/// Whether a registry host is reached over plain HTTP: `localhost`, `127.0.0.1`, `[::1]`,
/// with any port. Other addresses of `127.0.0.0/8` (`127.0.0.2`) are hosts like any other:
/// HTTPS, which is how a TLS set-up is tried on one machine.
fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        })
}

/// An `io::Error` back to an [`Error`]: the one it carries, or an I/O error.
fn from_io(e: io::Error, context: String) -> Error {
    if !e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        return Error::io(context, e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(err)) => *err,
        _ => Error::io(context, io::Error::from(kind)),
    }
}

/// A blob being read from a registry: at most its descriptor's size, resumed with `Range`
/// after a cut connection. The reader does not check the digest; what it feeds does.
///
/// Errors from `read` are `io::Error`s carrying an [`Error`] (`Error::Registry`,
/// `Error::SizeMismatch`) as their inner error, with the kind of the failure.
pub struct BlobReader {
    client: Client,
    reg: Arc<Registry>,
    repository: String,
    digest: Digest,
    size: u64,
    /// Bytes given so far.
    offset: u64,
    body: Option<BodyReader<'static>>,
    done: bool,
    budget: Budget,
}

impl fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobReader")
            .field("registry", &self.reg.name)
            .field("repository", &self.repository)
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl BlobReader {
    /// The blob's digest (as the descriptor names it).
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    /// # fn layer() -> layercake::archive::oci::Descriptor { unimplemented!() }
    ///
    /// let reader = Client::new().blob(&Reference::parse("busybox")?, &layer())?;
    /// println!("reading {}", reader.digest());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// How many bytes were read so far.
    ///
    /// ```no_run
    /// use std::io::Read;
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    /// # fn layer() -> layercake::archive::oci::Descriptor { unimplemented!() }
    ///
    /// let mut reader = Client::new().blob(&Reference::parse("busybox")?, &layer())?;
    /// reader.read_exact(&mut [0u8; 2])?;
    /// assert_eq!(reader.offset(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// (Re)opens the blob at the current offset.
    fn connect(&mut self) -> Result<()> {
        self.body = None;
        let url = format!("/v2/{}/blobs/{}", self.repository, self.digest);
        let mut op = Op::new(
            &self.repository,
            &Method::GET,
            &url,
            [pull_scope(&self.repository)],
        );
        let mut req = Req::new(Method::GET, url).follow();
        if self.offset > 0 {
            req = req.header("range", format!("bytes={}-", self.offset));
        }
        let client = &self.client;
        let reg = &self.reg;
        let mut response = client.execute(reg, &mut op, &req, &mut self.budget)?;
        let status = response.status().as_u16();
        let length = header(&response, "content-length").and_then(|l| l.parse::<u64>().ok());
        let skip = match status {
            200 => {
                if let Some(length) = length.filter(|l| *l != self.size) {
                    drain(&mut response);
                    return Err(Error::SizeMismatch {
                        what: format!("blob {} (Content-Length)", self.digest),
                        expected: self.size,
                        actual: length,
                    });
                }
                self.offset
            }
            206 if self.offset > 0 => {
                let range = header(&response, "content-range").unwrap_or_default();
                let start = range
                    .trim()
                    .strip_prefix("bytes")
                    .map(str::trim_start)
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(self.offset) {
                    drain(&mut response);
                    return Err(client.error(
                        reg,
                        &op,
                        Some(206),
                        None,
                        format!(
                            "asked for bytes from {}, got the range `{range}`",
                            self.offset
                        ),
                    ));
                }
                0
            }
            _ => return Err(client.status_error(reg, &op, &mut response)),
        };
        let mut body = response.into_body().into_reader();
        if skip > 0 {
            let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink()).unwrap_or(0);
            if skipped < skip {
                return Err(client.error(
                    reg,
                    &op,
                    None,
                    None,
                    format!("connection lost while skipping to byte {skip}"),
                ));
            }
        }
        self.body = Some(body);
        Ok(())
    }

    /// After a cut: asks again from the current offset, within the budget.
    fn resume(&mut self, cause: String) -> io::Result<()> {
        let mut cause = cause;
        loop {
            if !self.budget.pause(None) {
                let err = Error::Registry {
                    registry: self.reg.name.clone(),
                    repository: self.repository.clone(),
                    request: format!("GET /v2/{}/blobs/{}", self.repository, self.digest),
                    status: None,
                    code: None,
                    reason: format!(
                        "connection lost after {} of {} bytes, retries spent: {cause}",
                        self.offset, self.size
                    ),
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, err));
            }
            match self.connect() {
                Ok(()) => return Ok(()),
                Err(e @ Error::Registry { status: None, .. }) => cause = e.to_string(),
                Err(e) => return Err(io::Error::from(e)),
            }
        }
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                self.resume("the connection was closed".to_owned())?;
                continue;
            };
            let left = self.size - self.offset;
            if left == 0 {
                // The answer must end here.
                let mut probe = [0u8; 1];
                return match body.read(&mut probe) {
                    Ok(0) | Err(_) => {
                        self.done = true;
                        self.body = None;
                        Ok(0)
                    }
                    Ok(_) => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        Error::SizeMismatch {
                            what: format!("blob {}", self.digest),
                            expected: self.size,
                            actual: self.size + 1,
                        },
                    )),
                };
            }
            let want = left.min(buf.len() as u64) as usize;
            match body.read(&mut buf[..want]) {
                Ok(0) => self.resume(format!("the answer ended at byte {}", self.offset))?,
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e.to_string())?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.0.0.1:5000",
            "[::1]",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "docker.io",
            "quay.io:443",
            "10.0.0.1:5000",
            "localhost.example",
            "127.0.0.2:5000",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn urls() {
        let base = "http://127.0.0.1:5000/";
        assert_eq!(
            join(base, "/v2/a/blobs/uploads/x?_state=s"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=s"
        );
        assert_eq!(
            join(base, "https://s3.example/b?sig=1"),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(join("https://r/v2/a/tags/list", "//cdn/x"), "https://cdn/x");
        assert_eq!(
            join("https://r/v2/a/tags/list?n=1", "list?last=b"),
            "https://r/v2/a/tags/list?last=b"
        );
        assert_eq!(
            path_of("http://h:1/v2/a/blobs/uploads/u?_state=secret"),
            "/v2/a/blobs/uploads/u"
        );
        assert_eq!(path_of("/v2/?x"), "/v2/");
        assert_eq!(path_of("http://h"), "/");
        assert!(same_origin(
            "http://127.0.0.1:5000/v2/",
            "http://127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:5001/v2/",
            "http://127.0.0.1:5000"
        ));
        assert!(!same_origin(
            "https://127.0.0.1:5000/v2/",
            "http://127.0.0.1:5000"
        ));
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<x>; rel="prev", <y>; rel=next"#).as_deref(),
            Some("y")
        );
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link("<unterminated"), None);
    }

    #[test]
    fn error_bodies() {
        let (code, reason) = registry_errors(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(reason.as_deref(), Some(r#"manifest unknown: {"Tag":"x"}"#));
        assert_eq!(registry_errors(b"<html>"), (None, None));
        assert_eq!(registry_errors(br#"{"errors":[]}"#), (None, None));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date(""), None);
    }

    #[test]
    fn budgets_end() {
        let mut budget = Budget::new(&ClientOptions::new().retries(2, Duration::from_secs(5)));
        assert!(budget.pause(Some(Duration::ZERO)));
        assert!(
            !budget.pause(Some(Duration::from_secs(60))),
            "past the deadline"
        );
        assert!(budget.pause(Some(Duration::ZERO)));
        assert!(!budget.pause(Some(Duration::ZERO)), "count spent");
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Client>();
        send_sync::<ClientOptions>();
        send::<BlobReader>();
    }
}
