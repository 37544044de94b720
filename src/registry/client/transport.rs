//! How a [`Client`] reaches registries: each registry's connection pool and TLS, its
//! endpoint (pinged once), and every request: [`Client::execute`] (endpoint, auth, one
//! more try after a 401, redirects for reads) and [`Client::send`] (the one place where
//! requests are retried); the errors a response means.

use std::collections::BTreeSet;
use std::fmt;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::http::{self, Method, Response};
use ureq::{Agent, Body};

use super::{Client, ClientOptions};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::registry::auth::{self, lock, Challenge, TokenCache};
use crate::registry::credentials::{self, is_hub, Credentials};
use crate::registry::tls;

/// `User-Agent` of every request.
const USER_AGENT: &str = concat!("layercake/", env!("CARGO_PKG_VERSION"));
/// Docker Hub's API host.
const HUB_HOST: &str = "registry-1.docker.io";
/// How much of an error answer is read.
const ERROR_BYTES: u64 = 64 << 10;
/// How many redirects a read follows.
const MAX_REDIRECTS: usize = 10;
/// The first pause before a retry; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// The longest pause between two tries.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// One registry as a client knows it: where, how, and the tokens it gave.
pub(in crate::registry) struct Registry {
    /// As references name it: `docker.io`, `127.0.0.1:5000`.
    pub(in crate::registry) name: String,
    /// The API host: `registry-1.docker.io`, `127.0.0.1:5000`.
    host: String,
    /// Plain HTTP only (a loopback host).
    plain: bool,
    agent: Agent,
    /// Learnt by the ping: scheme and host, and the challenge.
    endpoint: Mutex<Option<Endpoint>>,
    credentials: Mutex<Option<Credentials>>,
    pub(in crate::registry) tokens: Mutex<TokenCache>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never waits: a ping in progress holds the endpoint.
        let endpoint = self.endpoint.try_lock().ok().and_then(|e| e.clone());
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("base", &endpoint.as_ref().map(|e| e.base.clone()))
            .field(
                "auth",
                &endpoint.and_then(|e| e.challenge.map(|c| c.scheme)),
            )
            .field("tokens", &self.tokens.try_lock().map(|t| t.len()).ok())
            .finish()
    }
}

impl Registry {
    /// Adopts the challenge of a 401 as the registry's.
    pub(in crate::registry) fn set_challenge(&self, challenge: Challenge) {
        if let Some(endpoint) = lock(&self.endpoint).as_mut() {
            endpoint.challenge = Some(challenge);
        }
    }
}

/// Where a registry answers (`https://host[:port]`) and how it wants auth.
#[derive(Debug, Clone)]
pub(in crate::registry) struct Endpoint {
    pub(in crate::registry) base: String,
    pub(in crate::registry) challenge: Option<Challenge>,
}

/// What a request is about, for errors and for auth: the repository, `METHOD /path`, the
/// scopes its token needs.
#[derive(Debug, Clone)]
pub(in crate::registry) struct Op<'a> {
    pub(in crate::registry) repository: &'a str,
    pub(in crate::registry) request: String,
    pub(in crate::registry) scopes: BTreeSet<String>,
}

impl<'a> Op<'a> {
    pub(in crate::registry) fn new(
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
pub(in crate::registry) struct Req<'a> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<&'a [u8]>,
    retry: bool,
    follow: bool,
}

impl<'a> Req<'a> {
    pub(in crate::registry) fn new(method: Method, url: String) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: None,
            retry: true,
            follow: false,
        }
    }

    pub(in crate::registry) fn header(
        mut self,
        name: &'static str,
        value: impl Into<String>,
    ) -> Req<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub(in crate::registry) fn body(mut self, body: &'a [u8]) -> Req<'a> {
        self.body = Some(body);
        self
    }

    /// Not retried: the caller starts over (an upload).
    pub(in crate::registry) fn once(mut self) -> Req<'a> {
        self.retry = false;
        self
    }

    /// Redirects followed (reads).
    pub(in crate::registry) fn follow(mut self) -> Req<'a> {
        self.follow = true;
        self
    }

    pub(in crate::registry) fn at(&self, url: String) -> Req<'a> {
        Req {
            url,
            ..self.clone()
        }
    }
}

