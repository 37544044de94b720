//! The registry client's protocol layer against a real registry (`docker-registry` 2.8,
//! plain HTTP; TLS with a test CA's certificate and htpasswd basic auth, both from
//! `common::registry`), and against a small fake server for what a real one will not do on
//! demand (cut connections, 5xx, 429).
#![cfg(feature = "registry")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::registry::{noise, Registry, Setup};
use common::TempDir;
use layercake::archive::oci::{Descriptor, CONFIG_V1, MANIFEST_V1};
use layercake::registry::{login, logout, Client, ClientOptions, Transfer};
use layercake::{Digest, Error, Reference};

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// `HOST:PORT/name` on the registry, parsed.
fn reference(registry: &Registry, name: &str) -> Reference {
    Reference::parse(&registry.reference(name)).unwrap()
}

/// How many requests the registry's access log shows with this method and path prefix.
fn requests(registry: &Registry, method: &str, prefix: &str) -> usize {
    registry
        .access_log()
        .iter()
        .filter(|a| a.method == method && a.path.starts_with(prefix))
        .count()
}

/// Options that read no credential file of the machine's.
fn isolated(scratch: &TempDir) -> ClientOptions {
    ClientOptions::new()
        .auth_file(scratch.join("no-such-auth.json"))
        .retries(2, Duration::from_secs(10))
}

fn push(client: &Client, to: &Reference, media_type: &str, bytes: &[u8]) -> (Descriptor, Transfer) {
    let desc = Descriptor::of(media_type, bytes);
    let owned = bytes.to_vec();
    let transfer = client
        .put_blob(
            to,
            &desc,
            &[],
            &mut || Ok(Box::new(std::io::Cursor::new(owned.clone()))),
            &mut |_| {},
        )
        .unwrap();
    (desc, transfer)
}

/// `put_blob` offering a mount from `from`, with a source that must not be read.
fn mount(client: &Client, to: &Reference, desc: &Descriptor, from: &str) -> Transfer {
    client
        .put_blob(
            to,
            desc,
            &[from.to_owned()],
            &mut || panic!("a mounted blob is not read"),
            &mut |_| {},
        )
        .unwrap()
}

fn read_blob(client: &Client, from: &Reference, desc: &Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .blob(from, desc)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn manifest_for(config: &Descriptor, layers: &[&Descriptor]) -> Bytes {
    let json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_V1,
        "config": config,
        "layers": layers,
    });
    Bytes::from(serde_json::to_vec_pretty(&json).unwrap())
}

