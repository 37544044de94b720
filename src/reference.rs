//! Image references (`busybox`, `quay.io/org/app:1.0@sha256:…`), parsed and normalised as
//! Docker does.
//!
//! The grammar is the one of the distribution project's `reference` package, which Docker,
//! containerd and skopeo share:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path
//! domain           := host [ ":" port ]
//! host             := domain-component ( "." domain-component )* | "[" ipv6 "]"
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//! port             := [0-9]+
//! path             := path-component ( "/" path-component )*
//! path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest           := algorithm ":" hex        (see `Digest`)
//! ```
//!
//! The parser below is written by hand from that grammar (no regular expressions).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Docker Hub's domain in the full form of a reference.
const DOCKER_HUB: &str = "docker.io";
/// The legacy name of Docker Hub, normalised to [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL: &str = "library/";
/// The tag a reference without tag or digest gets.
const DEFAULT_TAG: &str = "latest";
/// The longest name (`domain/path`) Docker accepts.
const NAME_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;
/// How many characters of a refused input an error shows.
const SHOWN_MAX: usize = 256;

/// An image reference in Docker's full, normalised form: a domain, a repository path, an
/// optional tag and an optional digest.
///
/// [`Reference::parse`] reads what people type and what tools write (`busybox`,
/// `user/app:1`, `localhost:5000/app`, `docker.io/library/busybox:latest@sha256:…`) the way
/// `docker pull` does (the distribution project's `ParseNormalizedNamed`): a name with no
/// registry is on Docker Hub (`docker.io`), a one-component name there is an official image
/// (`library/`), `index.docker.io` is `docker.io`, and a reference with neither tag nor digest
/// gets the tag `latest`. Two texts name the same image exactly when they parse to equal
/// `Reference`s, which is what [`Reference::matches`] asks.
///
/// `Display` (and serde) give the full form; [`Reference::familiar`] gives the short form
/// Docker shows. The value is immutable and cheap to clone (one `Arc`).
///
/// What you will not find here: resolving a reference against a registry or a store, image
/// ids (`sha256:…` or 64 hex characters alone, which Docker reads as an id and not as a
/// name), references with a digest and no name, or registry mirrors and search domains.
///
/// # Example
///
/// ```
/// use layercake::Reference;
///
/// let r: Reference = "busybox".parse()?;
/// assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
/// assert_eq!(r.familiar().to_string(), "busybox:latest");
/// assert_eq!((r.domain(), r.repository(), r.tag()), ("docker.io", "library/busybox", Some("latest")));
///
/// // The same image, however it is spelled.
/// assert!(r.matches("docker.io/library/busybox:latest"));
/// assert!(r.matches("index.docker.io/busybox"));
/// assert!(!r.matches("busybox:1.36"));
///
/// let local = Reference::parse("localhost:5000/team/app:v2")?;
/// assert_eq!((local.domain(), local.repository()), ("localhost:5000", "team/app"));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Reference {
    /// The full form: `domain/path[:tag][@digest]`.
    text: Arc<str>,
    /// `text[..domain_len]` is the domain.
    domain_len: usize,
    /// `text[..name_len]` is the name (`domain/path`).
    name_len: usize,
    /// The tag, if any, is `text[name_len + 1..name_len + 1 + tag_len]`.
    tag: Option<usize>,
    /// The digest, if any (also spelled at the end of `text`).
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as Docker does, filling in `docker.io`, `library/` and the tag
    /// `latest`.
    ///
    /// The first `/`-separated component is a registry domain if it contains a `.` or a
    /// `:`, is `localhost`, or has an uppercase letter; otherwise the reference is on
    /// `docker.io`, and a one-component path there gets `library/`. So `localhost/app` is on
    /// the registry `localhost`, but `localhost` alone is the image `library/localhost`, and
    /// `localhost:5000` alone is that image with the tag `5000`, as in Docker.
    ///
    /// When the text has neither a tag nor a digest, the tag `latest` is added (Docker's
    /// `TagNameOnly`). A reference with a digest and no tag gets no tag; one with both keeps
    /// both. Domains keep their case (`Registry.example.com` is not `registry.example.com`).
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// let r = Reference::parse("quay.io/org/app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")?;
    /// assert_eq!(r.domain(), "quay.io");
    /// assert_eq!(r.tag(), None, "a digest pins the image; no `latest` is added");
    /// assert!(r.digest().is_some());
    ///
    /// let err = Reference::parse("Busybox").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid reference `Busybox`: repository name must be lowercase");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] when the text does not follow the grammar (see its
    /// `reason`): empty; 64 lowercase hex characters alone (an image id, refused as Docker
    /// refuses it); uppercase in the repository path; a malformed domain, path component,
    /// tag or digest; a digest algorithm this crate does not support; a name (`domain/path`)
    /// longer than 255 characters. The error shows the input with control and other
    /// non-printable characters escaped, cut after 256 characters.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason| invalid(text, reason);
        if text.is_empty() {
            return Err(invalid("empty reference"));
        }
        if text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid(
                "a 64-character hex string is an image id, not a repository name",
            ));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        let (domain, remainder) = split_domain(rest);
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        if path.chars().any(char::is_uppercase) {
            return Err(invalid("repository name must be lowercase"));
        }
        match domain {
            Domain::Hub => {}
            Domain::Explicit(domain) => check_domain(domain).map_err(invalid)?,
            Domain::Uppercase(domain) => {
                if check_domain(domain).is_err() {
                    // Docker reads such a component as a domain only for its case; when it
                    // is not one, the case is what is wrong.
                    return Err(invalid("repository name must be lowercase"));
                }
            }
        }
        check_path(path).map_err(invalid)?;
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        let digest = digest
            .map(|d| parse_digest(d).map_err(invalid))
            .transpose()?;
        let domain = match domain {
            Domain::Hub | Domain::Explicit(DOCKER_HUB_LEGACY) => DOCKER_HUB,
            Domain::Explicit(domain) | Domain::Uppercase(domain) => domain,
        };
        // Official images: `docker.io/busybox` is `docker.io/library/busybox`.
        let prefix = if domain == DOCKER_HUB && !path.contains('/') {
            OFFICIAL
        } else {
            ""
        };
        if domain.len() + 1 + prefix.len() + path.len() > NAME_MAX {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG),
            (tag, _) => tag,
        };
        Ok(Reference::assemble(domain, prefix, path, tag, digest))
    }

    /// Builds the value from parts that are already checked.
    fn assemble(
        domain: &str,
        prefix: &str,
        path: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Reference {
        let mut text = format!("{domain}/{prefix}{path}");
        let name_len = text.len();
        if let Some(tag) = tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = digest {
            text.push('@');
            text.push_str(&digest.to_string());
        }
        Reference {
            text: text.into(),
            domain_len: domain.len(),
            name_len,
            tag: tag.map(str::len),
            digest,
        }
    }

    /// The registry: `docker.io`, `quay.io`, `localhost:5000`, `[::1]:5000`.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// // Which registry to ask, whatever the spelling.
    /// assert_eq!(Reference::parse("busybox")?.domain(), "docker.io");
    /// assert_eq!(Reference::parse("index.docker.io/user/app")?.domain(), "docker.io");
    /// assert_eq!(Reference::parse("127.0.0.1:5000/app")?.domain(), "127.0.0.1:5000");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn domain(&self) -> &str {
        &self.text[..self.domain_len]
    }

    /// The repository path within the registry: `library/busybox`, `org/team/app`.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// // The path a registry API call names (`/v2/<repository>/manifests/<tag>`).
    /// let r = Reference::parse("busybox:1.36")?;
    /// assert_eq!(format!("/v2/{}/manifests/{}", r.repository(), r.tag().unwrap()),
    ///            "/v2/library/busybox/manifests/1.36");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn repository(&self) -> &str {
        &self.text[self.domain_len + 1..self.name_len]
    }

    /// The full name, domain and repository: `docker.io/library/busybox`.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// // Two tags of one repository share a name.
    /// let a = Reference::parse("busybox:1.36")?;
    /// let b = Reference::parse("docker.io/library/busybox:musl")?;
    /// assert_eq!(a.name(), "docker.io/library/busybox");
    /// assert_eq!(a.name(), b.name());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.text[..self.name_len]
    }

    /// The tag, if any: `latest` when the text had neither tag nor digest.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// assert_eq!(Reference::parse("alpine")?.tag(), Some("latest"));
    /// assert_eq!(Reference::parse("alpine:3.20")?.tag(), Some("3.20"));
    /// let pinned = "alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// assert_eq!(Reference::parse(pinned)?.tag(), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tag(&self) -> Option<&str> {
        let start = self.name_len + 1;
        self.tag.map(|len| &self.text[start..start + len])
    }

    /// The digest, if any: the manifest the reference is pinned to.
    ///
    /// ```
    /// use layercake::{Digest, Reference};
    ///
    /// let manifest = Digest::sha256(b"{}");
    /// let r = Reference::parse(&format!("busybox:1.36@{manifest}"))?;
    /// // Check fetched manifest bytes against the pin.
    /// assert!(r.digest().unwrap().verify(b"{}"));
    /// assert_eq!(r.tag(), Some("1.36"), "tag and digest are both kept");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn digest(&self) -> Option<Digest> {
        self.digest
    }

    /// The short form Docker shows: `docker.io/` and `library/` left out, tag and digest kept.
    ///
    /// `busybox:latest`, `user/app:1`, `localhost:5000/app:1`. Parsing the familiar form gives
    /// this reference back. (Unlike Docker, the domain `docker.io` is kept when leaving it
    /// out would make the first path component read as a domain, as in
    /// `docker.io/my.org/app`.)
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// let r = Reference::parse("docker.io/library/busybox")?;
    /// assert_eq!(r.familiar().to_string(), "busybox:latest");
    /// assert_eq!(Reference::parse(&r.familiar().to_string())?, r);
    /// assert_eq!(Reference::parse("quay.io/org/app:1")?.familiar().to_string(), "quay.io/org/app:1");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn familiar(&self) -> Familiar<'_> {
        Familiar(self)
    }

    /// The familiar name (without tag and digest).
    fn familiar_name(&self) -> &str {
        if self.domain() != DOCKER_HUB {
            return self.name();
        }
        let path = self.repository();
        if let Some(short) = path.strip_prefix(OFFICIAL) {
            if !short.contains('/') {
                return short;
            }
        }
        match path.split_once('/') {
            Some((first, _)) if first.contains('.') || first == "localhost" => self.name(),
            _ => path,
        }
    }

    /// This reference with another tag; a digest stays.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// // Tag a build for release.
    /// let build = Reference::parse("registry.example.com/app:build-42")?;
    /// let release = build.with_tag("1.0")?;
    /// assert_eq!(release.to_string(), "registry.example.com/app:1.0");
    /// assert!(build.with_tag("-bad").is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] if `tag` is not 1 to 128 of ASCII letters, digits, `_`,
    /// `.` and `-`, starting with a letter, digit or `_`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        check_tag(tag).map_err(|reason| invalid(&format!("{}:{tag}", self.name()), reason))?;
        Ok(self.with(Some(tag), self.digest))
    }

    /// This reference pinned to a digest; a tag stays.
    ///
    /// ```
    /// use layercake::{Digest, Reference};
    ///
    /// // Record exactly which manifest `busybox:1.36` was when it was pulled.
    /// let pulled = Digest::sha256(b"manifest bytes");
    /// let r = Reference::parse("busybox:1.36")?.with_digest(pulled);
    /// assert_eq!(r.to_string(), format!("docker.io/library/busybox:1.36@{pulled}"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn with_digest(&self, digest: Digest) -> Reference {
        self.with(self.tag(), Some(digest))
    }

    fn with(&self, tag: Option<&str>, digest: Option<Digest>) -> Reference {
        Reference::assemble(self.domain(), "", self.repository(), tag, digest)
    }

    /// Whether `text`, parsed as [`Reference::parse`] does, names this reference.
    ///
    /// Any spelling Docker accepts matches: familiar or full, `index.docker.io`, with or
    /// without `library/`. A text without tag means `latest`, so it does not match a
    /// reference pinned by digest alone; text that does not parse matches nothing.
    ///
    /// ```
    /// use layercake::Reference;
    ///
    /// let r = Reference::parse("docker.io/library/redis:7")?;
    /// assert!(r.matches("redis:7"));
    /// assert!(r.matches("library/redis:7"));
    /// assert!(!r.matches("redis"), "that is redis:latest");
    /// assert!(!r.matches("Redis:7"), "not a reference at all");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn matches(&self, text: &str) -> bool {
        Reference::parse(text).is_ok_and(|other| other == *self)
    }
}

