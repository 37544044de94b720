//! Real registries for the registry tests (PEERS.md): distribution 2.8 (`docker-registry`) in
//! three set-ups (plain HTTP; TLS with basic auth; bearer tokens from
//! `tests/registry/token_server.py`), each on a free loopback port with its own storage and
//! its access log parsed; skopeo to put images in and read them back; the images the tests
//! push (a busybox, a bookworm-like stack, a two-platform index); and a fault-injecting HTTP
//! proxy to put between a client and a registry.
//!
//! Every server here is started by this module, killed by its PID and waited for when its
//! handle is dropped (or stopped earlier, for fault tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use layercake::archive::oci::{Index, Manifest};
use layercake::archive::{Format, Writer};
use layercake::config::{History, Timestamp};
use layercake::{Commit, Compression, Entry, Image, Layer};

use super::{blob_path, cmd, config_diff_ids, read_json, sha256, tool, TempDir};

/// The user the auth set-ups know.
pub const USERNAME: &str = "lc-user";
/// Its password.
pub const PASSWORD: &str = "lc-secret";
/// The `service` of the token set-up (the JWT's `aud`).
pub const TOKEN_SERVICE: &str = "layercake-test-registry";
/// The `issuer` of the token set-up (the JWT's `iss`).
pub const TOKEN_ISSUER: &str = "layercake-test-token-server";

/// A port on 127.0.0.1 that was free a moment ago (the listener is closed at once; a server
/// started on it may lose a race, which the starters here retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1, enough for readiness checks and to look at what the proxy does.

