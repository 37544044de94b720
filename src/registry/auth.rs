//! Auth driven by challenges: `WWW-Authenticate` parsed, the header each request carries
//! (none, basic, or a bearer token for its scopes), tokens fetched from the registry's token
//! server and cached per scope set, and the one retry after a 401 that asks for more.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;
use ureq::http::{Method, Response};
use ureq::Body;

use super::client::{Budget, Op, Registry, Req};
use super::{Client, Credentials};
use crate::error::{Error, Result};

/// How long a token lives when its server does not say (`expires_in`), as in Docker.
const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);
/// A cached token is not used within this much of its expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The `client_id` sent to an OAuth token server.
const CLIENT_ID: &str = "layercake";

/// One challenge of a `WWW-Authenticate` header: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Challenge {
    /// The scheme, lowercased (`basic`, `bearer`).
    pub(super) scheme: String,
    /// The parameters, names lowercased, values unquoted.
    pub(super) params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter's value (`realm`, `service`, `scope`, `error`).
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub(super) fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    pub(super) fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }

    /// The scopes the challenge names (`scope` holds several, separated by spaces).
    pub(super) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.param("scope").unwrap_or("").split_whitespace()
    }
}

/// Parses the challenges of one `WWW-Authenticate` header value (RFC 7235: `Scheme a=b,
/// c="d, \"e\"", Other x=y`). Lenient: unquoted values may hold `:` and `/` (a realm URL),
/// an unterminated quoted string runs to the end, a token68 is kept under the name `""`,
/// and nothing is ever refused: what cannot be read is skipped.
pub(super) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        at: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(|b| b.is_ascii_whitespace() || b == b',');
        if p.done() {
            return out;
        }
        let scheme = p.token();
        if scheme.is_empty() {
            // A stray `=` or `"`: skip one byte and go on.
            p.at += 1;
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        // Parameters: `name = value` separated by commas, until a token that is not followed
        // by `=` (the next challenge's scheme).
        loop {
            p.skip(|b| b.is_ascii_whitespace() || b == b',');
            if p.done() {
                break;
            }
            let start = p.at;
            let name = p.token();
            p.skip(|b| b == b' ' || b == b'\t');
            if p.peek() != Some(b'=') {
                if name.is_empty() {
                    // A quoted string where a name should be: skip it.
                    p.value();
                    continue;
                }
                p.at = start;
                break;
            }
            p.at += 1;
            if name.is_empty() || matches!(p.peek(), Some(b'=') | Some(b',') | None) {
                // A token68 (`abc==`): the name so far plus its `=` padding.
                p.skip(|b| b == b'=');
                challenge
                    .params
                    .insert(String::new(), header[start..p.at].trim().to_owned());
                continue;
            }
            p.skip(|b| b == b' ' || b == b'\t');
            let value = p.value();
            challenge.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(challenge);
    }
}

/// The byte cursor of [`parse_challenges`].
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.at >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn skip(&mut self, what: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&what) {
            self.at += 1;
        }
    }

    /// A token: anything up to whitespace, `,`, `=` or `"`.
    fn token(&mut self) -> String {
        let start = self.at;
        self.skip(|b| !(b.is_ascii_whitespace() || matches!(b, b',' | b'=' | b'"')));
        String::from_utf8_lossy(&self.s[start..self.at]).into_owned()
    }

    /// A value: a quoted string (escapes undone), or anything up to whitespace or `,`.
    fn value(&mut self) -> String {
        if self.peek() != Some(b'"') {
            let start = self.at;
            self.skip(|b| !(b.is_ascii_whitespace() || b == b','));
            return String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        }
        self.at += 1;
        let mut bytes = Vec::new();
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        bytes.push(escaped);
                        self.at += 1;
                    }
                }
                b => bytes.push(b),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The challenge to answer among those a response carries: bearer before basic, as
/// Docker prefers; `None` when there is neither.
pub(super) fn pick(response: &Response<Body>) -> Option<Challenge> {
    let mut all = Vec::new();
    for value in response.headers().get_all("www-authenticate") {
        if let Ok(text) = value.to_str() {
            all.extend(parse_challenges(text));
        }
    }
    let bearer = all.iter().position(Challenge::is_bearer);
    let basic = all.iter().position(Challenge::is_basic);
    bearer.or(basic).map(|at| all.swap_remove(at))
}