#[test]
fn push_and_read_back_over_plain_http() {
    let registry = Registry::start(Setup::Plain);
    let scratch = TempDir::new("plain-client");
    let client = Client::with_options(isolated(&scratch));
    let a = reference(&registry, "test/a:v1");

    // A small blob goes in one PUT.
    let small = noise(1, 1000);
    let (small_desc, transfer) = push(&client, &a, LAYER, &small);
    assert_eq!(
        transfer,
        Transfer::Done {
            digest: small_desc.digest,
            size: 1000
        }
    );
    assert_eq!(
        requests(&registry, "PATCH", "/v2/test/a/blobs/uploads/"),
        0,
        "{:?}",
        registry.access_log()
    );
    assert_eq!(client.has_blob(&a, small_desc.digest).unwrap(), Some(1000));
    assert_eq!(read_blob(&client, &a, &small_desc), small);

    // A 9 MiB blob goes in 4 MiB chunks, progress heard after each.
    let big = noise(2, 9 << 20);
    let big_desc = Descriptor::of(LAYER, &big);
    let mut heard = Vec::new();
    let transfer = client
        .put_blob(
            &a,
            &big_desc,
            &[],
            &mut || Ok(Box::new(std::io::Cursor::new(big.clone()))),
            &mut |sent| heard.push(sent),
        )
        .unwrap();
    assert_eq!(
        transfer,
        Transfer::Done {
            digest: big_desc.digest,
            size: 9 << 20
        }
    );
    assert_eq!(heard, [4 << 20, 8 << 20, 9 << 20]);
    assert_eq!(
        requests(&registry, "PATCH", "/v2/test/a/blobs/uploads/"),
        3,
        "{:?}",
        registry.access_log()
    );
    assert_eq!(client.has_blob(&a, big_desc.digest).unwrap(), Some(9 << 20));
    assert!(
        read_blob(&client, &a, &big_desc) == big,
        "the 9 MiB blob reads back"
    );

    // What is not there.
    assert_eq!(
        client.has_blob(&a, Digest::sha256(b"nothing")).unwrap(),
        None
    );

    // A manifest: put, HEAD, GET by tag and by digest, bytes exact.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let (config_desc, _) = push(&client, &a, CONFIG_V1, config);
    assert_eq!(
        &client.small_blob(&a, &config_desc).unwrap()[..],
        &config[..]
    );
    let manifest = manifest_for(&config_desc, &[&small_desc, &big_desc]);
    let digest = client.put_manifest(&a, MANIFEST_V1, &manifest).unwrap();
    assert_eq!(digest, Digest::sha256(&manifest));
    let head = client.head_manifest(&a).unwrap().expect("the tag is there");
    assert_eq!(
        (head.media_type.as_str(), head.digest, head.size),
        (MANIFEST_V1, digest, manifest.len() as u64)
    );
    let (desc, bytes) = client.manifest(&a).unwrap();
    assert_eq!(bytes, manifest, "bytes exactly as put");
    assert_eq!(
        (desc.media_type.as_str(), desc.digest),
        (MANIFEST_V1, digest)
    );
    let pinned = a.with_digest(digest);
    assert_eq!(client.manifest(&pinned).unwrap().1, manifest);
    let by_digest = reference(&registry, &format!("test/a@{digest}"));
    assert_eq!(
        client.head_manifest(&by_digest).unwrap().unwrap().digest,
        digest
    );
    assert_eq!(client.tags(&a).unwrap(), ["v1"]);

    // A missing tag: None from HEAD, a 404 error with the registry's code from GET.
    let missing = reference(&registry, "test/a:nope");
    assert_eq!(client.head_manifest(&missing).unwrap(), None);
    match client.manifest(&missing).unwrap_err() {
        Error::Registry {
            status,
            code,
            request,
            ..
        } => {
            assert_eq!(status, Some(404));
            assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
            assert_eq!(request, "GET /v2/test/a/manifests/nope");
        }
        e => panic!("{e}"),
    }

    // A source that is not what the descriptor says: refused before the registry sees it.
    let lie = |promised: &[u8], given: &'static [u8]| {
        let liar = Descriptor::of(LAYER, promised);
        client
            .put_blob(&a, &liar, &[], &mut || Ok(Box::new(given)), &mut |_| {})
            .unwrap_err()
    };
    let err = lie(b"promised", b"given");
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    let err = lie(b"same size", b"SAME SIZE");
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    // A mount from another repository of the registry.
    let b = reference(&registry, "test/b:v1");
    let transfer = mount(&client, &b, &big_desc, "test/a");
    assert_eq!(
        transfer,
        Transfer::Mounted {
            digest: big_desc.digest,
            from: "test/a".to_owned()
        }
    );
    assert_eq!(client.has_blob(&b, big_desc.digest).unwrap(), Some(9 << 20));
    // A source that does not have the blob: uploaded instead.
    let fresh = noise(3, 100);
    let fresh_desc = Descriptor::of(LAYER, &fresh);
    let transfer = client
        .put_blob(
            &b,
            &fresh_desc,
            &["test/a".to_owned()],
            &mut || Ok(Box::new(std::io::Cursor::new(fresh.clone()))),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        transfer,
        Transfer::Done {
            digest: fresh_desc.digest,
            size: 100
        }
    );
    assert_eq!(read_blob(&client, &b, &fresh_desc), fresh);

    // Debug shows the registry, not secrets.
    let shown = format!("{client:?}");
    assert!(shown.contains(&registry.host()), "{shown}");
}