/// An HTTP response read to the end of the connection (or until it broke).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header fields, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body bytes that arrived (fewer than `Content-Length` if the connection was cut).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header field of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, if given.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// Sends one request with `Connection: close` and reads the answer until the server closes
/// the connection; an error only if nothing like an HTTP status line came back.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    // A cut connection ends the read with what arrived.
    let mut buf = [0u8; 64 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let end = find(&raw, b"\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "no HTTP response head from {host}: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        )
    })?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or_default()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("status of {head:?}"),
        )
    })?;
    let headers = lines.filter_map(parse_header).collect();
    let mut body = raw[end + 4..].to_vec();
    if method == "HEAD" {
        body.clear();
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|p| p.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// `Name: value` → (`name`, `value`).
fn parse_header(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
}

// ---------------------------------------------------------------------------------------
// Child processes: killed by PID and waited for.

/// A server process of ours: SIGKILL by its PID, then waited for, when stopped or dropped.
struct Server {
    child: Option<Child>,
}

impl Server {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has exited on its own (it is then reaped).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs openssl (or another tool) in `dir`, which must succeed.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool(program))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

// ---------------------------------------------------------------------------------------
// The token server.

/// `tests/registry/token_server.py`, run by python3 on a free port.
struct TokenServer {
    server: Server,
    port: u16,
    log: PathBuf,
}

impl TokenServer {
    /// Makes the signing key and certificate in `dir` (`token.key`, `token.crt`: the
    /// registry's `rootcertbundle`) and starts the server.
    fn start(dir: &Path) -> TokenServer {
        run_in(
            dir,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=layercake test token signer",
                "-keyout",
                "token.key",
                "-out",
                "token.crt",
            ],
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/registry/token_server.py");
        let port_file = dir.join("token.port");
        let log = dir.join("token.log");
        let out = std::fs::File::create(dir.join("token-server.out")).expect("token-server.out");
        let child = Command::new(tool("python3"))
            .arg(&script)
            .arg("--key")
            .arg(dir.join("token.key"))
            .arg("--cert")
            .arg(dir.join("token.crt"))
            .args(["--issuer", TOKEN_ISSUER, "--user", USERNAME])
            .args(["--password", PASSWORD])
            .arg("--log")
            .arg(&log)
            .arg("--port-file")
            .arg(&port_file)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("token-server.out"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let mut server = Server { child: Some(child) };
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().expect("a port number");
            }
            if let Some(status) = server.exited() {
                panic!(
                    "the token server exited ({status}):\n{}",
                    std::fs::read_to_string(dir.join("token-server.out")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the token server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        TokenServer { server, port, log }
    }
}

/// One request the token server answered, from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Whether it came with the right username and password.
    pub authenticated: bool,
    /// Whether it carried an `Authorization` header at all.
    pub authorization: bool,
    /// The `scope` parameters, as sent (`repository:lc/busybox:pull,push`).
    pub scopes: Vec<String>,
    /// What the token granted: (repository, actions).
    pub granted: Vec<(String, Vec<String>)>,
    /// The status answered (200, or 401 for wrong credentials).
    pub status: u16,
}

// ---------------------------------------------------------------------------------------
// The registry.

/// How a [`Registry`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Plain HTTP, no auth.
    Plain,
    /// HTTPS with a certificate from a test CA (for `localhost` and `127.0.0.1`), and basic
    /// auth ([`USERNAME`], [`PASSWORD`]) from an htpasswd file.
    TlsBasic,
    /// Plain HTTP, bearer tokens from the token server: anonymous callers may pull, the
    /// user may push.
    Token,
}

/// One line of the registry's access log (Apache combined format, which distribution 2.8
/// writes on its standard output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `GET`, `HEAD`, `PUT`, `POST`, `PATCH`, `DELETE`.
    pub method: String,
    /// The request target as sent, query included (`/v2/x/blobs/uploads/?mount=…&from=…`).
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The response bytes written (0 for `-`).
    pub size: u64,
}

impl Access {
    /// Parses `127.0.0.1 - - [07/Dec/2026:12:54:18 +0000] "HEAD /v2/x/blobs/sha256:… HTTP/1.1"
    /// 404 157 "" "skopeo/1.9.3"`.
    pub fn parse(line: &str) -> Option<Access> {
        let open = line.find('"')?;
        let rest = &line[open + 1..];
        let close = rest.find('"')?;
        let mut request = rest[..close].split(' ');
        let method = request.next()?.to_owned();
        let path = request.next()?.to_owned();
        request.next().filter(|p| p.starts_with("HTTP/"))?;
        let mut after = rest[close + 1..].split_whitespace();
        let status = after.next()?.parse().ok()?;
        let size = after.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Some(Access {
            method,
            path,
            status,
            size,
        })
    }

    /// Whether this is a `method` request whose target contains `path_contains`.
    pub fn is(&self, method: &str, path_contains: &str) -> bool {
        self.method == method && self.path.contains(path_contains)
    }

    /// The blob digest (`sha256:…`) a `/blobs/sha256:…` request names.
    pub fn blob(&self) -> Option<&str> {
        let at = self.path.find("/blobs/sha256:")?;
        let digest = &self.path[at + "/blobs/".len()..];
        Some(digest.split(['?', '/']).next().unwrap_or(digest))
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

/// A place in a registry's access log: [`Registry::accesses_since`] gives what came after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark(usize);

/// A `docker-registry serve` of our own: a temp dir with its config, storage, logs and (by
/// set-up) certificates, htpasswd file and token server. Killed and waited for when dropped.
pub struct Registry {
    setup: Setup,
    port: u16,
    dir: TempDir,
    server: Server,
    token: Option<TokenServer>,
}

impl Registry {
    /// Starts a registry in this set-up and waits until it answers `GET /v2/`.
    ///
    /// # Panics
    ///
    /// If a tool is missing (docker-registry, openssl, htpasswd from apache2-utils, python3),
    /// or the registry does not answer within 30 s, with its log.
    pub fn start(setup: Setup) -> Registry {
        let dir = TempDir::new("registry");
        let token = (setup == Setup::Token).then(|| TokenServer::start(dir.path()));
        if setup == Setup::TlsBasic {
            make_tls(dir.path());
            let line = run_in(
                dir.path(),
                "htpasswd",
                &["-Bbn", USERNAME, PASSWORD], // bcrypt: the only kind distribution takes
            );
            std::fs::write(dir.join("htpasswd"), line).expect("write htpasswd");
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config_text = config(setup, dir.path(), port, token.as_ref());
            std::fs::write(dir.join("config.yml"), config_text).expect("write config.yml");
            let access = std::fs::File::create(dir.join("access.log")).expect("access.log");
            let log = std::fs::File::create(dir.join("registry.log")).expect("registry.log");
            let child = Command::new(tool("docker-registry"))
                .arg("serve")
                .arg(dir.join("config.yml"))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(access)
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start docker-registry: {e}"));
            let mut server = Server { child: Some(child) };
            let host = format!("127.0.0.1:{port}");
            let started = Instant::now();
            let ready = loop {
                if server.exited().is_some() {
                    break false;
                }
                // Any HTTP status counts (401 with auth; 400 from a TLS port to plain HTTP).
                if http_request(&host, "GET", "/v2/", &[]).is_ok() {
                    break true;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    server.stop();
                    panic!(
                        "docker-registry did not answer within 30 s:\n{}",
                        std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if ready {
                let registry = Registry {
                    setup,
                    port,
                    dir,
                    server,
                    token,
                };
                if setup == Setup::TlsBasic {
                    registry.make_cert_dirs();
                }
                return registry;
            }
            // It exited: did another process take the port between our look and its bind?
            last_log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            if !last_log.contains("address already in use") {
                break;
            }
        }
        panic!("docker-registry exited while starting:\n{last_log}")
    }

    /// `cert_dir()` and `certs.d/HOST:PORT` (for both names the certificate has).
    fn make_cert_dirs(&self) {
        let ca = self.dir.join("ca.crt");
        let dirs = [
            self.cert_dir(),
            self.certs_d_dir().join(self.host()),
            self.certs_d_dir().join(format!("localhost:{}", self.port)),
        ];
        for dir in dirs {
            std::fs::create_dir_all(&dir).expect("cert dir");
            std::fs::copy(&ca, dir.join("ca.crt")).expect("copy ca.crt");
        }
    }

    /// How it was set up.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT/REPO:TAG` for `repo_tag` = `REPO:TAG` (or `REPO@DIGEST`).
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// `docker://127.0.0.1:PORT/REPO:TAG`, for skopeo and `layercake copy`.
    pub fn docker(&self, repo_tag: &str) -> String {
        format!("docker://{}", self.reference(repo_tag))
    }

    /// The user of the auth set-ups.
    pub fn username(&self) -> &'static str {
        USERNAME
    }

    /// The password of the auth set-ups.
    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// `USER:PASS`, as `--creds` takes it.
    pub fn creds(&self) -> String {
        format!("{USERNAME}:{PASSWORD}")
    }

    /// A directory holding the CA certificate as `ca.crt` (`--cert-dir`).
    ///
    /// # Panics
    ///
    /// Unless the set-up is [`Setup::TlsBasic`].
    pub fn cert_dir(&self) -> PathBuf {
        assert_eq!(self.setup, Setup::TlsBasic, "only TLS has certificates");
        self.dir.join("cert-dir")
    }

    /// A `certs.d` tree: `HOST:PORT/ca.crt` for `127.0.0.1:PORT` and `localhost:PORT`. It is
    /// `.docker/certs.d` under [`Registry::home_dir`].
    ///
    /// # Panics
    ///
    /// Unless the set-up is [`Setup::TlsBasic`].
    pub fn certs_d_dir(&self) -> PathBuf {
        self.home_dir().join(".docker/certs.d")
    }

    /// A directory to give as `HOME`: its `.docker/certs.d/HOST:PORT/ca.crt` is the CA, for
    /// a client that reads the per-user `certs.d` (the system's, `/etc/docker/certs.d`, is
    /// not for a test to write).
    ///
    /// # Panics
    ///
    /// Unless the set-up is [`Setup::TlsBasic`].
    pub fn home_dir(&self) -> PathBuf {
        assert_eq!(self.setup, Setup::TlsBasic, "only TLS has certificates");
        self.dir.join("home")
    }

    /// The registry's own log (its standard error), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Waits until the access log stops growing (distribution writes a line just after the
    /// response, so a client may be done a moment before its last line is there), then
    /// returns its lines.
    fn settled_lines(&self) -> Vec<String> {
        let path = self.dir.join("access.log");
        let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let started = Instant::now();
        let mut last = size();
        let mut stable_since = Instant::now();
        while stable_since.elapsed() < Duration::from_millis(150)
            && started.elapsed() < Duration::from_secs(3)
        {
            std::thread::sleep(Duration::from_millis(25));
            let now = size();
            if now != last {
                last = now;
                stable_since = Instant::now();
            }
        }
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every request the registry has logged.
    ///
    /// # Panics
    ///
    /// On a line that is not in the combined log format.
    pub fn access_log(&self) -> Vec<Access> {
        self.accesses_since(LogMark(0))
    }

    /// The end of the access log now: give it to [`Registry::accesses_since`] after a command
    /// to see that command's requests only.
    pub fn log_mark(&self) -> LogMark {
        LogMark(self.settled_lines().len())
    }

    /// The requests logged after `mark`.
    pub fn accesses_since(&self, mark: LogMark) -> Vec<Access> {
        self.settled_lines()
            .iter()
            .skip(mark.0)
            .map(|l| Access::parse(l).unwrap_or_else(|| panic!("an access log line: {l:?}")))
            .collect()
    }

    /// What the token server answered so far, oldest first.
    ///
    /// # Panics
    ///
    /// Unless the set-up is [`Setup::Token`].
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        let token = self
            .token
            .as_ref()
            .expect("only the token set-up has a token server");
        let text = std::fs::read_to_string(&token.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
                let strings = |v: &serde_json::Value| -> Vec<String> {
                    v.as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| s.as_str().expect("a string").to_owned())
                        .collect()
                };
                TokenRequest {
                    authenticated: v["authenticated"] == true,
                    authorization: v["authorization"] == true,
                    scopes: strings(&v["scopes"]),
                    granted: v["granted"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|g| {
                            let name = g["name"].as_str().expect("name").to_owned();
                            (name, strings(&g["actions"]))
                        })
                        .collect(),
                    status: v["status"].as_u64().expect("status") as u16,
                }
            })
            .collect()
    }

    /// Kills the registry now (the token server stays): the next request to it is refused.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    // -----------------------------------------------------------------------------------
    // skopeo against this registry.

    /// skopeo's flags to reach this registry; `side` is `src-`, `dest-` or `` (inspect).
    /// Anonymous (`creds` false) means `--no-creds` in the auth set-ups, so that no stored
    /// credential is picked up.
    fn skopeo_flags(&self, side: &str, creds: bool) -> Vec<String> {
        let mut flags = Vec::new();
        match self.setup {
            Setup::Plain | Setup::Token => flags.push(format!("--{side}tls-verify=false")),
            Setup::TlsBasic => {
                flags.push(format!("--{side}cert-dir"));
                flags.push(self.cert_dir().to_str().expect("UTF-8").to_owned());
            }
        }
        if self.setup != Setup::Plain {
            if creds {
                flags.push(format!("--{side}creds"));
                flags.push(self.creds());
            } else {
                flags.push(format!("--{side}no-creds"));
            }
        }
        flags
    }

    /// Whether `name` is a `docker://` name on this registry.
    fn is_ours(&self, name: &str) -> bool {
        name.starts_with(&format!("docker://{}/", self.host()))
            || name.starts_with(&format!("docker://localhost:{}/", self.port))
    }

    /// `skopeo copy SRC DST`, with the flags each side on this registry needs (its TLS
    /// settings, and in the auth set-ups the credentials) and `extra` (`--all`,
    /// `--preserve-digests`, `--dest-compress-format zstd`…), or anonymously; whatever
    /// happens.
    pub fn skopeo_copy_output(&self, src: &str, dst: &str, creds: bool, extra: &[&str]) -> Output {
        let mut c = cmd("skopeo").args(["copy", "--quiet"]);
        if self.is_ours(src) {
            c = c.args(self.skopeo_flags("src-", creds));
        }
        if self.is_ours(dst) {
            c = c.args(self.skopeo_flags("dest-", creds));
        }
        c.args(extra).arg(src).arg(dst).output()
    }

    /// `skopeo copy SRC DST` with the credentials (see [`Registry::skopeo_copy_output`]),
    /// which must succeed; e.g. `oci:DIR:tag` to `docker://127.0.0.1:PORT/x:y`.
    #[track_caller]
    pub fn skopeo_copy(&self, src: &str, dst: &str, extra: &[&str]) {
        let out = self.skopeo_copy_output(src, dst, true, extra);
        assert!(
            out.status.success(),
            "skopeo copy {src} {dst} {extra:?} failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// `skopeo inspect FLAGS docker://REFERENCE` with the credentials; `reference` as
    /// [`Registry::reference`] gives it (`docker://` may be there already).
    #[track_caller]
    fn skopeo_inspect_args(&self, reference: &str, extra: &[&str]) -> Vec<u8> {
        let name = if reference.starts_with("docker://") {
            reference.to_owned()
        } else {
            format!("docker://{reference}")
        };
        cmd("skopeo")
            .arg("inspect")
            .args(self.skopeo_flags("", true))
            .args(extra)
            .arg(name)
            .run()
    }

    /// The manifest (or index) bytes as the registry serves them (`skopeo inspect --raw`).
    pub fn skopeo_inspect_raw(&self, reference: &str) -> Vec<u8> {
        self.skopeo_inspect_args(reference, &["--raw"])
    }

    /// `skopeo inspect` (an index resolved to linux/amd64): `Digest`, `Layers`, …
    pub fn skopeo_inspect(&self, reference: &str) -> serde_json::Value {
        serde_json::from_slice(&self.skopeo_inspect_args(reference, &[])).expect("JSON")
    }

    /// The config bytes as the registry serves them (`skopeo inspect --config --raw`), of
    /// `arch`'s image for an index.
    pub fn skopeo_inspect_config(&self, reference: &str, arch: &str) -> Vec<u8> {
        self.skopeo_inspect_args(reference, &["--config", "--raw", "--override-arch", arch])
    }

    /// What the registry serves under `reference` (an image manifest), read with skopeo.
    pub fn remote_image(&self, reference: &str) -> RemoteImage {
        let manifest_bytes = self.skopeo_inspect_raw(reference);
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).expect("a manifest");
        let config = self.skopeo_inspect_config(reference, "amd64");
        RemoteImage {
            manifest_digest: sha256(&manifest_bytes),
            image_id: manifest.config.digest.to_string(),
            diff_ids: config_diff_ids(&config),
            layers: manifest
                .layers
                .iter()
                .map(|d| d.digest.to_string())
                .collect(),
            manifest_bytes,
            config,
        }
    }

    /// Pushes `image` to `REPO:TAG` here with skopeo (from an OCI layout with gzip layers)
    /// and returns what the registry serves for it.
    ///
    /// # Panics
    ///
    /// If the registry does not serve the manifest skopeo was given (byte for byte).
    pub fn push_image(&self, image: &Image, repo_tag: &str) -> RemoteImage {
        let layout = TempDir::new("push-layout");
        write_oci_layout(layout.path(), &[(image, "push")]);
        self.skopeo_copy(
            &format!("oci:{}:push", layout.path().display()),
            &self.docker(repo_tag),
            &["--preserve-digests"],
        );
        let remote = self.remote_image(&self.reference(repo_tag));
        let local = super::layout_image(layout.path(), "push");
        assert_eq!(remote.image_id, image.id().to_string(), "pushed config");
        assert_eq!(
            remote.manifest_digest,
            layout_manifest_digest(layout.path(), "push"),
            "skopeo pushed the manifest as written"
        );
        assert_eq!(remote.diff_ids, local.diff_ids);
        remote
    }

    /// Pushes [`two_platform_layout`] to `REPO:TAG` here with `skopeo copy --all
    /// --preserve-digests`, and checks the registry serves the index byte for byte.
    pub fn push_two_platforms(&self, repo_tag: &str) -> TwoPlatforms {
        let layout = TempDir::new("push-index");
        let two = two_platform_layout(layout.path(), "multi");
        self.skopeo_copy(
            &format!("oci:{}:multi", layout.path().display()),
            &self.docker(repo_tag),
            &["--all", "--preserve-digests"],
        );
        assert_eq!(
            self.skopeo_inspect_raw(&self.reference(repo_tag)),
            two.index,
            "the registry serves the index as written"
        );
        two
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.server.stop();
        if let Some(token) = self.token.as_mut() {
            token.server.stop();
        }
    }
}

/// The registry's config.yml.
fn config(setup: Setup, dir: &Path, port: u16, token: Option<&TokenServer>) -> String {
    let quoted = |p: PathBuf| serde_json::to_string(p.to_str().expect("UTF-8")).expect("JSON");
    let tls = match setup {
        Setup::TlsBasic => format!(
            ", tls: {{certificate: {}, key: {}}}",
            quoted(dir.join("domain.crt")),
            quoted(dir.join("domain.key"))
        ),
        _ => String::new(),
    };
    let auth = match (setup, token) {
        (Setup::TlsBasic, _) => format!(
            "auth: {{htpasswd: {{realm: layercake-test, path: {}}}}}\n",
            quoted(dir.join("htpasswd"))
        ),
        (Setup::Token, Some(t)) => format!(
            "auth: {{token: {{realm: \"http://127.0.0.1:{}/token\", service: {TOKEN_SERVICE}, \
             issuer: {TOKEN_ISSUER}, rootcertbundle: {}}}}}\n",
            t.port,
            quoted(dir.join("token.crt"))
        ),
        _ => String::new(),
    };
    format!(
        "version: 0.1\n\
         storage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n\
         http: {{addr: \"127.0.0.1:{port}\", secret: layercake-tests{tls}}}\n\
         log: {{level: info, accesslog: {{disabled: false}}}}\n\
         {auth}",
        quoted(dir.join("data")),
    )
}

/// A test CA (`ca.crt`) and a server certificate it signed for `localhost` and `127.0.0.1`
/// (`domain.crt`, `domain.key`). Not one self-signed certificate: webpki (rustls) refuses a
/// CA certificate used as the server's own.
fn make_tls(dir: &Path) {
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=layercake test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "domain.key",
            "-out",
            "domain.csr",
        ],
    );
    std::fs::write(
        dir.join("domain.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("domain.ext");
    run_in(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "domain.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-CAserial",
            "ca.srl",
            "-days",
            "2",
            "-extfile",
            "domain.ext",
            "-out",
            "domain.crt",
        ],
    );
}

/// An image manifest as a registry serves it, read with skopeo.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// `sha256:` of the manifest bytes.
    pub manifest_digest: String,
    /// The manifest bytes.
    pub manifest_bytes: Vec<u8>,
    /// The config digest (the ImageId).
    pub image_id: String,
    /// The config bytes.
    pub config: Vec<u8>,
    /// The config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// The layer blob digests, bottom first.
    pub layers: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Images to push.

/// The first 12 hex digits of a `sha256:` digest, as Docker shows a layer.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..12]
}

/// A base image: the host's static busybox with a few applets as symlinks, explicit
/// directories (Docker 20.10 gives implied parents mode 0600), `/bin/sh` as its command.
pub fn busybox_image() -> Image {
    let busybox = std::fs::read(tool("/bin/busybox")).expect("read /bin/busybox");
    let mut layer = Layer::builder();
    for dir in ["bin", "etc", "root", "usr", "var"] {
        layer = layer.entry(dir, Entry::dir().mtime(1_700_000_000));
    }
    let mut layer = layer
        .entry("tmp", Entry::dir().mode(0o1777).mtime(1_700_000_000))
        .entry(
            "bin/busybox",
            Entry::file(busybox).mode(0o755).mtime(1_700_000_000),
        )
        .entry(
            "etc/passwd",
            Entry::file("root:x:0:0:root:/root:/bin/sh\n").mtime(1_700_000_000),
        );
    for applet in ["sh", "true", "cat", "echo", "ls"] {
        layer = layer.symlink("busybox", format!("bin/{applet}"));
    }
    Image::builder()
        .layer_with(
            layer.build().expect("busybox layer"),
            History::new("ADD busybox / # built in memory")
                .created(Timestamp::from_unix(1_700_000_000)),
        )
        .cmd(["/bin/sh"])
        .env("PATH=/bin")
        .commit(Commit::new().created(1_700_000_000))
        .build()
        .expect("busybox image")
}

/// `len` bytes that do not compress (xorshift from `seed`), so that a blob is as large on the
/// wire as in the layer.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A Debian-like base and an app on it, shaped like a bookworm image and what is built on
/// one: the base a single layer (merged /usr, `bin` a symlink, busybox applets, libraries of
/// incompressible bytes: some 3 MiB on the wire); the app adds a package layer (files, a
/// changed dpkg status, a deleted library: a whiteout) and an app layer (1 MiB).
///
/// Returns (base, app); the app's first layer is the base's.
pub fn bookworm_like() -> (Image, Image) {
    let busybox = std::fs::read(tool("/bin/busybox")).expect("read /bin/busybox");
    let t = 1_715_000_000;
    let mut base = Layer::builder();
    for dir in [
        "etc",
        "root",
        "usr",
        "usr/bin",
        "usr/lib",
        "usr/lib/x86_64-linux-gnu",
        "usr/share",
        "usr/share/doc",
        "var",
        "var/lib",
        "var/lib/dpkg",
    ] {
        base = base.entry(dir, Entry::dir().mtime(t));
    }
    let mut base = base
        .entry("tmp", Entry::dir().mode(0o1777).mtime(t))
        .symlink("usr/bin", "bin")
        .symlink("usr/lib", "lib")
        .entry("etc/debian_version", Entry::file("12.5\n").mtime(t))
        .entry(
            "etc/os-release",
            Entry::file(
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                 VERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
            )
            .mtime(t),
        )
        .entry(
            "var/lib/dpkg/status",
            Entry::file("Package: base-files\nStatus: install ok installed\n\n").mtime(t),
        )
        .entry("usr/bin/busybox", Entry::file(busybox).mode(0o755).mtime(t));
    for applet in ["sh", "true", "cat", "ls"] {
        base = base.symlink("busybox", format!("usr/bin/{applet}"));
    }
    for i in 0..6u64 {
        base = base.entry(
            format!("usr/lib/x86_64-linux-gnu/libfake{i}.so.1"),
            Entry::file(noise(i, 256 << 10)).mode(0o644).mtime(t),
        );
    }
    let base = Image::builder()
        .layer_with(
            base.build().expect("base layer"),
            History::new("/bin/sh -c #(nop) ADD file:bookworm-rootfs.tar.xz in / ")
                .created(Timestamp::from_unix(t)),
        )
        .cmd(["bash"])
        .env("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .commit(Commit::new().created(t))
        .build()
        .expect("bookworm-like base");

    let packages = Layer::builder()
        .entry(
            "usr/bin/app-tool",
            Entry::file(noise(100, 512 << 10)).mode(0o755),
        )
        .entry(
            "usr/share/doc/app-tool/copyright",
            Entry::file("Public domain.\n"),
        )
        .entry(
            "var/lib/dpkg/status",
            Entry::file(
                "Package: base-files\nStatus: install ok installed\n\n\
                 Package: app-tool\nStatus: install ok installed\n\n",
            ),
        )
        .whiteout("usr/lib/x86_64-linux-gnu/libfake5.so.1")
        .build()
        .expect("package layer");
    let app_files = Layer::builder()
        .dir("srv")
        .entry("srv/app.bin", Entry::file(noise(200, 1 << 20)))
        .file("srv/app.conf", "listen = 8080\n")
        .build()
        .expect("app layer");
    let app = Image::builder()
        .base(&base)
        .layer_with(
            packages,
            History::new("RUN /bin/sh -c apt-get install -y app-tool # buildkit")
                .created(Timestamp::from_unix(t + 100)),
        )
        .layer_with(
            app_files,
            History::new("COPY app /srv # buildkit").created(Timestamp::from_unix(t + 200)),
        )
        .cmd(["/srv/app.bin"])
        .commit(Commit::new().created(t + 200))
        .build()
        .expect("bookworm-like app");
    (base, app)
}

/// Writes images into an OCI layout at `dir`, each under its ref name, layers gzip'd (as
/// registries carry them).
pub fn write_oci_layout(dir: &Path, images: &[(&Image, &str)]) {
    let mut writer = Writer::new(Format::OciLayout).compression(Compression::Gzip);
    for (image, ref_name) in images {
        writer = writer.image_ref(image, *ref_name);
    }
    writer.write_dir(dir).expect("write an OCI layout");
}

/// The digest of the manifest `ref_name` names in a layout's `index.json`.
pub fn layout_manifest_digest(layout: &Path, ref_name: &str) -> String {
    let index: Index = read_json(&layout.join("index.json"));
    index
        .manifests
        .iter()
        .find(|d| {
            d.annotations
                .get("org.opencontainers.image.ref.name")
                .map(String::as_str)
                == Some(ref_name)
        })
        .unwrap_or_else(|| panic!("{} has no ref {ref_name}", layout.display()))
        .digest
        .to_string()
}

/// A two-platform image: the same busybox tree as linux/amd64 and linux/arm64 (two configs,
/// two manifests, one layer), under one OCI image index.
#[derive(Debug, Clone)]
pub struct TwoPlatforms {
    /// The linux/amd64 image.
    pub amd64: Image,
    /// The linux/arm64 image.
    pub arm64: Image,
    /// The index bytes.
    pub index: Vec<u8>,
    /// `sha256:` of the index bytes.
    pub index_digest: String,
    /// The manifest digests, amd64 then arm64.
    pub manifests: [String; 2],
}

/// Writes [`TwoPlatforms`] as an OCI layout at `dir`, the index under `ref_name` (and nothing
/// else in `index.json`).
pub fn two_platform_layout(dir: &Path, ref_name: &str) -> TwoPlatforms {
    let amd64 = busybox_image();
    let arm64 = Image::builder()
        .base(&amd64)
        .architecture("arm64")
        .commit(Commit::new().created(1_700_000_000))
        .build()
        .expect("the arm64 image");
    assert_eq!(arm64.diff_ids(), amd64.diff_ids());
    assert_ne!(arm64.id(), amd64.id());
    write_oci_layout(dir, &[(&amd64, "amd64"), (&arm64, "arm64")]);
    let index: Index = read_json(&dir.join("index.json"));
    let descriptor = |ref_name: &str, arch: &str| {
        let d = index
            .manifests
            .iter()
            .find(|d| {
                d.annotations
                    .get("org.opencontainers.image.ref.name")
                    .map(String::as_str)
                    == Some(ref_name)
            })
            .expect("the writer's ref");
        serde_json::json!({
            "mediaType": d.media_type,
            "digest": d.digest.to_string(),
            "size": d.size,
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let (a, b) = (descriptor("amd64", "amd64"), descriptor("arm64", "arm64"));
    let manifests = [
        a["digest"].as_str().expect("digest").to_owned(),
        b["digest"].as_str().expect("digest").to_owned(),
    ];
    let index_bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [a, b],
    }))
    .expect("index JSON");
    let index_digest = sha256(&index_bytes);
    std::fs::write(blob_path(dir, &index_digest), &index_bytes).expect("write the index blob");
    let top = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&top).expect("JSON"),
    )
    .expect("write index.json");
    TwoPlatforms {
        amd64,
        arm64,
        index: index_bytes,
        index_digest,
        manifests,
    }
}

// ---------------------------------------------------------------------------------------
// The fault proxy.

/// What a [`FaultProxy`] does to the requests its rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: every request passes.
    None,
    /// Sends the response head and this many body bytes, then closes the connection.
    CutAfter(u64),
    /// Sends the whole body with one byte changed, the length kept: in a gzip body the
    /// low byte of the header's MTIME (decompressed contents unchanged, only the blob digest
    /// tells), in anything else the middle byte.
    WrongBytes,
    /// Sends the head (the full `Content-Length`) and the body less its last quarter (at
    /// least one byte less), then closes.
    Truncate,
    /// Answers `429 Too Many Requests` with `Retry-After` without asking the registry.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Answers `500` (a distribution `UNKNOWN` error) to this many matching requests, then
    /// lets them pass.
    ServerError {
        /// How many.
        times: usize,
    },
    /// Sends the head and this many body bytes, then holds the connection open until
    /// [`FaultProxy::release`] or [`FaultProxy::stop`], then closes it.
    Stall {
        /// Body bytes sent before stalling.
        after_bytes: u64,
    },
}