/// The short form of a [`Reference`] as Docker shows it, returned by [`Reference::familiar`].
///
/// A `Display` adaptor: nothing is allocated until it is formatted.
///
/// ```
/// use layercake::Reference;
///
/// let r = Reference::parse("docker.io/user/app:1")?;
/// assert_eq!(format!("pulling {}", r.familiar()), "pulling user/app:1");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Familiar<'a>(&'a Reference);

impl fmt::Display for Familiar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.familiar_name())?;
        // `:tag` and `@digest` as they stand in the full form.
        f.write_str(&self.0.text[self.0.name_len..])
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reference").field(&&*self.text).finish()
    }
}

// Everything else is derived from the full form, so the full form alone is compared.
impl PartialEq for Reference {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Reference {}

impl std::hash::Hash for Reference {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for Reference {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reference {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The error for refused `text`, which it shows escaped and cut short.
fn invalid(text: &str, reason: &'static str) -> Error {
    Error::InvalidReference {
        reference: shown(text),
        reason,
    }
}

/// `text` fit for a one-line message: control and other non-printable characters escaped
/// (`\n`, `\u{1b}`), backslashes doubled, at most [`SHOWN_MAX`] characters and then `…`.
fn shown(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    for c in text.chars() {
        let before = out.len();
        match c {
            // Printable; `escape_debug` would add a backslash.
            '"' | '\'' => out.push(c),
            _ => out.extend(c.escape_debug()),
        }
        count += out[before..].chars().count();
        if count > SHOWN_MAX {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

/// Checks an OCI ref name (the `org.opencontainers.image.ref.name` annotation of an image
/// layout's `index.json`) against the image-spec's grammar (annotations.md):
///
/// ```text
/// ref       ::= component ("/" component)*
/// component ::= alphanum (separator alphanum)*
/// alphanum  ::= [A-Za-z0-9]+
/// separator ::= [-._:@+] | "--"
/// ```
///
/// So `latest`, `v1.2.3` and containerd's `docker.io/library/busybox:latest` pass; an empty
/// name, spaces, control characters, `..` or a leading `-` do not.
///
/// # Errors
///
/// [`Error::InvalidReference`] showing the text escaped.
pub(crate) fn check_oci_ref_name(text: &str) -> Result<()> {
    fn component(c: &[u8]) -> bool {
        let mut i = 0;
        loop {
            let start = i;
            while i < c.len() && c[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i == start {
                return false;
            }
            if i == c.len() {
                return true;
            }
            if c[i..].starts_with(b"--") {
                i += 2;
            } else if b"-._:@+".contains(&c[i]) {
                i += 1;
            } else {
                return false;
            }
        }
    }
    if text.split('/').all(|c| component(c.as_bytes())) {
        Ok(())
    } else {
        Err(invalid(
            text,
            "not an OCI ref name (components of letters and digits joined by one of `-._:@+` or `--`)",
        ))
    }
}

/// Where the first component of a reference puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain<'a> {
    /// No domain: Docker Hub, the whole text is the path.
    Hub,
    /// A component that reads as a domain (`.`, `:` or `localhost`).
    Explicit(&'a str),
    /// A component that is a domain only because it has an uppercase letter.
    Uppercase(&'a str),
}

/// Splits `text` (without its digest) into a domain and the rest, as Docker's
/// `splitDockerDomain` decides it.
fn split_domain(text: &str) -> (Domain<'_>, &str) {
    match text.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Domain::Explicit(first), rest)
        }
        Some((first, rest)) if first.chars().any(char::is_uppercase) => {
            (Domain::Uppercase(first), rest)
        }
        _ => (Domain::Hub, text),
    }
}

/// Checks `host[:port]`, where host is DNS-like components or a bracketed IPv6 address.
fn check_domain(domain: &str) -> std::result::Result<(), &'static str> {
    const BAD: &str = "invalid registry domain";
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => {
            let (address, port) = bracketed.split_once(']').ok_or(BAD)?;
            let ok =
                !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
            (ok, port)
        }
        None => {
            let (host, port) = domain.split_at(domain.find(':').unwrap_or(domain.len()));
            (host.split('.').all(domain_component), port)
        }
    };
    if !host_ok {
        return Err(BAD);
    }
    match port.strip_prefix(':') {
        None if port.is_empty() => Ok(()),
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("registry port must be digits"),
    }
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// Checks a lowercase repository path: components joined by single `/`.
fn check_path(path: &str) -> std::result::Result<(), &'static str> {
    if path.is_empty() {
        return Err("repository name must have at least one component");
    }
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty path component");
        }
        if !path_component(component) {
            return Err(
                "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes",
            );
        }
    }
    Ok(())
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`.
fn path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'a'..=b'z' | b'0'..=b'9') {
            i += 1;
        }
        if i == start {
            // Empty, starting with a separator, two separators in a row, a trailing separator
            // or a character outside the alphabet.
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let start = i;
        while i < bytes.len() && matches!(bytes[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let separator = &bytes[start..i];
        let ok = matches!(separator, b"." | b"_" | b"__")
            || (!separator.is_empty() && separator.iter().all(|b| *b == b'-'));
        if !ok {
            return false;
        }
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> std::result::Result<(), &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match tag.as_bytes() {
        [] => Err("empty tag"),
        bytes if bytes.len() > TAG_MAX => Err("tag must not be more than 128 characters"),
        [first, rest @ ..]
            if word(*first) && rest.iter().all(|b| word(*b) || b"._-".contains(b)) =>
        {
            Ok(())
        }
        _ => {
            Err("tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`")
        }
    }
}