/// The retries left to one call: a count, a deadline, the next pause.
#[derive(Debug)]
pub(in crate::registry) struct Budget {
    left: u32,
    deadline: Instant,
    delay: Duration,
    retries: u32,
    time: Duration,
}

impl Budget {
    pub(in crate::registry) fn new(options: &ClientOptions) -> Budget {
        let now = Instant::now();
        Budget {
            left: options.retries,
            deadline: now.checked_add(options.retry_time).unwrap_or(now),
            delay: FIRST_DELAY,
            retries: options.retries,
            time: options.retry_time,
        }
    }

    /// The time counted again from now (an upload starting over: its own requests get the
    /// whole time, however long the failed attempt took).
    pub(in crate::registry) fn restart_clock(&mut self) {
        let now = Instant::now();
        self.deadline = now.checked_add(self.time).unwrap_or(now);
    }

    /// All of it back (a blob read that made progress since its last cut).
    pub(in crate::registry) fn renew(&mut self) {
        self.restart_clock();
        self.left = self.retries;
        self.delay = FIRST_DELAY;
    }

    /// Waits before another try (`hint`, a `Retry-After`, or the backoff); `false`, without
    /// waiting, when the count or the time is spent.
    pub(in crate::registry) fn pause(&mut self, hint: Option<Duration>) -> bool {
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
    // ---------------------------------------------------------------------------------
    // The machinery: registries, endpoints, requests, retries, errors.

    /// The registry of a reference, and its repository.
    pub(in crate::registry) fn target<'r>(
        &self,
        reference: &'r Reference,
    ) -> Result<(Arc<Registry>, &'r str)> {
        Ok((self.registry(reference.domain())?, reference.repository()))
    }