/// Which requests a fault applies to, and how many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The method (`GET`).
    pub method: String,
    /// A substring of the request target (`/blobs/sha256:`, or one blob's digest).
    pub path_contains: String,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it (then they pass).
    pub times: usize,
}

impl FaultRule {
    /// `fault` on the first `method` request whose target contains `path_contains` (the
    /// first `times` for [`Fault::ServerError`]; none for [`Fault::None`]).
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> FaultRule {
        let times = match fault {
            Fault::None => 0,
            Fault::ServerError { times } => times,
            _ => 1,
        };
        FaultRule {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            fault,
            times,
        }
    }

    /// Applies the fault to this many matching requests instead (`usize::MAX`: all).
    pub fn times(mut self, times: usize) -> FaultRule {
        self.times = times;
        self
    }
}

/// A request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The `Range` header, if any (`bytes=1000-`).
    pub range: Option<String>,
    /// The status the client got (the registry's, or the fault's 429/500, or 502 when the
    /// registry could not be reached).
    pub status: u16,
    /// Whether the fault was applied to it.
    pub faulted: bool,
    /// When it arrived, from the proxy's start.
    pub at: Duration,
}

impl Seen {
    /// The first byte a `Range: bytes=N-` header asks for.
    pub fn range_start(&self) -> Option<u64> {
        let spec = self.range.as_deref()?.strip_prefix("bytes=")?;
        spec.split('-').next()?.trim().parse().ok()
    }
}