/// A digest in a reference, with the reason for the reference's error if it is refused.
fn parse_digest(text: &str) -> std::result::Result<Digest, &'static str> {
    text.parse().map_err(|e| match e {
        Error::UnsupportedAlgorithm { .. } => "unsupported digest algorithm",
        _ => "invalid digest",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn oci_ref_names() {
        for ok in [
            "latest",
            "v1.2.3",
            "1",
            "a--b",
            "a+b@c:d_e",
            "docker.io/library/busybox:latest",
            "UPPER",
        ] {
            assert!(check_oci_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a---b",
            "a..b",
            "a b",
            "a/",
            "/a",
            "a//b",
            "ta\u{1b}g",
            "caf\u{e9}",
        ] {
            let err = check_oci_ref_name(bad).unwrap_err();
            assert!(!err.to_string().contains('\u{1b}'), "{err}");
        }
    }

    fn sha(hex: &str) -> Digest {
        format!("sha256:{hex}").parse().unwrap()
    }

    /// A valid reference and what it parses to.
    struct Valid {
        input: String,
        full: String,
        familiar: String,
        domain: String,
        repository: String,
        tag: Option<String>,
        digest: Option<Digest>,
    }

    fn v(
        input: &str,
        full: &str,
        familiar: &str,
        domain: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Valid {
        Valid {
            input: input.to_owned(),
            full: full.to_owned(),
            familiar: familiar.to_owned(),
            domain: domain.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        }
    }

    #[rustfmt::skip]
    fn valid_cases() -> Vec<Valid> {
        let d = Some(sha(HEX));
        let at = format!("@sha256:{HEX}");
        let latest = Some("latest");
        vec![
            // docker.io and library/ defaults.
            v("busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", latest, None),
            v("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io", "library/busybox", Some("1.36"), None),
            v("library/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", latest, None),
            v("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", latest, None),
            v("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", latest, None),
            v("user/app:1", "docker.io/user/app:1", "user/app:1", "docker.io", "user/app", Some("1"), None),
            v("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", "docker.io", "library/a/b", latest, None),
            // index.docker.io is docker.io.
            v("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox", latest, None),
            v("index.docker.io/user/app:2", "docker.io/user/app:2", "user/app:2", "docker.io", "user/app", Some("2"), None),
            // Registries.
            v("localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost", "app", latest, None),
            v("localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000", "app", Some("1"), None),
            v("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000/a/b:latest", "127.0.0.1:5000", "a/b", latest, None),
            v("[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000", "app", Some("v1"), None),
            v("[fe80::1]/app", "[fe80::1]/app:latest", "[fe80::1]/app:latest", "[fe80::1]", "app", latest, None),
            v("quay.io/a/b/c", "quay.io/a/b/c:latest", "quay.io/a/b/c:latest", "quay.io", "a/b/c", latest, None),
            v("Registry.example.com/x", "Registry.example.com/x:latest", "Registry.example.com/x:latest", "Registry.example.com", "x", latest, None),
            v("Registry/x", "Registry/x:latest", "Registry/x:latest", "Registry", "x", latest, None),
            v("my-registry:443/team/app", "my-registry:443/team/app:latest", "my-registry:443/team/app:latest", "my-registry:443", "team/app", latest, None),
            // Docker reads a lone component as an image, even `localhost` (and `localhost:5000`
            // as the image `localhost` with the tag `5000`).
            v("localhost", "docker.io/library/localhost:latest", "localhost:latest", "docker.io", "library/localhost", latest, None),
            v("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost", Some("5000"), None),
            // Separators.
            v("a__b", "docker.io/library/a__b:latest", "a__b:latest", "docker.io", "library/a__b", latest, None),
            v("a-b", "docker.io/library/a-b:latest", "a-b:latest", "docker.io", "library/a-b", latest, None),
            v("a---b", "docker.io/library/a---b:latest", "a---b:latest", "docker.io", "library/a---b", latest, None),
            v("a.b", "docker.io/library/a.b:latest", "a.b:latest", "docker.io", "library/a.b", latest, None),
            v("a_b-c/d.e__f", "docker.io/a_b-c/d.e__f:latest", "a_b-c/d.e__f:latest", "docker.io", "a_b-c/d.e__f", latest, None),
            // A path that would read as a domain keeps docker.io in the familiar form.
            v("docker.io/my.org/app", "docker.io/my.org/app:latest", "docker.io/my.org/app:latest", "docker.io", "my.org/app", latest, None),
            v("docker.io/localhost/app", "docker.io/localhost/app:latest", "docker.io/localhost/app:latest", "docker.io", "localhost/app", latest, None),
            // Tags.
            v("a:_x", "docker.io/library/a:_x", "a:_x", "docker.io", "library/a", Some("_x"), None),
            v("a:X.y-Z_0", "docker.io/library/a:X.y-Z_0", "a:X.y-Z_0", "docker.io", "library/a", Some("X.y-Z_0"), None),
            // Digests: with a tag, both kept; alone, no `latest`.
            v(&format!("busybox:1.36{at}"), &format!("docker.io/library/busybox:1.36{at}"), &format!("busybox:1.36{at}"), "docker.io", "library/busybox", Some("1.36"), d),
            v(&format!("busybox{at}"), &format!("docker.io/library/busybox{at}"), &format!("busybox{at}"), "docker.io", "library/busybox", None, d),
            v(&format!("localhost:5000/app{at}"), &format!("localhost:5000/app{at}"), &format!("localhost:5000/app{at}"), "localhost:5000", "app", None, d),
            // A 64-hex name with a tag is a name (Docker refuses only the bare id).
            v(&format!("{HEX}:1"), &format!("docker.io/library/{HEX}:1"), &format!("{HEX}:1"), "docker.io", &format!("library/{HEX}"), Some("1"), None),
        ]
    }

    #[test]
    fn valid_references() {
        for case in valid_cases() {
            let r = Reference::parse(&case.input).unwrap_or_else(|e| panic!("{}: {e}", case.input));
            assert_eq!(r.to_string(), case.full, "{}", case.input);
            assert_eq!(r.familiar().to_string(), case.familiar, "{}", case.input);
            assert_eq!(r.domain(), case.domain, "{}", case.input);
            assert_eq!(r.repository(), case.repository, "{}", case.input);
            assert_eq!(
                r.name(),
                format!("{}/{}", case.domain, case.repository),
                "{}",
                case.input
            );
            assert_eq!(r.tag(), case.tag.as_deref(), "{}", case.input);
            assert_eq!(r.digest(), case.digest, "{}", case.input);
        }
    }

    #[test]
    fn full_and_familiar_forms_parse_back() {
        for case in valid_cases() {
            let r = Reference::parse(&case.input).unwrap();
            assert_eq!(
                Reference::parse(&r.to_string()).unwrap(),
                r,
                "{}",
                case.input
            );
            assert_eq!(
                Reference::parse(&r.familiar().to_string()).unwrap(),
                r,
                "{}",
                case.input
            );
            assert!(r.matches(&case.input), "{}", case.input);
            assert!(r.matches(&r.familiar().to_string()), "{}", case.input);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        }
    }

    #[test]
    #[rustfmt::skip]
    fn invalid_references() {
        let long_name = format!("registry.example.com/{}", "a".repeat(234));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty reference"),
            ("Busybox".into(), "repository name must be lowercase"),
            ("user/App".into(), "repository name must be lowercase"),
            ("quay.io/Org/app".into(), "repository name must be lowercase"),
            ("Foo_Bar/x".into(), "repository name must be lowercase"),
            ("a//b".into(), "empty path component"),
            ("a/".into(), "empty path component"),
            ("/a".into(), "empty path component"),
            ("quay.io/".into(), "repository name must have at least one component"),
            (":tag".into(), "repository name must have at least one component"),
            ("a:".into(), "empty tag"),
            (format!("a:{}", "t".repeat(129)), "tag must not be more than 128 characters"),
            ("a/b:c/d".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
            ("a:.x".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
            ("a:-x".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
            ("a:x:y".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
            ("a:t\u{e9}".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
            ("-a".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("a_".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("a___b".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("a..b".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("a._b".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("a b".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            (HEX.into(), "a 64-character hex string is an image id, not a repository name"),
            ("a@sha256:abc".into(), "invalid digest"),
            (format!("a@sha256:{}", HEX.to_uppercase()), "invalid digest"),
            ("a@".into(), "invalid digest"),
            ("a@blake3:abcdef0123456789abcdef0123456789".into(), "unsupported digest algorithm"),
            (format!("{long_name}b"), "repository name must not be more than 255 characters"),
            // Short names are counted in full: `docker.io/library/` counts.
            ("a".repeat(238), "repository name must not be more than 255 characters"),
            ("a..b/x".into(), "invalid registry domain"),
            ("-a.com/x".into(), "invalid registry domain"),
            ("[::1/x".into(), "invalid registry domain"),
            ("[]:5000/x".into(), "invalid registry domain"),
            ("::1/x".into(), "invalid registry domain"),
            ("[::1]x/y".into(), "registry port must be digits"),
            ("example.com:/x".into(), "registry port must be digits"),
            ("example.com:http/x".into(), "registry port must be digits"),
            ("a\nb".into(), "path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"),
            ("busybox:1\u{1b}[31m".into(), "tag must be ASCII letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"),
        ];
        for (input, reason) in &cases {
            match Reference::parse(input) {
                Err(Error::InvalidReference { reference, reason: got }) => {
                    assert_eq!(got, *reason, "{input:?}");
                    assert!(!reference.chars().any(char::is_control), "{reference:?}");
                }
                other => panic!("{input:?}: {other:?}"),
            }
        }
        // The longest names are accepted.
        assert!(Reference::parse(&long_name).is_ok());
        assert!(Reference::parse(&"a".repeat(237)).is_ok());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn errors_show_input_escaped_and_short() {
        let err = Reference::parse("a\nb\u{1b}[2m\u{7}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid reference `a\\nb\\u{1b}[2m\\u{7}`: path components are lowercase letters and digits joined by `.`, `_`, `__` or dashes"
        );
        let Error::InvalidReference { reference, .. } =
            Reference::parse(&format!("{}\u{0}", "x".repeat(100_000))).unwrap_err()
        else {
            panic!("wrong variant");
        };
        assert_eq!(reference.chars().count(), SHOWN_MAX + 1);
        assert!(reference.ends_with('…'));
        // An escape is not cut in half.
        let Error::InvalidReference { reference, .. } =
            Reference::parse(&"\u{0}".repeat(1000)).unwrap_err()
        else {
            panic!("wrong variant");
        };
        assert!(
            reference.trim_end_matches('…').ends_with("\\0"),
            "{reference}"
        );
        assert!(reference.chars().count() <= SHOWN_MAX + 1);
    }

    #[test]
    fn with_tag_and_digest() {
        let d = sha(HEX);
        let r = Reference::parse("busybox").unwrap();
        let pinned = r.with_digest(d);
        assert_eq!(pinned.tag(), Some("latest"));
        assert_eq!(pinned.digest(), Some(d));
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/busybox:latest@sha256:{HEX}")
        );
        let retagged = pinned.with_tag("1.36").unwrap();
        assert_eq!(retagged.digest(), Some(d));
        assert_eq!(
            retagged.familiar().to_string(),
            format!("busybox:1.36@sha256:{HEX}")
        );
        assert_eq!(
            retagged,
            Reference::parse(&format!("busybox:1.36@sha256:{HEX}")).unwrap()
        );
        let digest_only = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(digest_only.with_tag("x").unwrap().tag(), Some("x"));
        match r.with_tag("bad\ttag") {
            Err(Error::InvalidReference { reference, reason }) => {
                assert_eq!(reference, "docker.io/library/busybox:bad\\ttag");
                assert!(reason.starts_with("tag must be"));
            }
            other => panic!("{other:?}"),
        }
        assert!(r.with_tag("").is_err());
        assert!(r.with_tag(&"t".repeat(129)).is_err());
    }

    #[test]
    fn matches_any_spelling() {
        let r = Reference::parse("busybox").unwrap();
        for same in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox:latest",
            "docker.io/library/busybox",
            "index.docker.io/library/busybox:latest",
        ] {
            assert!(r.matches(same), "{same}");
        }
        for other in [
            "busybox:1",
            "quay.io/busybox",
            "user/busybox",
            "Busybox",
            "",
            "busybox@sha256:00",
        ] {
            assert!(!r.matches(other), "{other}");
        }
    }

    #[test]
    fn order_and_equality_follow_the_full_form() {
        let mut refs: Vec<Reference> = ["quay.io/a", "busybox:1", "alpine", "busybox"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        refs.sort();
        let shown: Vec<String> = refs.iter().map(|r| r.familiar().to_string()).collect();
        assert_eq!(
            shown,
            [
                "alpine:latest",
                "busybox:1",
                "busybox:latest",
                "quay.io/a:latest"
            ]
        );
        let set: std::collections::HashSet<Reference> =
            ["busybox", "docker.io/library/busybox:latest", "alpine"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        assert_eq!(set.len(), 2);
        assert_eq!(
            format!("{:?}", refs[0]),
            "Reference(\"docker.io/library/alpine:latest\")"
        );
    }

    #[test]
    fn serde_refuses_invalid() {
        assert!(serde_json::from_str::<Reference>("\"Busybox\"").is_err());
        assert!(serde_json::from_str::<Reference>("42").is_err());
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Reference>();
        check::<Familiar<'static>>();
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        fn check(text: &str) {
            match Reference::parse(text) {
                Ok(r) => {
                    assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{text:?}");
                    assert_eq!(
                        Reference::parse(&r.familiar().to_string()).unwrap(),
                        r,
                        "{text:?}"
                    );
                    assert!(r.name().len() <= NAME_MAX);
                    assert!(r.tag().is_some() || r.digest().is_some());
                }
                Err(Error::InvalidReference { reference, .. }) => {
                    assert!(!reference.chars().any(char::is_control), "{reference:?}");
                    assert!(reference.chars().count() <= SHOWN_MAX + 1);
                }
                Err(other) => panic!("{text:?}: {other:?}"),
            }
        }

        proptest! {
            #[test]
            fn any_text_never_panics(text in any::<String>()) {
                check(&text);
            }

            #[test]
            fn reference_alphabet_round_trips(text in "[a-cA-C0-9._:/@\\[\\]-]{0,24}") {
                check(&text);
            }

            #[test]
            fn reference_shapes_round_trip(
                text in "(([a-z]{1,3}\\.)?[a-zA-Z]{1,4}(:[0-9]{1,2})?/)?([a-z0-9]{1,3}([._-]|__|--)?){1,3}(/[a-z]{1,3}){0,2}(:[a-zA-Z0-9_.-]{1,5})?",
            ) {
                check(&text);
            }
        }
    }
}