#[test]
fn tls_with_basic_auth_and_login() {
    // 127.0.0.2: a loopback address that is not plain HTTP to the client, so HTTPS is asked
    // and verified at once, as for a registry elsewhere.
    let registry = Registry::start_on(Setup::TlsBasic, "127.0.0.2");
    let scratch = TempDir::new("tls-client");
    let certs = registry.cert_dir();
    let a = reference(&registry, "secure/app:1");
    let host = registry.host();
    let (user, pass) = (registry.username(), registry.password());

    // Right credentials, the CA from --cert-dir.
    let client = Client::with_options(isolated(&scratch).cert_dir(&certs).credentials(user, pass));
    client.ping(&host).unwrap();
    let data = noise(4, 5000);
    let (desc, transfer) = push(&client, &a, LAYER, &data);
    assert!(matches!(transfer, Transfer::Done { .. }));
    assert_eq!(read_blob(&client, &a, &desc), data);
    assert!(
        !format!("{client:?}").contains(pass),
        "no password in Debug"
    );

    // Wrong password: the registry's 401.
    let wrong = Client::with_options(
        isolated(&scratch)
            .cert_dir(&certs)
            .credentials(user, "nope"),
    );
    match wrong.has_blob(&a, desc.digest).unwrap_err() {
        Error::Registry {
            status,
            registry: name,
            ..
        } => {
            assert_eq!(status, Some(401));
            assert_eq!(name, host);
        }
        e => panic!("{e}"),
    }
    assert!(matches!(
        wrong.ping(&host),
        Err(Error::Registry {
            status: Some(401),
            ..
        })
    ));
    // No credentials at all: 401 too.
    let anonymous = Client::with_options(isolated(&scratch).cert_dir(&certs));
    assert!(matches!(
        anonymous.has_blob(&a, desc.digest),
        Err(Error::Registry {
            status: Some(401),
            ..
        })
    ));

    // Without the CA the certificate is refused (no answer: no status)...
    let untrusting = Client::with_options(isolated(&scratch).credentials(user, pass));
    match untrusting.ping(&host).unwrap_err() {
        Error::Registry { status: None, .. } => {}
        e => panic!("{e}"),
    }
    // ...unless verification is off.
    let insecure =
        Client::with_options(isolated(&scratch).tls_verify(false).credentials(user, pass));
    assert_eq!(insecure.has_blob(&a, desc.digest).unwrap(), Some(5000));

    // A client certificate beside the CA is loaded (the registry asks for none); one whose
    // key is another's is refused with the file named, not a panic at the handshake.
    let pairs = TempDir::new("pairs");
    let file = |name: &str| registry.tls_file(name);
    std::fs::copy(file("ca.crt"), pairs.join("ca.crt")).unwrap();
    std::fs::copy(file("domain.crt"), pairs.join("client.cert")).unwrap();
    std::fs::copy(file("domain.key"), pairs.join("client.key")).unwrap();
    let with_pair = Client::with_options(
        isolated(&scratch)
            .cert_dir(pairs.path())
            .credentials(user, pass),
    );
    with_pair.ping(&host).unwrap();
    std::fs::copy(file("ca.key"), pairs.join("client.key")).unwrap();
    let mismatched = Client::with_options(
        isolated(&scratch)
            .cert_dir(pairs.path())
            .credentials(user, pass),
    );
    let err = mismatched.ping(&host).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("client.cert"), "{err}");
    std::fs::remove_file(pairs.join("client.key")).unwrap();
    let err = mismatched.ping(&host).unwrap_err();
    assert!(err.to_string().contains("missing key"), "{err}");

    // login writes an auth file that a second client authenticates from.
    let auth = scratch.join("config/auth.json");
    std::fs::create_dir_all(scratch.join("config")).unwrap();
    std::fs::write(
        &auth,
        r#"{"auths":{"other.example":{"auth":"eDp5"}},"credsStore":""}"#,
    )
    .unwrap();
    let plain = Client::with_options(isolated(&scratch).cert_dir(&certs));
    let err = login(&plain, &host, user, "nope", Some(&auth)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Registry {
                status: Some(401),
                ..
            }
        ),
        "{err}"
    );
    let written = login(&plain, &host, user, pass, Some(&auth)).unwrap();
    assert_eq!(written, auth);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(
        json["auths"][host.as_str()]["auth"],
        "bGMtdXNlcjpsYy1zZWNyZXQ=",
        "base64(lc-user:lc-secret)"
    );
    assert_eq!(
        json["auths"]["other.example"]["auth"], "eDp5",
        "other entries kept"
    );
    assert_eq!(json["credsStore"], "", "other keys kept");
    assert_eq!(
        std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let from_file = Client::with_options(
        ClientOptions::new()
            .auth_file(&auth)
            .cert_dir(&certs)
            .retries(1, Duration::from_secs(5)),
    );
    assert_eq!(read_blob(&from_file, &a, &desc), data);

    assert!(logout(&host, Some(&auth)).unwrap());
    assert!(!logout(&host, Some(&auth)).unwrap());
    let logged_out = Client::with_options(ClientOptions::new().auth_file(&auth).cert_dir(&certs));
    assert!(matches!(
        logged_out.has_blob(&a, desc.digest),
        Err(Error::Registry {
            status: Some(401),
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// A fake registry, for failures on demand.

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query.
    path: String,
    range: Option<String>,
    authorization: Option<String>,
    body: String,
    /// The fake's own `127.0.0.1:PORT`.
    host: String,
}

/// A server on a free 127.0.0.1 port answering each request (one per connection) with the
/// raw bytes `answer` gives for it and the number of requests before it.
struct Fake {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(answer: impl Fn(&Seen, usize) -> Vec<u8> + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let own = host.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_owned();
                let path = parts.next().unwrap_or("").to_owned();
                let (mut range, mut authorization, mut length) = (None, None, 0);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        let value = value.trim().to_owned();
                        match name.to_ascii_lowercase().as_str() {
                            "range" => range = Some(value),
                            "authorization" => authorization = Some(value),
                            "content-length" => length = value.parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let body = String::from_utf8_lossy(&body).into_owned();
                let request = Seen {
                    method,
                    path,
                    range,
                    authorization,
                    body,
                    host: own.clone(),
                };
                let count = {
                    let mut log = log.lock().unwrap();
                    log.push(request.clone());
                    log.len() - 1
                };
                let _ = stream.write_all(&answer(&request, count));
                let _ = stream.flush();
            }
        });
        Fake { host, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn reference(&self) -> Reference {
        Reference::parse(&format!("{}/fake/repo:v1", self.host)).unwrap()
    }
}

fn reply(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn fast(scratch: &TempDir) -> Client {
    Client::with_options(isolated(scratch).retries(4, Duration::from_secs(20)))
}

#[test]
fn blob_reads_resume_with_range_after_a_cut() {
    let data = noise(5, 100_000);
    let served = data.clone();
    let fake = Fake::start(move |req, _| {
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        match &req.range {
            // The first answer promises everything and stops a third of the way.
            None => {
                let len = ("Content-Length", served.len().to_string());
                let mut out = reply("200 OK", &[len], b"");
                out.extend_from_slice(&served[..served.len() / 3]);
                out
            }
            Some(range) => {
                let start: usize = range
                    .trim_start_matches("bytes=")
                    .trim_end_matches('-')
                    .parse()
                    .unwrap();
                let headers = [
                    ("Content-Length", (served.len() - start).to_string()),
                    (
                        "Content-Range",
                        format!("bytes {start}-{}/{}", served.len() - 1, served.len()),
                    ),
                ];
                reply("206 Partial Content", &headers, &served[start..])
            }
        }
    });
    let scratch = TempDir::new("resume");
    let client = fast(&scratch);
    let desc = Descriptor::of(LAYER, &data);
    assert_eq!(read_blob(&client, &fake.reference(), &desc), data);
    assert!(
        fake.seen().iter().all(|s| s.method == "GET"),
        "{:?}",
        fake.seen()
    );
    let ranges: Vec<_> = fake.seen().into_iter().filter_map(|s| s.range).collect();
    assert_eq!(ranges, [format!("bytes={}-", data.len() / 3)]);
}

#[test]
fn blob_reads_skip_when_the_server_ignores_range() {
    let data = noise(6, 50_000);
    let served = data.clone();
    let fake = Fake::start(move |req, _| {
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        let len = ("Content-Length", served.len().to_string());
        let mut out = reply("200 OK", &[len], b"");
        if req.range.is_none() {
            out.extend_from_slice(&served[..1000]);
        } else {
            out.extend_from_slice(&served);
        }
        out
    });
    let scratch = TempDir::new("skip");
    let desc = Descriptor::of(LAYER, &data);
    assert_eq!(read_blob(&fast(&scratch), &fake.reference(), &desc), data);
}

#[test]
fn blob_reads_refuse_more_than_the_size() {
    let data = noise(7, 3000);
    let served = data.clone();
    let fake = Fake::start(move |req, _| {
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        // No Content-Length: the body runs to the close, one byte too long.
        let mut out = reply("200 OK", &[], b"");
        out.extend_from_slice(&served);
        out.push(0);
        out
    });
    let scratch = TempDir::new("long");
    let client = fast(&scratch);
    let desc = Descriptor::of(LAYER, &data);
    let mut out = Vec::new();
    let err = client
        .blob(&fake.reference(), &desc)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
    assert!(matches!(*inner, Error::SizeMismatch { .. }), "{inner}");
    assert!(out.len() <= data.len());
}

#[test]
fn retries_after_5xx_and_429_then_gives_up() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
    let fake = Fake::start(move |req, count| {
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        if req.path.ends_with("/manifests/always-down") {
            let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}"#;
            return reply(
                "503 Service Unavailable",
                &[("Content-Type", "application/json".into())],
                body,
            );
        }
        match count {
            1 => reply("503 Service Unavailable", &[], b""),
            2 => reply("429 Too Many Requests", &[("Retry-After", "1".into())], b""),
            _ => reply(
                "200 OK",
                &[
                    ("Content-Type", MANIFEST_V1.into()),
                    ("Content-Length", manifest.len().to_string()),
                    (
                        "Docker-Content-Digest",
                        Digest::sha256(manifest).to_string(),
                    ),
                ],
                manifest,
            ),
        }
    });
    let scratch = TempDir::new("retry");
    let client = fast(&scratch);
    let started = Instant::now();
    let (desc, bytes) = client.manifest(&fake.reference()).unwrap();
    assert_eq!(&bytes[..], &manifest[..]);
    assert_eq!(desc.digest, Digest::sha256(manifest));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was waited for"
    );
    assert_eq!(fake.seen().len(), 4, "{:?}", fake.seen());

    let quick = Client::with_options(isolated(&scratch).retries(1, Duration::from_secs(5)));
    let down = Reference::parse(&format!("{}/fake/repo:always-down", fake.host)).unwrap();
    match quick.manifest(&down).unwrap_err() {
        Error::Registry {
            status,
            code,
            reason,
            ..
        } => {
            assert_eq!(status, Some(503));
            assert_eq!(code.as_deref(), Some("UNAVAILABLE"));
            assert_eq!(reason, "service unavailable");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn manifests_are_checked_against_pins_and_claims() {
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let fake = Fake::start(move |req, _| {
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        // A generic type: the document's own mediaType is taken.
        let mut headers = vec![("Content-Type", "application/json".to_owned())];
        if req.path.ends_with("/misnamed") {
            let claim = Digest::sha256(b"something else").to_string();
            headers.push(("Docker-Content-Digest", claim));
        }
        reply("200 OK", &headers, manifest)
    });
    let scratch = TempDir::new("checked");
    let client = fast(&scratch);
    let repo = format!("{}/fake/repo", fake.host);

    let (desc, bytes) = client
        .manifest(&Reference::parse(&format!("{repo}:generic")).unwrap())
        .unwrap();
    assert_eq!(&bytes[..], &manifest[..]);
    assert_eq!(desc.media_type, MANIFEST_V1);

    let err = client
        .manifest(&Reference::parse(&format!("{repo}:misnamed")).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");

    let pinned = format!("{repo}@{}", Digest::sha256(b"another manifest"));
    let err = client
        .manifest(&Reference::parse(&pinned).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
}

/// A registry with a token server (both fakes): the challenge, the token request (its
/// service, scopes, credentials), the cache, one retry for more scope, a mount's two
/// scopes in one token, and the OAuth POST of an identity token.
#[test]
fn bearer_tokens_from_a_token_server() {
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let fake = Fake::start(move |req, _| {
        let challenge = |extra: &str| {
            let value = format!(
                r#"Bearer realm="http://{}/token",service="fake"{extra}"#,
                req.host
            );
            reply("401 Unauthorized", &[("WWW-Authenticate", value)], b"")
        };
        if req.path.starts_with("/token") {
            if req.method == "POST" {
                // The OAuth form of an identity token: answered with access_token only.
                if !req.body.contains("grant_type=refresh_token")
                    || !req.body.contains("refresh_token=idtok")
                {
                    return reply("400 Bad Request", &[], b"");
                }
                let token = format!(r#"{{"access_token":"t.post.{}"}}"#, req.body.len());
                return reply(
                    "200 OK",
                    &[("Content-Type", "application/json".into())],
                    token.as_bytes(),
                );
            }
            if req
                .authorization
                .as_deref()
                .is_some_and(|a| a != "Basic dXNlcjpwYXNz")
            {
                return reply("401 Unauthorized", &[], br#"{"details":"bad credentials"}"#);
            }
            let query = req.path.split_once('?').map_or("", |(_, q)| q);
            let token = format!(r#"{{"token":"t.{query}","expires_in":300}}"#);
            return reply(
                "200 OK",
                &[("Content-Type", "application/json".into())],
                token.as_bytes(),
            );
        }
        let token = req.authorization.clone().unwrap_or_default();
        if !token.starts_with("Bearer t.") {
            return challenge("");
        }
        if req.path == "/v2/" {
            return reply("200 OK", &[], b"");
        }
        if req.path.starts_with("/v2/fake/repo/manifests/") {
            return reply("200 OK", &[("Content-Type", MANIFEST_V1.into())], manifest);
        }
        if req.path.starts_with("/v2/fake/repo/tags/list") {
            // Listing wants push here, to see the client ask again.
            if !token.contains("pull%2Cpush") && !token.starts_with("Bearer t.post") {
                return challenge(
                    r#",scope="repository:fake/repo:pull,push",error="insufficient_scope""#,
                );
            }
            return reply("200 OK", &[], br#"{"name":"fake/repo","tags":["v1","v2"]}"#);
        }
        if req.path.starts_with("/v2/fake/repo/blobs/uploads/?mount=") {
            if !token.contains("repository%3Aother%2Fsrc%3Apull") {
                return challenge("");
            }
            return reply(
                "201 Created",
                &[("Location", "/v2/fake/repo/blobs/x".into())],
                b"",
            );
        }
        reply("404 Not Found", &[], b"")
    });
    let scratch = TempDir::new("bearer");
    let reference = fake.reference();
    let tokens = |fake: &Fake| -> Vec<String> {
        fake.seen()
            .into_iter()
            .filter(|s| s.path.starts_with("/token"))
            .map(|s| s.path)
            .collect()
    };

    let client = Client::with_options(isolated(&scratch).credentials("user", "pass"));
    client.ping(&fake.host).unwrap();
    assert_eq!(
        tokens(&fake),
        ["/token?service=fake"],
        "login-style ping: a token with no scope"
    );
    assert_eq!(client.manifest(&reference).unwrap().1, &manifest[..]);
    assert_eq!(
        client.manifest(&reference).unwrap().1,
        &manifest[..],
        "the token is cached"
    );
    let pull = "/token?service=fake&scope=repository%3Afake%2Frepo%3Apull";
    assert_eq!(tokens(&fake)[1..], [pull]);
    assert!(fake.seen().iter().any(|s| s.path.starts_with("/token")
        && s.authorization.as_deref() == Some("Basic dXNlcjpwYXNz")));

    // More scope asked by a 401: one new token, one retry.
    assert_eq!(client.tags(&reference).unwrap(), ["v1", "v2"]);
    assert_eq!(tokens(&fake).len(), 3);
    assert!(
        tokens(&fake)[2].contains("pull%2Cpush"),
        "{:?}",
        tokens(&fake)
    );

    // A mount: the target's push and the source's pull in one token request.
    let blob = Descriptor::of(LAYER, b"mounted");
    let transfer = mount(&client, &reference, &blob, "other/src");
    assert_eq!(
        transfer,
        Transfer::Mounted {
            digest: blob.digest,
            from: "other/src".to_owned()
        }
    );
    let mount = tokens(&fake).pop().unwrap();
    assert_eq!(
        mount,
        "/token?service=fake&scope=repository%3Afake%2Frepo%3Apull%2Cpush&scope=repository%3Aother%2Fsrc%3Apull"
    );

    // Wrong credentials: the token server's 401.
    let wrong = Client::with_options(isolated(&scratch).credentials("user", "nope"));
    match wrong.manifest(&reference).unwrap_err() {
        Error::Registry {
            status, request, ..
        } => {
            assert_eq!(status, Some(401));
            assert_eq!(request, "GET /token");
        }
        e => panic!("{e}"),
    }

    // An identity token from an auth file: the OAuth POST.
    let auth = scratch.join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"idtok"}}}}}}"#,
            fake.host
        ),
    )
    .unwrap();
    let oauth = Client::with_options(ClientOptions::new().auth_file(&auth));
    assert_eq!(oauth.tags(&reference).unwrap(), ["v1", "v2"]);
    let post = fake
        .seen()
        .into_iter()
        .rfind(|s| s.method == "POST" && s.path == "/token")
        .unwrap();
    assert!(post.body.contains("client_id=layercake"), "{}", post.body);
    assert!(
        post.body.contains("scope=repository%3Afake%2Frepo%3Apull"),
        "{}",
        post.body
    );
}