struct ProxyState {
    upstream: String,
    rule: FaultRule,
    started: Instant,
    remaining: Mutex<usize>,
    seen: Mutex<Vec<Seen>>,
    stopping: AtomicBool,
    released: (Mutex<bool>, Condvar),
    connections: Mutex<Vec<TcpStream>>,
}

/// An HTTP/1.1 proxy on a free 127.0.0.1 port in front of a plain-HTTP registry: each request
/// is read (head and body), sent on with `Connection: close`, and its response streamed back,
/// then the connection is closed; the [`FaultRule`]'s requests get its fault. Clients address
/// it as the registry (`proxy.reference("x:1")`): the `Host` header passes unchanged, so the
/// registry's upload `Location`s point back at the proxy.
pub struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`127.0.0.1:PORT`) applying `fault` to the first `GET` of a
    /// blob (`/blobs/sha256:`); see [`FaultProxy::start_with`] to aim it.
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        FaultProxy::start_with(upstream, FaultRule::new("GET", "/blobs/sha256:", fault))
    }

    /// A proxy to `upstream` with this rule.
    pub fn start_with(upstream: &str, rule: FaultRule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            remaining: Mutex::new(rule.times),
            rule,
            started: Instant::now(),
            seen: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            released: (Mutex::new(false), Condvar::new()),
            connections: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(clone) = conn.try_clone() {
                    shared.connections.lock().unwrap().push(clone);
                }
                let state = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        FaultProxy {
            port,
            state,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PROXYPORT/REPO:TAG`.
    pub fn reference(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The requests the fault was applied to.
    pub fn faulted(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.faulted).collect()
    }

    /// Waits until the fault has been applied once (for [`Fault::Stall`]: its bytes sent).
    pub fn wait_for_fault(&self, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if !self.faulted().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Lets stalled connections close.
    pub fn release(&self) {
        let (lock, cvar) = &self.state.released;
        *lock.lock().unwrap() = true;
        cvar.notify_all();
    }

    /// Stops listening and closes every connection: the next request is refused.
    pub fn stop(&mut self) {
        if self.state.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.release();
        // Wake the accept loop, which then drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for conn in self.state.connections.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProxyState {
    /// The fault for this request, if the rule matches it and has uses left.
    fn take_fault(&self, method: &str, path: &str) -> Option<Fault> {
        if method != self.rule.method || !path.contains(&self.rule.path_contains) {
            return None;
        }
        let mut remaining = self.remaining.lock().unwrap();
        if *remaining == 0 || self.rule.fault == Fault::None {
            return None;
        }
        *remaining -= 1;
        Some(self.rule.fault.clone())
    }

    fn record(&self, method: &str, path: &str, range: Option<String>, status: u16, faulted: bool) {
        self.seen.lock().unwrap().push(Seen {
            method: method.to_owned(),
            path: path.to_owned(),
            range,
            status,
            faulted,
            at: self.started.elapsed(),
        });
    }

    fn stall(&self) {
        let (lock, cvar) = &self.released;
        let mut released = lock.lock().unwrap();
        while !*released && !self.stopping.load(Ordering::SeqCst) {
            released = cvar
                .wait_timeout(released, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }
}

/// Reads a message head (up to the empty line) as lines without their CRLF.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        total += n;
        if total > 256 << 10 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

/// Reads a request body: `Content-Length` bytes, or a chunked body decoded.
fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
            if size == 0 {
                read_head(reader)?; // trailers and the final CRLF
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

/// A response made here (429, 500, 502), distribution's error body, closing.
fn answer(conn: &mut TcpStream, status: u16, reason: &str, extra: &str) -> std::io::Result<()> {
    let code = match status {
        429 => "TOOMANYREQUESTS",
        _ => "UNKNOWN",
    };
    let body = format!("{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{reason}\"}}]}}");
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}

/// One client connection: one request, forwarded, its response streamed back, closed.
fn serve(mut conn: TcpStream, state: &ProxyState) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let head = read_head(&mut reader)?;
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = head[1..].iter().filter_map(|l| parse_header(l)).collect();
    let body = read_body(&mut reader, &headers)?;
    let range = headers
        .iter()
        .find(|(n, _)| n == "range")
        .map(|(_, v)| v.clone());

    let fault = state.take_fault(&method, &path);
    match fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.record(&method, &path, range, 429, true);
            let extra = format!("Retry-After: {retry_after_secs}\r\n");
            return answer(&mut conn, 429, "Too Many Requests", &extra);
        }
        Some(Fault::ServerError { .. }) => {
            state.record(&method, &path, range, 500, true);
            return answer(&mut conn, 500, "Internal Server Error", "");
        }
        _ => {}
    }

    let mut upstream = match TcpStream::connect(&state.upstream) {
        Ok(s) => s,
        Err(_) => {
            state.record(&method, &path, range, 502, false);
            return answer(&mut conn, 502, "Bad Gateway", "");
        }
    };
    // The head as sent, less what describes this hop; the body re-framed by length.
    let mut out = format!("{request_line}\r\n");
    let hop = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "expect",
        "te",
        "upgrade",
    ];
    for line in &head[1..] {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !hop.contains(&name.as_str()) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    let had_body = headers
        .iter()
        .any(|(n, _)| n == "content-length" || n == "transfer-encoding");
    if had_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes())?;
    upstream.write_all(&body)?;
    upstream.flush()?;

    let mut from = BufReader::new(upstream);
    let response_head = read_head(&mut from)?;
    let status = response_head
        .first()
        .and_then(|l| parse_status_line(l))
        .unwrap_or(0);
    let content_length = response_head[1..]
        .iter()
        .filter_map(|l| parse_header(l))
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut raw_head = response_head.join("\r\n");
    raw_head.push_str("\r\n\r\n");

    // Faults on the body need its length and a body to spoil.
    let body_fault = match (&fault, content_length) {
        (Some(f), Some(len)) if method != "HEAD" && len > 0 && (200..300).contains(&status) => {
            match f {
                // A body no longer than the cut would come through whole.
                Fault::CutAfter(n) | Fault::Stall { after_bytes: n } if len <= *n => None,
                _ => Some((f.clone(), len)),
            }
        }
        _ => None,
    };
    if body_fault.is_none() && fault.is_some() {
        // The rule matched a response with nothing to spoil: give the use back.
        *state.remaining.lock().unwrap() += 1;
    }
    state.record(&method, &path, range, status, body_fault.is_some());
    conn.write_all(raw_head.as_bytes())?;
    let Some((fault, len)) = body_fault else {
        std::io::copy(&mut from, &mut conn)?;
        conn.flush()?;
        let _ = conn.shutdown(Shutdown::Both);
        return Ok(());
    };
    match fault {
        Fault::CutAfter(n) => {
            std::io::copy(&mut (&mut from).take(n.min(len)), &mut conn)?;
        }
        Fault::Truncate => {
            let keep = len - (len / 4).max(1);
            std::io::copy(&mut (&mut from).take(keep), &mut conn)?;
        }
        Fault::Stall { after_bytes } => {
            std::io::copy(&mut (&mut from).take(after_bytes.min(len)), &mut conn)?;
            conn.flush()?;
            state.stall();
        }
        Fault::WrongBytes => {
            let mut body = Vec::new();
            (&mut from).take(len).read_to_end(&mut body)?;
            let at = if body.starts_with(&[0x1f, 0x8b]) && body.len() > 4 {
                4
            } else {
                body.len() / 2
            };
            body[at] ^= 0xff;
            conn.write_all(&body)?;
        }
        Fault::None | Fault::TooManyRequests { .. } | Fault::ServerError { .. } => {
            unreachable!("answered above")
        }
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}