/// The scope to read a repository.
pub(super) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope to read and write a repository.
pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `Basic base64(user:password)`.
pub(super) fn basic(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// Percent-encodes a query component: everything but RFC 3986's unreserved characters.
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A token, and until when it may be sent.
#[derive(Clone)]
struct Token {
    value: String,
    until: Instant,
}

/// The bearer tokens of one registry, by sorted scope set.
#[derive(Default)]
pub(super) struct TokenCache {
    tokens: HashMap<Vec<String>, Token>,
}

impl TokenCache {
    fn get(&self, key: &[String]) -> Option<String> {
        self.tokens
            .get(key)
            .filter(|t| Instant::now() < t.until)
            .map(|t| t.value.clone())
    }

    fn insert(&mut self, key: Vec<String>, value: String, lifetime: Duration) {
        let until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        self.tokens.retain(|_, t| Instant::now() < t.until);
        self.tokens.insert(key, Token { value, until });
    }

    fn remove(&mut self, key: &[String]) {
        self.tokens.remove(key);
    }

    /// How many tokens are held (for `Debug`).
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }
}

/// The answer of a token server: `token` or `access_token`, and `expires_in`.
#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a token server's JSON answer: the token and its lifetime.
fn read_token(bytes: &[u8]) -> std::result::Result<(String, Duration), &'static str> {
    let answer: TokenAnswer =
        serde_json::from_slice(bytes).map_err(|_| "the token server's answer is not JSON")?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or("the token server's answer has no token")?;
    if token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the token server's token is not a header value");
    }
    let lifetime = match answer.expires_in {
        Some(0) | None => DEFAULT_EXPIRY,
        Some(secs) => Duration::from_secs(secs.min(u32::MAX as u64)),
    };
    Ok((token, lifetime))
}

/// The query or form of a token request: `service=S&scope=A&scope=B`.
fn token_query(service: Option<&str>, scopes: &[String]) -> String {
    let mut parts = Vec::new();
    if let Some(service) = service {
        parts.push(format!("service={}", encode(service)));
    }
    for scope in scopes {
        parts.push(format!("scope={}", encode(scope)));
    }
    parts.join("&")
}

/// How big a token server's answer may be.
const TOKEN_BYTES: u64 = 1 << 20;

impl Client {
    /// The `Authorization` header for a request needing `scopes`, as the registry's
    /// challenge asks: none, basic, or a bearer token (cached, or fetched now).
    pub(super) fn authorization(
        &self,
        reg: &Registry,
        challenge: Option<&Challenge>,
        op: &Op<'_>,
        budget: &mut Budget,
    ) -> Result<Option<String>> {
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        if challenge.is_basic() {
            return Ok(match self.credentials(reg)? {
                Credentials::Basic { username, password } => Some(basic(&username, &password)),
                _ => None,
            });
        }
        if !challenge.is_bearer() {
            return Ok(None);
        }
        let key: Vec<String> = op.scopes.iter().cloned().collect();
        if let Some(token) = lock(&reg.tokens).get(&key) {
            return Ok(Some(format!("Bearer {token}")));
        }
        let (token, lifetime) = self.fetch_token(reg, challenge, &key, op, budget)?;
        lock(&reg.tokens).insert(key, token.clone(), lifetime);
        Ok(Some(format!("Bearer {token}")))
    }