    /// The registry named `name`, made on first use: its TLS settings and connection pool.
    pub(in crate::registry) fn registry(&self, name: &str) -> Result<Arc<Registry>> {
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
    pub(in crate::registry) fn credentials(&self, reg: &Registry) -> Result<Credentials> {
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
    pub(in crate::registry) fn endpoint(
        &self,
        reg: &Registry,
        budget: &mut Budget,
    ) -> Result<Endpoint> {
        let mut slot = lock(&reg.endpoint);
        if let Some(endpoint) = &*slot {
            return Ok(endpoint.clone());
        }
        let endpoint = self.ping_endpoint(reg, budget)?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// `GET /v2/` over HTTPS; for loopback hosts over plain HTTP, then HTTPS (verified as
    /// for any registry) if the server answers plain HTTP with 400, as a TLS server does;
    /// without TLS verification, HTTPS then plain HTTP. The challenge of a 401.
    pub(in crate::registry) fn ping_endpoint(
        &self,
        reg: &Registry,
        budget: &mut Budget,
    ) -> Result<Endpoint> {
        let schemes: &[&str] = if reg.plain {
            &["http", "https"]
        } else if self.options().tls_verify {
            &["https"]
        } else {
            &["https", "http"]
        };
        let op = Op::new("", &Method::GET, "/v2/", []);
        let mut failed: Option<(&str, Error)> = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let base = format!("{scheme}://{}", reg.host);
            let mut req = Req::new(Method::GET, format!("{base}/v2/"));
            let last = i + 1 == schemes.len();
            if !last {
                req = req.once();
            }
            match self.send(reg, &op, &req, None, budget) {
                // A TLS server asked in plain HTTP (Go answers 400): ask it in HTTPS.
                Ok(mut response)
                    if *scheme == "http" && !last && response.status().as_u16() == 400 =>
                {
                    drain(&mut response);
                }
                Ok(mut response) => {
                    let challenge = if response.status().as_u16() == 401 {
                        auth::pick(&response)
                    } else {
                        None
                    };
                    drain(&mut response);
                    return Ok(Endpoint { base, challenge });
                }
                Err(e @ Error::Registry { status: None, .. }) if !last => {
                    failed = Some((scheme, e))
                }
                Err(mut e) => {
                    // Both schemes failed: the message says what each answered.
                    if let (
                        Some((first_scheme, Error::Registry { reason: first, .. })),
                        Error::Registry { reason, .. },
                    ) = (&failed, &mut e)
                    {
                        *reason = format!(
                            "over {}: {first}; over {}: {reason}",
                            scheme_name(first_scheme),
                            scheme_name(scheme)
                        );
                    }
                    return Err(e);
                }
            }
        }
        Err(self.error(reg, &op, None, None, "no scheme to try".to_owned()))
    }

    /// A request to the registry: its endpoint, the auth its challenge asks (with one more
    /// try after a 401 that asks for more), redirects followed for reads. Answers any
    /// status below 500 but 401 and 429; those, and failures, are errors.
    pub(in crate::registry) fn execute(
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
    pub(in crate::registry) fn follow(
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
    pub(in crate::registry) fn send(
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
    pub(in crate::registry) fn get_json(
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
    pub(in crate::registry) fn location(
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
    pub(in crate::registry) fn error(
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
    pub(in crate::registry) fn status_error(
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
pub(in crate::registry) fn attempt(
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
pub(in crate::registry) fn transient(e: &ureq::Error) -> bool {
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
pub(in crate::registry) fn describe(e: &ureq::Error) -> String {
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

/// A 429's `Retry-After`: seconds, or an HTTP date.
pub(in crate::registry) fn retry_after(response: &Response<Body>) -> Option<Duration> {
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
pub(in crate::registry) fn http_date(text: &str) -> Option<i64> {
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
pub(in crate::registry) fn read_limited(
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
pub(in crate::registry) fn drain(response: &mut Response<Body>) {
    let _ = io::copy(
        &mut response.body_mut().as_reader().take(ERROR_BYTES),
        &mut io::sink(),
    );
}

/// The `code` and words of a registry's JSON error body.
pub(in crate::registry) fn registry_errors(body: &[u8]) -> (Option<String>, Option<String>) {
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
pub(in crate::registry) fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether a status is a redirect to follow.
pub(in crate::registry) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// `scheme://authority` of a URL (empty if it has none).
pub(in crate::registry) fn origin(url: &str) -> &str {
    let Some(at) = url.find("://") else {
        return "";
    };
    let rest = &url[at + 3..];
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |e| at + 3 + e);
    &url[..end]
}

/// Whether a URL is on the registry's own scheme and host.
pub(in crate::registry) fn same_origin(url: &str, base: &str) -> bool {
    origin(url).eq_ignore_ascii_case(base)
}

/// The path of a URL or of a registry path, without its query: what errors show.
pub(in crate::registry) fn path_of(url: &str) -> &str {
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
pub(in crate::registry) fn join(base: &str, target: &str) -> String {
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

/// How an error message names a scheme.
fn scheme_name(scheme: &str) -> &'static str {
    if scheme == "https" {
        "HTTPS"
    } else {
        "plain HTTP"
    }
}

/// Whether a registry host is asked in plain HTTP first (HTTPS if it answers that with 400): `localhost`, `127.0.0.1`, `[::1]`,
/// with any port. Other addresses of `127.0.0.0/8` (`127.0.0.2`) are hosts like any other:
/// HTTPS, which is how a TLS set-up is tried on one machine.
pub(in crate::registry) fn is_loopback(host: &str) -> bool {
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
    fn budgets_renew() {
        let mut budget = Budget::new(&ClientOptions::new().retries(1, Duration::from_secs(5)));
        assert!(budget.pause(Some(Duration::ZERO)));
        assert!(!budget.pause(Some(Duration::ZERO)));
        budget.renew();
        assert!(budget.pause(Some(Duration::ZERO)));
        budget.restart_clock();
        assert!(
            !budget.pause(Some(Duration::ZERO)),
            "the count is not given back"
        );
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
}
