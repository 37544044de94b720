//! [`Client`]: one registry client for a program, talking to any number of registries:
//! requests with retries, auth driven by challenges, TLS per registry; the distribution
//! API's calls (manifests, blobs, uploads, mounts, tags).
//!
//! Submodules: `transport` (each registry's pool, TLS and endpoint; requests, retries,
//! errors) and `upload` (blobs and manifests put).

mod transport;
mod upload;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ureq::http::{Method, Response};
use ureq::tls::Certificate;
use ureq::{Body, BodyReader};

use super::auth::{lock, pull_scope};
use super::{Credentials, Transfer};
use crate::archive::oci::{
    Descriptor, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, INDEX_V1, MANIFEST_V1,
};
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::reference::Reference;
use transport::{drain, header, join, path_of};
pub(super) use transport::{read_limited, Budget, Op, Registry, Req};

/// How many pages of a tag list are read (a server that links page after page forever
/// stops here).
const MAX_TAG_PAGES: usize = 10_000;
/// What a manifest request accepts.
const ACCEPT: [&str; 4] = [
    MANIFEST_V1,
    INDEX_V1,
    DOCKER_MANIFEST_V2,
    DOCKER_MANIFEST_LIST,
];

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
    /// when it fits in the time left. The budget is per call. A blob read gets it whole
    /// again whenever bytes arrived since its last cut, so only cuts without progress use
    /// it up; an upload that starts over gets the whole time again for its new attempt,
    /// while the count still bounds the attempts.
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
        if let Some(pin) = reference
            .digest()
            .filter(|d| d.algorithm() != Algorithm::Sha256)
        {
            return Err(Error::UnsupportedAlgorithm {
                algorithm: pin.algorithm().as_str().to_owned(),
            });
        }
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
            last_cut: 0,
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
        let mut tags: Vec<String> = Vec::new();
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
            if seen.len() >= MAX_TAG_PAGES {
                return Err(Error::LimitExceeded {
                    limit: "tag list pages",
                    value: seen.len() as u64 + 1,
                    max: MAX_TAG_PAGES as u64,
                });
            }
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
    /// The offset of the last cut.
    last_cut: u64,
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
        // Retries bound cuts without progress: bytes since the last cut renew the budget.
        if self.offset > self.last_cut {
            self.budget.renew();
            self.last_cut = self.offset;
        }
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
    fn public_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Client>();
        send_sync::<ClientOptions>();
        send::<BlobReader>();
    }
}