    /// Asks the token server of a bearer challenge for a token for these scopes: a GET
    /// (with basic auth when there are credentials), or with an identity token the OAuth
    /// POST Docker makes (falling back to a GET if the server has no such endpoint).
    fn fetch_token(
        &self,
        reg: &Registry,
        challenge: &Challenge,
        scopes: &[String],
        op: &Op<'_>,
        budget: &mut Budget,
    ) -> Result<(String, Duration)> {
        let realm = challenge.param("realm").unwrap_or("");
        let realm_path = realm_path(realm);
        let fail = |status: Option<u16>, reason: String| Error::Registry {
            registry: reg.name.clone(),
            repository: op.repository.to_owned(),
            request: format!("GET {realm_path}"),
            status,
            code: None,
            reason,
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(fail(
                None,
                format!("the bearer challenge names no token server URL (realm `{realm}`)"),
            ));
        }
        let service = challenge.param("service");
        let credentials = self.credentials(reg)?;
        let token_op = Op {
            repository: op.repository,
            request: format!("GET {realm_path}"),
            scopes: BTreeSet::new(),
        };
        let mut response = None;
        if let Credentials::IdentityToken(refresh) = &credentials {
            let mut form = format!(
                "grant_type=refresh_token&refresh_token={}&client_id={CLIENT_ID}",
                encode(refresh)
            );
            if let Some(service) = service {
                form.push_str(&format!("&service={}", encode(service)));
            }
            if !scopes.is_empty() {
                form.push_str(&format!("&scope={}", encode(&scopes.join(" "))));
            }
            let post_op = Op {
                request: format!("POST {realm_path}"),
                ..token_op.clone()
            };
            let req = Req::new(Method::POST, realm.to_owned())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.as_bytes());
            let answer = self.send(reg, &post_op, &req, None, budget)?;
            let status = answer.status().as_u16();
            if status != 404 && status != 405 {
                response = Some((answer, post_op));
            }
        }
        let (mut answer, answer_op) = match response {
            Some(found) => found,
            None => {
                let query = token_query(service, scopes);
                let url = match (query.is_empty(), realm.contains('?')) {
                    (true, _) => realm.to_owned(),
                    (false, true) => format!("{realm}&{query}"),
                    (false, false) => format!("{realm}?{query}"),
                };
                let auth = match &credentials {
                    Credentials::Basic { username, password } => Some(basic(username, password)),
                    Credentials::IdentityToken(token) => Some(basic("<token>", token)),
                    Credentials::Anonymous => None,
                };
                let req = Req::new(Method::GET, url);
                (
                    self.send(reg, &token_op, &req, auth.as_deref(), budget)?,
                    token_op,
                )
            }
        };
        let status = answer.status().as_u16();
        if status != 200 {
            return Err(self.status_error(reg, &answer_op, &mut answer));
        }
        let bytes = match super::client::read_limited(&mut answer, TOKEN_BYTES) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                let reason = "the token server's answer is over 1 MiB".to_owned();
                return Err(fail(Some(status), reason));
            }
            Err(e) => {
                let reason = format!("reading the token server's answer: {e}");
                return Err(fail(Some(status), reason));
            }
        };
        read_token(&bytes).map_err(|reason| fail(Some(status), reason.to_owned()))
    }

    /// After a 401: whether to try once more, having learnt from the challenge (a new
    /// realm or scheme, more scopes, a token that is no longer good).
    pub(super) fn reauthorize(
        &self,
        reg: &Registry,
        response: &Response<Body>,
        op: &mut Op<'_>,
        sent: bool,
    ) -> bool {
        let Some(challenge) = pick(response) else {
            return false;
        };
        let key: Vec<String> = op.scopes.iter().cloned().collect();
        lock(&reg.tokens).remove(&key);
        let retry = if challenge.is_bearer() {
            for scope in challenge.scopes() {
                op.scopes.insert(scope.to_owned());
            }
            true
        } else if challenge.is_basic() {
            // Sent credentials refused: they are wrong. None sent: send them if there are.
            !sent && matches!(self.credentials(reg), Ok(Credentials::Basic { .. }))
        } else {
            false
        };
        reg.set_challenge(challenge);
        retry
    }
}

/// The realm's path, for an error's `request` (no query: it may carry anything).
fn realm_path(realm: &str) -> String {
    let rest = realm
        .strip_prefix("https://")
        .or_else(|| realm.strip_prefix("http://"))
        .unwrap_or(realm);
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    path.split(['?', '#']).next().unwrap_or("/").to_owned()
}

