//! Real registries for the registry tests (PEERS.md): distribution 2.8 (`docker-registry`) in
//! three set-ups (plain HTTP; TLS with basic auth; bearer tokens from
//! `tests/registry/token_server.py`), each on a free loopback port with its own storage and
//! its access log parsed; skopeo to put images in and read them back. Beside it: the images
//! the tests push (`images.rs`), a fault-injecting proxy (`proxy.rs`), raw HTTP (`http.rs`).
//!
//! Every server here is started by this module, killed by its PID and waited for when its
//! handle is dropped (or stopped earlier, for fault tests).

mod http;
mod images;
mod proxy;

// Re-exported so each type has one path (`common::registry::FaultProxy`); a test binary that
// uses only some of them would otherwise warn about the rest.
#[allow(unused_imports)]
pub use http::{http_request, HttpResponse};
#[allow(unused_imports)]
pub use images::{
    bookworm_like, busybox_image, layout_manifest_digest, noise, short, two_platform_layout,
    write_oci_layout, TwoPlatforms,
};
#[allow(unused_imports)]
pub use proxy::{Fault, FaultProxy, FaultRule, Seen};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use layercake::archive::oci::Manifest;
use layercake::Image;

use super::{cmd, config_diff_ids, sha256, tool, TempDir};

/// The user the auth set-ups know.
pub const USERNAME: &str = "lc-user";
/// Its password.
pub const PASSWORD: &str = "lc-secret";
/// The `service` of the token set-up (the JWT's `aud`).
pub const TOKEN_SERVICE: &str = "layercake-test-registry";
/// The `issuer` of the token set-up (the JWT's `iss`).
pub const TOKEN_ISSUER: &str = "layercake-test-token-server";

/// A port on `ip` (`127.0.0.1`) that was free a moment ago (the listener is closed at once;
/// a server started on it may lose a race, which the starters here retry).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))
        .port()
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

/// `openssl req -x509` in `dir`: a new RSA key (`key`) and a certificate it signs itself
/// (`cert`) for `subject`, valid two days, with `extra` options (`-addext …`).
fn self_signed(dir: &Path, subject: &str, key: &str, cert: &str, extra: &[&str]) {
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
    ];
    args.extend_from_slice(extra);
    args.extend(["-keyout", key, "-out", cert]);
    run_in(dir, "openssl", &args);
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
        self_signed(
            dir,
            "/CN=layercake test token signer",
            "token.key",
            "token.crt",
            &[],
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
    /// HTTPS with a certificate from a test CA (for `localhost`, `127.0.0.1` and the address
    /// served on, see [`Registry::start_on`]), and basic auth ([`USERNAME`], [`PASSWORD`])
    /// from an htpasswd file.
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
    ip: &'static str,
    port: u16,
    dir: TempDir,
    server: Server,
    token: Option<TokenServer>,
}

impl Registry {
    /// Starts a registry in this set-up on 127.0.0.1 and waits until it answers `GET /v2/`.
    ///
    /// # Panics
    ///
    /// If a tool is missing (docker-registry, openssl, htpasswd from apache2-utils, python3),
    /// or the registry does not answer within 30 s, with its log.
    pub fn start(setup: Setup) -> Registry {
        Registry::start_on(setup, "127.0.0.1")
    }

    /// As [`Registry::start`], serving on another loopback address: a client asks
    /// `localhost` and `127.0.0.1` in plain HTTP first, but `127.0.0.2` in HTTPS only, so
    /// TLS there takes the path of a registry elsewhere.
    pub fn start_on(setup: Setup, ip: &'static str) -> Registry {
        let dir = TempDir::new("registry");
        let token = (setup == Setup::Token).then(|| TokenServer::start(dir.path()));
        if setup == Setup::TlsBasic {
            make_tls(dir.path(), ip);
            let line = run_in(
                dir.path(),
                "htpasswd",
                &["-Bbn", USERNAME, PASSWORD], // bcrypt: the only kind distribution takes
            );
            std::fs::write(dir.join("htpasswd"), line).expect("write htpasswd");
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port(ip);
            let config_text = config(setup, dir.path(), ip, port, token.as_ref());
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
            let host = format!("{ip}:{port}");
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
                    ip,
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

    /// `127.0.0.1:PORT` (or the address of [`Registry::start_on`]).
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
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

    /// A file of the TLS set-up: `ca.crt` and `ca.key` (the test CA), `domain.crt` and
    /// `domain.key` (the server's certificate, which the CA signed, and its key).
    ///
    /// # Panics
    ///
    /// Unless the set-up is [`Setup::TlsBasic`].
    pub fn tls_file(&self, name: &str) -> PathBuf {
        assert_eq!(self.setup, Setup::TlsBasic, "only TLS has certificates");
        self.dir.join(name)
    }

    /// A `certs.d` tree: `HOST:PORT/ca.crt` for [`Registry::host`] and `localhost:PORT`. It is
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
fn config(setup: Setup, dir: &Path, ip: &str, port: u16, token: Option<&TokenServer>) -> String {
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
         http: {{addr: \"{ip}:{port}\", secret: layercake-tests{tls}}}\n\
         log: {{level: info, accesslog: {{disabled: false}}}}\n\
         {auth}",
        quoted(dir.join("data")),
    )
}

/// A test CA (`ca.crt`) and a server certificate it signed for `localhost`, `127.0.0.1` and
/// `ip` (`domain.crt`, `domain.key`). Not one self-signed certificate: webpki (rustls)
/// refuses a CA certificate used as the server's own.
fn make_tls(dir: &Path, ip: &str) {
    self_signed(
        dir,
        "/CN=layercake test CA",
        "ca.key",
        "ca.crt",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
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
    let other = if ip == "127.0.0.1" {
        String::new()
    } else {
        format!(",IP:{ip}")
    };
    std::fs::write(
        dir.join("domain.ext"),
        format!(
            "subjectAltName=DNS:localhost,IP:127.0.0.1{other}\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n"
        ),
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