/// Locks a mutex, taking the value even if another thread panicked holding it.
pub(super) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let mut all = parse_challenges(header);
        assert_eq!(all.len(), 1, "{header}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn docker_hub_bearer() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(
            c.scopes().collect::<Vec<_>>(),
            ["repository:library/busybox:pull"]
        );
    }

    #[test]
    fn basic_realm() {
        let c = one(r#"Basic realm="test""#);
        assert!(c.is_basic());
        assert_eq!(c.param("realm"), Some("test"));
    }

    #[test]
    fn scheme_and_names_are_case_insensitive() {
        let c = one(r#"BEARER Realm="r", SERVICE=s"#);
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("r"));
        assert_eq!(c.param("service"), Some("s"));
    }

    #[test]
    fn quoted_strings_with_escapes_and_commas() {
        let c = one(r#"Bearer realm="a \"quoted\", realm\\",service="x,y""#);
        assert_eq!(c.param("realm"), Some(r#"a "quoted", realm\"#));
        assert_eq!(c.param("service"), Some("x,y"));
    }

    #[test]
    fn unquoted_values_and_spaces_around_equals() {
        let c = one("Bearer realm = https://auth.example/token , service=reg.example");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("reg.example"));
    }

    #[test]
    fn several_scopes_and_an_error() {
        let c = one(
            r#"Bearer realm="https://t/token",service="s",scope="repository:a:pull,push repository:b:pull",error="insufficient_scope""#,
        );
        assert_eq!(
            c.scopes().collect::<Vec<_>>(),
            ["repository:a:pull,push", "repository:b:pull"]
        );
        assert_eq!(c.param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let all =
            parse_challenges(r#"Basic realm="b", Bearer realm="https://t/token",service="s""#);
        assert_eq!(all.len(), 2);
        assert!(all[0].is_basic());
        assert_eq!(all[0].param("realm"), Some("b"));
        assert!(all[1].is_bearer());
        assert_eq!(all[1].param("service"), Some("s"));
    }

    #[test]
    fn scheme_without_params_and_token68() {
        let all = parse_challenges("Negotiate, Other abc==, Basic realm=x");
        let schemes: Vec<_> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["negotiate", "other", "basic"]);
        assert_eq!(all[1].param(""), Some("abc=="));
        assert_eq!(all[2].param("realm"), Some("x"));
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        let c = one(r#"Bearer realm="https://t/tok"#);
        assert_eq!(c.param("realm"), Some("https://t/tok"));
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            ",,,",
            "=",
            "\"",
            "Bearer =",
            "Bearer ==,=\"",
            "Bearer realm=",
            "Bearer realm=\"\\",
            "\u{e9}t\u{e9} r\u{e9}alm=\u{e9}",
            "Bearer \"x\" realm=y",
        ] {
            let _ = parse_challenges(text);
        }
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Bearer realm=").len(), 1);
    }

    #[test]
    fn token_answers() {
        let (t, life) = read_token(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.as_str(), life), ("abc", Duration::from_secs(300)));
        let (t, life) = read_token(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((t.as_str(), life), ("xyz", DEFAULT_EXPIRY));
        let (t, _) = read_token(br#"{"token":"","access_token":"a"}"#).unwrap();
        assert_eq!(t, "a");
        assert!(read_token(br#"{"expires_in":3}"#).is_err());
        assert!(read_token(b"not json").is_err());
        assert!(read_token(br#"{"token":"a\nb"}"#).is_err());
    }

    #[test]
    fn token_cache_expires_early() {
        let mut cache = TokenCache::default();
        let key = vec![pull_scope("a")];
        cache.insert(key.clone(), "t".into(), Duration::from_secs(300));
        assert_eq!(cache.get(&key).as_deref(), Some("t"));
        assert_eq!(cache.get(&[push_scope("a")]), None);
        cache.insert(key.clone(), "short".into(), Duration::from_secs(20));
        assert_eq!(cache.get(&key), None, "within 30 s of expiry");
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            token_query(
                Some("reg service"),
                &[push_scope("a/b"), pull_scope("c")]
            ),
            "service=reg%20service&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Ac%3Apull"
        );
        assert_eq!(
            realm_path("https://auth.example:8443/v2/token?x=1"),
            "/v2/token"
        );
        assert_eq!(realm_path("http://auth"), "/");
    }
}
