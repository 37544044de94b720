//! The registry client against real peers (PEERS.md): distribution 2.8 in three set-ups
//! (plain HTTP, TLS with basic auth, bearer tokens), skopeo 1.9 and a private Docker 20.10,
//! with a fault-injecting proxy in between (tests/common/registry.rs).
//!
//! Two halves. The first proves the test infrastructure with the peers alone: skopeo pushes
//! and reads back through each set-up and through the proxy, the token server grants what it
//! should, the access log parses, the proxy's faults do what they say, Docker pulls from the
//! plain registry. The second is the end-to-end suite of `layercake pull`, `push`, `login`,
//! `logout`, `inspect docker://` and `copy`, ignored until the registry client is merged.
#![cfg(feature = "cli")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::registry::{
    bookworm_like, busybox_image, http_request, short, write_oci_layout, Access, Fault, FaultProxy,
    FaultRule, Registry, RemoteImage, Setup,
};
use common::{cmd, layout_image, sha256, Dockerd, TempDir};
use layercake::{Container, Image};

// =======================================================================================
// The peers alone.

/// skopeo pushes busybox to the plain registry and reads it back unchanged; the access log
/// shows the push as distribution answered it.
#[test]
fn plain_registry_takes_a_skopeo_push_and_logs_it() {
    let registry = Registry::start(Setup::Plain);
    let image = busybox_image();
    let mark = registry.log_mark();
    let remote = registry.push_image(&image, "lc/busybox:1");
    let push = registry.accesses_since(mark);

    // Every layer and the config: a HEAD (404: not there yet) before it is uploaded.
    for blob in remote.layers.iter().chain([&remote.image_id]) {
        assert!(
            push.iter()
                .any(|a| a.method == "HEAD" && a.blob() == Some(blob) && a.status == 404),
            "no HEAD 404 of {blob} in {push:#?}"
        );
    }
    assert!(
        push.iter()
            .any(|a| a.is("POST", "/v2/lc/busybox/blobs/uploads/") && a.status == 202),
        "{push:#?}"
    );
    let manifest_puts: Vec<&Access> = push
        .iter()
        .filter(|a| a.is("PUT", "/v2/lc/busybox/manifests/"))
        .collect();
    assert_eq!(manifest_puts.len(), 1, "{push:#?}");
    assert_eq!(manifest_puts[0].path, "/v2/lc/busybox/manifests/1");
    assert_eq!(manifest_puts[0].status, 201);

    // Read back: the same config, DiffIds and bytes.
    let back = TempDir::new("plain-back");
    let mark = registry.log_mark();
    registry.skopeo_copy(
        &registry.docker("lc/busybox:1"),
        &format!("oci:{}:back", back.path().display()),
        &[],
    );
    let read = layout_image(back.path(), "back");
    assert_eq!(read.image_id(), image.id().to_string());
    assert_eq!(read.diff_ids, remote.diff_ids);
    assert_eq!(read.blob_digests(), remote.layers);
    let pull = registry.accesses_since(mark);
    assert!(
        pull.iter()
            .all(|a| matches!(a.method.as_str(), "GET" | "HEAD")),
        "a pull only reads: {pull:#?}"
    );
    for blob in &remote.layers {
        assert!(
            pull.iter()
                .any(|a| a.is("GET", "/blobs/") && a.blob() == Some(blob) && a.status == 200),
            "no GET of {blob}: {pull:#?}"
        );
    }
    let inspect = registry.skopeo_inspect(&registry.reference("lc/busybox:1"));
    assert_eq!(inspect["Digest"], remote.manifest_digest);
}

/// The access log's lines as distribution 2.8 writes them.
#[test]
fn access_log_lines_parse() {
    let line = "127.0.0.1 - - [07/Dec/2026:12:54:18 +0000] \"HEAD /v2/bb/blobs/sha256:\
                324fb21047fe328e889d362247e800b7f8b8f1716313f29a6e211e99c9f45b95 HTTP/1.1\" \
                404 157 \"\" \"skopeo/1.9.3\"";
    let access = Access::parse(line).unwrap();
    assert_eq!(access.method, "HEAD");
    assert_eq!(access.status, 404);
    assert_eq!(access.size, 157);
    assert_eq!(
        access.blob(),
        Some("sha256:324fb21047fe328e889d362247e800b7f8b8f1716313f29a6e211e99c9f45b95")
    );
    let mount = Access::parse(
        "127.0.0.1 - - [07/Dec/2026:12:54:18 +0000] \"POST /v2/b/blobs/uploads/?mount=sha256%3A00\
         &from=a HTTP/1.1\" 201 0 \"\" \"x\"",
    )
    .unwrap();
    assert!(mount.is("POST", "mount="));
    assert_eq!(mount.blob(), None);
    assert_eq!(
        Access::parse("time=\"…\" level=info msg=\"listening\""),
        None
    );
}

/// The TLS set-up needs its CA (from `--cert-dir` or a `certs.d/HOST:PORT` directory) and
/// the password.
#[test]
fn tls_registry_wants_its_ca_and_the_password() {
    let registry = Registry::start(Setup::TlsBasic);
    let image = busybox_image();
    let remote = registry.push_image(&image, "lc/busybox:1");
    let name = registry.docker("lc/busybox:1");

    // The certs.d layout works as a cert dir for its host.
    let per_host = registry.certs_d_dir().join(registry.host());
    assert!(per_host.join("ca.crt").is_file());
    let out = cmd("skopeo")
        .args([
            "inspect",
            "--raw",
            "--creds",
            &registry.creds(),
            "--cert-dir",
        ])
        .arg(&per_host)
        .arg(&name)
        .run();
    assert_eq!(sha256(&out), remote.manifest_digest);

    // Without the CA: the certificate is unknown.
    let out = cmd("skopeo")
        .args(["inspect", "--raw", "--creds", &registry.creds(), &name])
        .output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");

    // Without the password, or with a wrong one: 401.
    let mark = registry.log_mark();
    for creds in [None, Some("lc-user:wrong")] {
        let mut c = cmd("skopeo").args(["inspect", "--raw", "--cert-dir"]);
        c = c.arg(registry.cert_dir());
        c = match creds {
            Some(creds) => c.args(["--creds", creds]),
            None => c.arg("--no-creds"),
        };
        let out = c.arg(&name).output();
        assert!(!out.status.success(), "{creds:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("unauthorized"), "{creds:?}: {err}");
    }
    let refused = registry.accesses_since(mark);
    assert!(
        !refused.is_empty() && refused.iter().all(|a| a.status == 401),
        "{refused:#?}"
    );
}

/// The token set-up: the user may push (a token with pull and push), anyone may pull (a
/// token with pull only), nobody else may push.
#[test]
fn token_server_grants_pull_to_anyone_and_push_to_the_user() {
    let registry = Registry::start(Setup::Token);
    let image = busybox_image();
    let remote = registry.push_image(&image, "lc/busybox:1");
    let tokens = registry.token_requests();
    assert!(
        tokens.iter().any(|t| t.authenticated
            && t.status == 200
            && t.scopes
                .contains(&"repository:lc/busybox:pull,push".to_owned())
            && t.granted == [("lc/busybox".to_owned(), vec!["pull".into(), "push".into()])]),
        "{tokens:#?}"
    );

    // Anonymous pull.
    let before = registry.token_requests().len();
    let out = cmd("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", "--no-creds"])
        .arg(registry.docker("lc/busybox:1"))
        .run();
    assert_eq!(sha256(&out), remote.manifest_digest);
    let anonymous = &registry.token_requests()[before..];
    assert!(!anonymous.is_empty());
    for t in anonymous {
        assert!(!t.authorization && !t.authenticated, "{t:?}");
        assert_eq!(t.granted, [("lc/busybox".into(), vec!["pull".into()])]);
    }

    // Anonymous push: asked for push, granted pull only, refused by the registry.
    let layout = TempDir::new("token-anon");
    write_oci_layout(layout.path(), &[(&image, "x")]);
    let before = registry.token_requests().len();
    let out = registry.skopeo_copy_output(
        &format!("oci:{}:x", layout.path().display()),
        &registry.docker("lc/other:1"),
        false,
        &[],
    );
    assert!(!out.status.success(), "an anonymous push went through");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
    let asked = &registry.token_requests()[before..];
    assert!(
        asked.iter().any(|t| !t.authenticated
            && t.scopes
                .iter()
                .any(|s| s == "repository:lc/other:pull,push")
            && t.granted.iter().all(|(_, actions)| actions == &["pull"])),
        "{asked:#?}"
    );

    // Wrong password: the token server says 401.
    let out = cmd("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .args(["--creds", "lc-user:wrong"])
        .arg(registry.docker("lc/busybox:1"))
        .output();
    assert!(!out.status.success());
    assert!(registry.token_requests().iter().any(|t| t.status == 401));
}

/// A two-platform index pushed with `skopeo copy --all` is served byte for byte, and each
/// platform resolves to its own config.
#[test]
fn two_platform_index_is_served_as_written() {
    let registry = Registry::start(Setup::Plain);
    let two = registry.push_two_platforms("lc/multi:1");
    let reference = registry.reference("lc/multi:1");
    let index: serde_json::Value = serde_json::from_slice(&two.index).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    for (arch, image, manifest) in [
        ("amd64", &two.amd64, &two.manifests[0]),
        ("arm64", &two.arm64, &two.manifests[1]),
    ] {
        let config = registry.skopeo_inspect_config(&reference, arch);
        assert_eq!(sha256(&config), image.id().to_string(), "{arch}");
        let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(config["architecture"], arch);
        let by_digest =
            registry.remote_image(&format!("{}@{manifest}", registry.reference("lc/multi")));
        assert_eq!(&by_digest.manifest_digest, manifest);
        assert_eq!(by_digest.image_id, image.id().to_string());
    }
    let inspect = registry.skopeo_inspect(&reference);
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(
        inspect["Digest"], two.index_digest,
        "inspect names the index"
    );
}

/// The proxy with no fault: skopeo pushes through it (a chunked upload, `Location`s that
/// point back at the proxy) and pulls through it, and it saw what the registry logged.
#[test]
fn proxy_without_a_fault_passes_everything() {
    let registry = Registry::start(Setup::Plain);
    let proxy = FaultProxy::start(&registry.host(), Fault::None);
    let (base, app) = bookworm_like();
    let layout = TempDir::new("proxy-none");
    write_oci_layout(layout.path(), &[(&base, "base"), (&app, "app")]);

    let mark = registry.log_mark();
    let pushed = registry.skopeo_copy_output(
        &format!("oci:{}:app", layout.path().display()),
        &format!("docker://{}", proxy.reference("lc/app:1")),
        false,
        &["--dest-tls-verify=false", "--preserve-digests"],
    );
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let logged = registry.accesses_since(mark);
    let seen = proxy.seen();
    assert_eq!(
        seen.iter()
            .map(|s| (s.method.clone(), s.path.clone(), s.status))
            .collect::<Vec<_>>(),
        logged
            .iter()
            .map(|a| (a.method.clone(), a.path.clone(), a.status))
            .collect::<Vec<_>>(),
        "the proxy passed each request once"
    );
    assert!(seen
        .iter()
        .any(|s| s.method == "PATCH" || s.method == "PUT"));
    assert!(proxy.faulted().is_empty());

    let remote = registry.remote_image(&registry.reference("lc/app:1"));
    assert_eq!(remote.image_id, app.id().to_string());
    let back = TempDir::new("proxy-none-back");
    let pulled = registry.skopeo_copy_output(
        &format!("docker://{}", proxy.reference("lc/app:1")),
        &format!("oci:{}:back", back.path().display()),
        false,
        &["--src-tls-verify=false"],
    );
    assert!(pulled.status.success());
    let read = layout_image(back.path(), "back");
    assert_eq!(read.image_id(), app.id().to_string());
    assert_eq!(read.blob_digests(), remote.layers);
}

/// Each fault of the proxy, seen from a raw HTTP client: what arrives, and that the next
/// request passes.
#[test]
fn proxy_faults_do_what_they_say() {
    let registry = Registry::start(Setup::Plain);
    let (_, app) = bookworm_like();
    let remote = registry.push_image(&app, "lc/app:1");
    let blob = remote.layers[2].clone(); // the app layer: 1 MiB of noise, gzip'd
    let path = format!("/v2/lc/app/blobs/{blob}");
    let get = |proxy: &FaultProxy| http_request(&proxy.host(), "GET", &path, &[]).unwrap();
    let whole = http_request(&registry.host(), "GET", &path, &[]).unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(sha256(&whole.body), blob);
    let len = whole.body.len() as u64;
    assert!(len > 1 << 20);

    // Cut after 100 000 bytes, once.
    let proxy = FaultProxy::start(&registry.host(), Fault::CutAfter(100_000));
    let cut = get(&proxy);
    assert_eq!((cut.status, cut.content_length()), (200, Some(len)));
    assert_eq!(cut.body, whole.body[..100_000]);
    let resumed = http_request(&proxy.host(), "GET", &path, &[("Range", "bytes=100000-")]).unwrap();
    assert_eq!(resumed.status, 206);
    assert_eq!(resumed.body, whole.body[100_000..]);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].faulted && !seen[1].faulted);
    assert_eq!(seen[1].range_start(), Some(100_000));

    // A config (smaller than the cut) is not what a cut aims at: it passes.
    let config_path = format!("/v2/lc/app/blobs/{}", remote.image_id);
    let config = http_request(&proxy.host(), "GET", &config_path, &[]).unwrap();
    assert_eq!(sha256(&config.body), remote.image_id);

    // Wrong bytes: the length kept, the gzip header's MTIME changed, so only the digest
    // tells; a rule with `times(usize::MAX)` spoils every GET of that blob.
    let proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new("GET", &blob, Fault::WrongBytes).times(usize::MAX),
    );
    for _ in 0..2 {
        let wrong = get(&proxy);
        assert_eq!(wrong.body.len() as u64, len);
        assert_ne!(sha256(&wrong.body), blob);
        let differing: Vec<usize> = (0..whole.body.len())
            .filter(|&i| whole.body[i] != wrong.body[i])
            .collect();
        assert_eq!(differing, [4], "one byte of the gzip MTIME");
    }

    // Truncated: the full Content-Length announced, less sent.
    let proxy = FaultProxy::start(&registry.host(), Fault::Truncate);
    let short_read = get(&proxy);
    assert_eq!(short_read.content_length(), Some(len));
    assert!(!short_read.body.is_empty() && (short_read.body.len() as u64) < len);
    assert_eq!(short_read.body, whole.body[..short_read.body.len()]);
    assert_eq!(get(&proxy).body, whole.body, "once only");

    // 429 with Retry-After, once.
    let proxy = FaultProxy::start(
        &registry.host(),
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    let slow = get(&proxy);
    assert_eq!(slow.status, 429);
    assert_eq!(slow.header("retry-after"), Some("1"));
    assert_eq!(get(&proxy).body, whole.body);

    // 500 twice, then the blob.
    let proxy = FaultProxy::start(&registry.host(), Fault::ServerError { times: 2 });
    let statuses: Vec<u16> = (0..3).map(|_| get(&proxy).status).collect();
    assert_eq!(statuses, [500, 500, 200]);

    // Stalled after 1000 bytes until released.
    let proxy = FaultProxy::start(&registry.host(), Fault::Stall { after_bytes: 1000 });
    let host = proxy.host();
    let stalled_path = path.clone();
    let client = std::thread::spawn(move || http_request(&host, "GET", &stalled_path, &[]));
    assert!(proxy.wait_for_fault(Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(!client.is_finished(), "the connection is held");
    proxy.release();
    let stalled = client.join().unwrap().unwrap();
    assert_eq!(stalled.body, whole.body[..1000]);

    // The registry gone: 502 from the proxy; the proxy stopped: refused.
    let mut registry = registry;
    let mut proxy = FaultProxy::start(&registry.host(), Fault::None);
    registry.stop();
    assert!(http_request(&registry.host(), "GET", "/v2/", &[]).is_err());
    assert_eq!(get(&proxy).status, 502);
    proxy.stop();
    assert!(http_request(&proxy.host(), "GET", "/v2/", &[]).is_err());
}

/// Docker 20.10 pulls from a plain registry on 127.0.0.1 without any configuration (its
/// default insecure range is 127.0.0.0/8) and runs what it pulled.
#[test]
fn docker_pulls_from_the_plain_registry() {
    let registry = Registry::start(Setup::Plain);
    let image = busybox_image();
    registry.push_image(&image, "lc/busybox:1");
    let docker = Dockerd::start();
    let reference = registry.reference("lc/busybox:1");
    docker_pulls_and_runs(&docker, &reference, &image);
}

// =======================================================================================
// layercake against the peers (issue 10).

/// The command line with a store of its own and a Docker config directory of its own (no
/// credential of the host's leaks in).
struct Lc {
    dir: TempDir,
}

impl Lc {
    fn new(label: &str) -> Lc {
        let dir = TempDir::new(label);
        std::fs::create_dir_all(dir.join("docker-config")).unwrap();
        Lc { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("store")
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.join("docker-config")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_layercake"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("LAYERCAKE_ROOT")
            .env("DOCKER_CONFIG", self.docker_config())
            .env_remove("REGISTRY_AUTH_FILE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run layercake")
    }

    /// Runs, asserts success, returns standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "layercake {args:?} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs, asserts failure, returns standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "layercake {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("UTF-8 errors")
    }

    /// `layercake inspect NAME` of a stored image, as JSON.
    fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["inspect", name])).expect("inspect prints JSON")
    }

    /// Loads `image` under `names` (a docker-archive written by layercake).
    fn load(&self, image: &Image, names: &[&str]) {
        let tar = self.dir.join(format!(
            "load-{}.tar",
            image.id().to_string()[7..19].to_owned()
        ));
        layercake::archive::Writer::new(layercake::archive::Format::DockerArchive)
            .image(image, names)
            .write(std::fs::File::create(&tar).unwrap())
            .unwrap();
        self.ok(&["load", "-i", tar.to_str().unwrap()]);
    }

    /// What a failed command must leave untouched: the blob names and `index.json`.
    fn state(&self) -> (BTreeSet<String>, Vec<u8>) {
        let blobs = self.root().join("blobs/sha256");
        let names = std::fs::read_dir(&blobs)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let index = std::fs::read(self.root().join("index.json")).unwrap_or_default();
        (names, index)
    }
}

/// The stored image `name` carries the ids the registry's copy has.
#[track_caller]
fn assert_stored_as(lc: &Lc, name: &str, remote: &RemoteImage) {
    let inspect = lc.inspect(name);
    assert_eq!(inspect[0]["Id"], remote.image_id, "{name}: ImageId");
    assert_eq!(
        inspect[0]["RootFS"]["Layers"],
        serde_json::json!(remote.diff_ids),
        "{name}: DiffIds"
    );
}

/// The lines of a pull's output for each layer: `<12 hex>: STATUS`.
fn layer_lines(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|l| {
            let (id, status) = l.split_once(": ")?;
            (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| (id.to_owned(), status.to_owned()))
        })
        .collect()
}

/// Asserts that a pull printed Docker's lines: the repository, each layer's final status,
/// the digest and the status line.
#[track_caller]
fn assert_pull_output(
    output: &str,
    reference: &str,
    remote: &RemoteImage,
    layers: &[(&str, &str)],
    status: &str,
) {
    let (repo, tag) = reference
        .split_once('/')
        .map(|(_, path)| path.rsplit_once(':').unwrap())
        .unwrap();
    let first = output.lines().next().unwrap_or_default();
    assert_eq!(first, format!("{tag}: Pulling from {repo}"), "{output}");
    let lines = layer_lines(output);
    for (digest, want) in layers {
        let last = lines
            .iter()
            .rev()
            .find(|(id, _)| id == short(digest))
            .unwrap_or_else(|| panic!("no line for {digest}:\n{output}"));
        assert_eq!(last.1, *want, "{digest}:\n{output}");
    }
    assert!(
        output
            .lines()
            .any(|l| l == format!("Digest: {}", remote.manifest_digest)),
        "{output}"
    );
    assert!(
        output
            .lines()
            .any(|l| l == format!("Status: {status} for {reference}")),
        "{output}"
    );
}

/// The blob GETs among some requests.
fn blob_gets(accesses: &[Access]) -> BTreeSet<String> {
    accesses
        .iter()
        .filter(|a| a.method == "GET")
        .filter_map(|a| a.blob().map(str::to_owned))
        .collect()
}

#[test]
fn pull_gives_the_ids_skopeo_pushed() {
    let registry = Registry::start(Setup::Plain);
    let busybox = busybox_image();
    let (base, app) = bookworm_like();
    let lc = Lc::new("pull-ids");
    for (image, name) in [(&busybox, "lc/busybox:1"), (&app, "lc/bookworm:app")] {
        let remote = registry.push_image(image, name);
        let reference = registry.reference(name);
        let out = lc.ok(&["pull", &reference]);
        let layers: Vec<(&str, &str)> = remote
            .layers
            .iter()
            .map(|d| (d.as_str(), "Pull complete"))
            .collect();
        assert_pull_output(&out, &reference, &remote, &layers, "Downloaded newer image");
        assert_stored_as(&lc, &reference, &remote);
    }
    assert_ne!(base.id(), app.id());
    // The store holds what the registry served, byte for byte.
    let remote = registry.remote_image(&registry.reference("lc/bookworm:app"));
    for blob in remote.layers.iter().chain([&remote.image_id]) {
        let stored = std::fs::read(common::blob_path(&lc.root(), blob)).unwrap();
        assert_eq!(&sha256(&stored), blob);
    }
    assert_eq!(
        std::fs::read(common::blob_path(&lc.root(), &remote.manifest_digest)).unwrap(),
        remote.manifest_bytes
    );
    // `images --digests`: the digest each repository was pulled with.
    let listing = lc.ok(&["images", "--digests"]);
    let row = listing
        .lines()
        .find(|l| l.contains("lc/bookworm") && l.contains(" app "))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(row.contains(&remote.manifest_digest), "{listing}");
}

#[test]
fn second_pull_is_up_to_date_without_blob_gets() {
    let registry = Registry::start(Setup::Plain);
    let remote = registry.push_image(&busybox_image(), "lc/busybox:1");
    let reference = registry.reference("lc/busybox:1");
    let lc = Lc::new("pull-twice");
    lc.ok(&["pull", &reference]);
    let before = lc.state();
    let mark = registry.log_mark();
    let out = lc.ok(&["pull", &reference]);
    let accesses = registry.accesses_since(mark);
    assert!(blob_gets(&accesses).is_empty(), "{accesses:#?}");
    assert!(
        accesses.iter().all(|a| a.blob().is_none()),
        "no blob request at all: {accesses:#?}"
    );
    assert_pull_output(&out, &reference, &remote, &[], "Image is up to date");
    assert_eq!(lc.state(), before);
}

#[test]
fn pull_onto_a_stored_base_fetches_only_the_rest() {
    let registry = Registry::start(Setup::Plain);
    let (base, app) = bookworm_like();
    registry.push_image(&base, "lc/bookworm:base");
    let remote = registry.push_image(&app, "lc/bookworm:app");
    let lc = Lc::new("pull-onto-base");
    lc.ok(&["pull", &registry.reference("lc/bookworm:base")]);

    let reference = registry.reference("lc/bookworm:app");
    let mark = registry.log_mark();
    let out = lc.ok(&["pull", &reference]);
    let gets = blob_gets(&registry.accesses_since(mark));
    let want: BTreeSet<String> = remote.layers[1..]
        .iter()
        .chain([&remote.image_id])
        .cloned()
        .collect();
    assert_eq!(gets, want, "only the new layers and the config");
    assert_pull_output(
        &out,
        &reference,
        &remote,
        &[
            (&remote.layers[0], "Already exists"),
            (&remote.layers[1], "Pull complete"),
            (&remote.layers[2], "Pull complete"),
        ],
        "Downloaded newer image",
    );
    assert_stored_as(&lc, &reference, &remote);
}

/// An image layercake committed, in the store under a name on the registry.
fn committed(lc: &Lc, name: &str) -> Image {
    let base = busybox_image();
    let mut c = Container::new(&base).unwrap();
    c.set_clock(1_700_000_100);
    c.write("hello.txt", "hello from layercake\n").unwrap();
    let image = c
        .commit(
            &layercake::CommitOptions::new()
                .created_by("layercake commit")
                .commit(layercake::Commit::new().created(1_700_000_200)),
        )
        .unwrap();
    lc.load(&image, &[name]);
    image
}

/// The per-layer lines of a push: (`<12 hex>`, status).
fn push_lines(output: &str) -> Vec<(String, String)> {
    layer_lines(output)
}

/// The `TAG: digest: sha256:… size: N` line of a push.
fn pushed_digest(output: &str, tag: &str) -> (String, usize) {
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("no digest line:\n{output}"));
    let rest = line.strip_prefix(&format!("{tag}: digest: ")).unwrap();
    let (digest, size) = rest.split_once(" size: ").unwrap();
    (digest.to_owned(), size.parse().unwrap())
}

#[test]
fn push_of_a_committed_image_reads_back_with_skopeo() {
    let registry = Registry::start(Setup::Plain);
    let lc = Lc::new("push");
    let reference = registry.reference("lc/hello:1");
    let image = committed(&lc, &reference);
    let out = lc.ok(&["push", &reference]);

    let raw = registry.skopeo_inspect_raw(&reference);
    let (digest, size) = pushed_digest(&out, "1");
    assert_eq!(digest, sha256(&raw));
    assert_eq!(size, raw.len());
    let remote = registry.remote_image(&reference);
    assert_eq!(remote.image_id, image.id().to_string());
    let ours: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
    assert_eq!(remote.diff_ids, ours);
    let lines = push_lines(&out);
    for blob in &remote.layers {
        assert!(
            lines
                .iter()
                .any(|(id, status)| id == short(blob) && status == "Pushed"),
            "{blob}:\n{out}"
        );
    }

    // skopeo copies it out and the DiffIds check out (skopeo verifies every digest).
    let back = TempDir::new("push-back");
    registry.skopeo_copy(
        &registry.docker("lc/hello:1"),
        &format!("oci:{}:back", back.path().display()),
        &[],
    );
    let read = layout_image(back.path(), "back");
    assert_eq!(read.image_id(), image.id().to_string());
    assert_eq!(read.diff_ids, ours);
}

#[test]
fn repeat_push_only_heads_and_puts_the_manifest() {
    let registry = Registry::start(Setup::Plain);
    let lc = Lc::new("push-again");
    let reference = registry.reference("lc/hello:1");
    committed(&lc, &reference);
    let first = lc.ok(&["push", &reference]);
    let mark = registry.log_mark();
    let again = lc.ok(&["push", &reference]);
    let accesses = registry.accesses_since(mark);
    for a in &accesses {
        let allowed = a.method == "HEAD"
            || (a.method == "GET" && a.path == "/v2/")
            || a.is("PUT", "/v2/lc/hello/manifests/1");
        assert!(allowed, "{a} in a repeat push: {accesses:#?}");
    }
    let puts = accesses.iter().filter(|a| a.method == "PUT").count();
    assert_eq!(puts, 1, "{accesses:#?}");
    assert_eq!(pushed_digest(&first, "1"), pushed_digest(&again, "1"));
    let lines = push_lines(&again);
    assert!(!lines.is_empty(), "{again}");
    assert!(
        lines
            .iter()
            .all(|(_, status)| status == "Layer already exists"),
        "{again}"
    );
}

#[test]
fn push_to_a_second_repository_mounts() {
    let registry = Registry::start(Setup::Plain);
    let lc = Lc::new("push-mount");
    let first = registry.reference("lc/hello:1");
    let image = committed(&lc, &first);
    lc.ok(&["push", &first]);
    let second = registry.reference("lc/other:2");
    lc.ok(&["tag", &first, &second]);
    let mark = registry.log_mark();
    let out = lc.ok(&["push", &second]);
    let accesses = registry.accesses_since(mark);

    let remote = registry.remote_image(&second);
    assert_eq!(remote.image_id, image.id().to_string());
    for blob in &remote.layers {
        let escaped = blob.replace(':', "%3A");
        assert!(
            accesses
                .iter()
                .any(|a| a.is("POST", "/v2/lc/other/blobs/uploads/")
                    && (a.path.contains(&format!("mount={escaped}"))
                        || a.path.contains(&format!("mount={blob}")))
                    && (a.path.contains("from=lc%2Fhello") || a.path.contains("from=lc/hello"))
                    && a.status == 201),
            "no mount of {blob}: {accesses:#?}"
        );
        assert!(
            push_lines(&out)
                .iter()
                .any(|(id, s)| id == short(blob) && s == "Mounted from lc/hello"),
            "{out}"
        );
    }
    assert!(
        !accesses
            .iter()
            .any(|a| a.method == "PATCH" || a.is("PUT", "/blobs/")),
        "nothing uploaded: {accesses:#?}"
    );
}

#[test]
fn two_platform_index_round_trips_and_platforms_resolve() {
    let registry = Registry::start(Setup::Plain);
    let two = registry.push_two_platforms("lc/multi:1");
    let source = registry.reference("lc/multi:1");
    let lc = Lc::new("multi");
    // Pulled whole, tagged and pushed elsewhere: the index goes, as it was.
    lc.ok(&["pull", "--all-platforms", &source]);
    let copy = registry.reference("lc/multi-copy:1");
    lc.ok(&["tag", &source, &copy]);
    lc.ok(&["push", &copy]);
    assert_eq!(
        registry.skopeo_inspect_raw(&copy),
        two.index,
        "the index bytes"
    );
    for manifest in &two.manifests {
        assert_eq!(
            sha256(&registry.skopeo_inspect_raw(&format!(
                "{}@{manifest}",
                registry.reference("lc/multi-copy")
            ))),
            *manifest
        );
    }

    // Registry to registry, the index too.
    let copied = registry.reference("lc/multi-copied:1");
    lc.ok(&[
        "copy",
        &format!("docker://{source}"),
        &format!("docker://{copied}"),
    ]);
    assert_eq!(
        registry.skopeo_inspect_raw(&copied),
        two.index,
        "copy keeps the index"
    );

    let arm = Lc::new("multi-arm");
    arm.ok(&["pull", "--platform", "linux/arm64", &source]);
    let inspect = arm.inspect(&source);
    assert_eq!(inspect[0]["Id"], two.arm64.id().to_string());
    assert_eq!(inspect[0]["Architecture"], "arm64");
    let amd = Lc::new("multi-amd");
    amd.ok(&["pull", "--platform", "linux/amd64", &source]);
    assert_eq!(amd.inspect(&source)[0]["Id"], two.amd64.id().to_string());
    // Again: the store keeps the platform's manifest of the index; asking the index (and that
    // manifest) tells it is up to date, and no blob is read.
    let mark = registry.log_mark();
    let again = amd.ok(&["pull", "--platform", "linux/amd64", &source]);
    assert!(again.contains("Status: Image is up to date for"), "{again}");
    let blob_gets: Vec<_> = registry
        .accesses_since(mark)
        .into_iter()
        .filter(|a| a.is("GET", "/blobs/"))
        .collect();
    assert!(blob_gets.is_empty(), "{blob_gets:?}");
}

/// A store holding the bookworm-like base, and the app pushed: what the fault tests pull.
fn fault_setup(label: &str) -> (Registry, Lc, RemoteImage) {
    let registry = Registry::start(Setup::Plain);
    let (base, app) = bookworm_like();
    registry.push_image(&base, "lc/bookworm:base");
    let remote = registry.push_image(&app, "lc/bookworm:app");
    let lc = Lc::new(label);
    lc.ok(&["pull", &registry.reference("lc/bookworm:base")]);
    (registry, lc, remote)
}

#[test]
fn a_blob_cut_midway_resumes_with_range() {
    let (registry, lc, remote) = fault_setup("fault-cut");
    let blob = &remote.layers[2];
    let proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new("GET", blob, Fault::CutAfter(300_000)),
    );
    let reference = proxy.reference("lc/bookworm:app");
    lc.ok(&["pull", &reference]);
    let gets: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains(blob.as_str()))
        .collect();
    assert!(gets.len() >= 2 && gets[0].faulted, "{gets:#?}");
    let start = gets[1]
        .range_start()
        .unwrap_or_else(|| panic!("the second GET has no Range: {gets:#?}"));
    assert!(start > 0 && start <= 300_000, "{gets:#?}");
    assert_eq!(gets[1].status, 206);
    assert_stored_as(&lc, &reference, &remote);
}

#[test]
fn wrong_bytes_fail_cleanly_and_leave_the_store() {
    let (registry, lc, remote) = fault_setup("fault-wrong");
    let blob = &remote.layers[2];
    // Every GET of the blob is spoilt: a retry cannot hide the check.
    let proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new("GET", blob, Fault::WrongBytes).times(usize::MAX),
    );
    let before = lc.state();
    let err = lc.fails(&["pull", &proxy.reference("lc/bookworm:app")]);
    assert!(err.contains(blob.as_str()), "the error names {blob}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!proxy.faulted().is_empty());
    assert_eq!(lc.state(), before, "the store is unchanged");
}

#[test]
fn a_truncated_blob_never_lands_partially() {
    let (registry, lc, remote) = fault_setup("fault-truncate");
    let blob = &remote.layers[2];
    let proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new("GET", blob, Fault::Truncate),
    );
    let reference = proxy.reference("lc/bookworm:app");
    let before = lc.state();
    let out = lc.run(&["pull", &reference]);
    assert!(!proxy.faulted().is_empty());
    if out.status.success() {
        assert_stored_as(&lc, &reference, &remote);
        let stored = std::fs::read(common::blob_path(&lc.root(), blob)).unwrap();
        assert_eq!(&sha256(&stored), blob);
    } else {
        assert_eq!(
            lc.state(),
            before,
            "a failed pull leaves the store as it was"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let (registry, lc, remote) = fault_setup("fault-429");
    let blob = &remote.layers[2];
    let proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new(
            "GET",
            blob,
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
        ),
    );
    let reference = proxy.reference("lc/bookworm:app");
    lc.ok(&["pull", &reference]);
    let gets: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains(blob.as_str()))
        .collect();
    assert_eq!(gets[0].status, 429);
    let retry = gets
        .iter()
        .find(|s| s.status == 200)
        .unwrap_or_else(|| panic!("no retry: {gets:#?}"));
    assert!(
        retry.at - gets[0].at >= Duration::from_secs(1),
        "retried before Retry-After: {gets:#?}"
    );
    assert_stored_as(&lc, &reference, &remote);
}

#[test]
fn a_server_error_once_is_retried() {
    let (registry, lc, remote) = fault_setup("fault-500");
    let proxy = FaultProxy::start(&registry.host(), Fault::ServerError { times: 1 });
    let reference = proxy.reference("lc/bookworm:app");
    lc.ok(&["pull", &reference]);
    let faulted = proxy.faulted();
    assert_eq!(faulted.len(), 1);
    assert!(
        proxy
            .seen()
            .iter()
            .any(|s| s.path == faulted[0].path && s.status == 200),
        "{:#?}",
        proxy.seen()
    );
    assert_stored_as(&lc, &reference, &remote);
}

#[test]
fn the_registry_stopping_mid_pull_fails_cleanly() {
    let (mut registry, lc, remote) = fault_setup("fault-stop");
    let blob = &remote.layers[2];
    let mut proxy = FaultProxy::start_with(
        &registry.host(),
        FaultRule::new(
            "GET",
            blob,
            Fault::Stall {
                after_bytes: 200_000,
            },
        ),
    );
    let before = lc.state();
    let child = lc
        .command(&["pull", &proxy.reference("lc/bookworm:app")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        proxy.wait_for_fault(Duration::from_secs(60)),
        "the blob never started"
    );
    registry.stop();
    proxy.stop();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "retries are bounded in time"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.is_empty(), "{err}");
    assert_eq!(lc.state(), before, "the store is unchanged");
}

#[test]
fn tls_with_basic_auth_takes_cert_dir_creds_and_authfile() {
    let registry = Registry::start(Setup::TlsBasic);
    let remote = registry.push_image(&busybox_image(), "lc/busybox:1");
    let reference = registry.reference("lc/busybox:1");
    let cert_dir = registry.cert_dir();
    let cert_dir = cert_dir.to_str().unwrap();
    let creds = registry.creds();
    // certs.d: the system's directories are not for a test to write, so the per-user one,
    // `$HOME/.docker/certs.d/HOST:PORT`, with HOME pointed at the registry's; and the
    // per-host directory given as --cert-dir.
    let per_host = registry.certs_d_dir().join(registry.host());

    // No CA: the certificate is refused, by name of the problem.
    let lc = Lc::new("tls");
    let err = lc.fails(&["pull", "--creds", &creds, &reference]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // No credentials: refused.
    let err = lc.fails(&["pull", "--cert-dir", cert_dir, &reference]);
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    lc.ok(&[
        "pull",
        "--cert-dir",
        cert_dir,
        "--creds",
        &creds,
        &reference,
    ]);
    assert_stored_as(&lc, &reference, &remote);

    let other = Lc::new("tls-certs-d");
    other.ok(&[
        "pull",
        "--cert-dir",
        per_host.to_str().unwrap(),
        "--creds",
        &creds,
        &reference,
    ]);
    assert_stored_as(&other, &reference, &remote);
    let by_home = Lc::new("tls-home");
    let out = by_home
        .command(&["pull", "--creds", &creds, &reference])
        .env("HOME", registry.home_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "certs.d under HOME: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_stored_as(&by_home, &reference, &remote);

    // --tls-verify=false: any certificate.
    let insecure = Lc::new("tls-insecure");
    insecure.ok(&["pull", "--tls-verify=false", "--creds", &creds, &reference]);

    // --authfile in Docker's format.
    let authfile = lc.dir.join("auth.json");
    let auth = base64_encode(creds.as_bytes());
    std::fs::write(
        &authfile,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            registry.host()
        ),
    )
    .unwrap();
    let target = registry.reference("lc/pushed:1");
    lc.ok(&["tag", &reference, &target]);
    lc.ok(&[
        "push",
        "--cert-dir",
        cert_dir,
        "--authfile",
        authfile.to_str().unwrap(),
        &target,
    ]);
    assert_eq!(registry.remote_image(&target).image_id, remote.image_id);
}

/// Standard base64 with padding (what config.json's `auth` holds).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_of_credentials() {
    assert_eq!(
        base64_encode(b"lc-user:lc-secret"),
        "bGMtdXNlcjpsYy1zZWNyZXQ="
    );
    assert_eq!(base64_encode(b"ab"), "YWI=");
    assert_eq!(base64_encode(b"abc"), "YWJj");
}

#[test]
fn token_auth_pulls_anonymously_pushes_with_creds_and_logs_in() {
    let registry = Registry::start(Setup::Token);
    let remote = registry.push_image(&busybox_image(), "lc/busybox:1");
    let reference = registry.reference("lc/busybox:1");
    let lc = Lc::new("token");

    let before = registry.token_requests().len();
    lc.ok(&["pull", &reference]);
    assert_stored_as(&lc, &reference, &remote);
    let asked = &registry.token_requests()[before..];
    assert!(
        asked.iter().any(|t| !t.authenticated
            && t.scopes.iter().any(|s| s == "repository:lc/busybox:pull")),
        "{asked:#?}"
    );

    let target = registry.reference("lc/mine:1");
    lc.ok(&["tag", &reference, &target]);
    let err = lc.fails(&["push", &target]);
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "a clear refusal: {err}"
    );
    assert!(err.contains("lc/mine"), "names the repository: {err}");

    let before = registry.token_requests().len();
    lc.ok(&["push", "--creds", &registry.creds(), &target]);
    assert_eq!(registry.remote_image(&target).image_id, remote.image_id);
    let asked = &registry.token_requests()[before..];
    assert!(
        asked.iter().any(|t| t.authenticated
            && t.scopes
                .iter()
                .any(|s| s.starts_with("repository:lc/mine:") && s.contains("push"))
            && t.granted
                .iter()
                .any(|(name, actions)| name == "lc/mine" && actions.iter().any(|a| a == "push"))),
        "{asked:#?}"
    );

    // login checks the password and writes DOCKER_CONFIG/config.json; push then needs no
    // flag; logout takes the entry out, and push is refused again.
    let mut login = lc
        .command(&["login", "-u", registry.username(), "--password-stdin"])
        .arg(registry.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = login.stdin.take().unwrap();
        writeln!(stdin, "{}", registry.password()).unwrap();
    }
    let out = login.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Login Succeeded"));
    let config: serde_json::Value = common::read_json(&lc.docker_config().join("config.json"));
    assert_eq!(
        config["auths"][registry.host()]["auth"],
        base64_encode(registry.creds().as_bytes())
    );
    let logged_in = registry.reference("lc/login:1");
    lc.ok(&["tag", &reference, &logged_in]);
    lc.ok(&["push", &logged_in]);
    assert_eq!(registry.remote_image(&logged_in).image_id, remote.image_id);

    lc.ok(&["logout", &registry.host()]);
    let config: serde_json::Value = common::read_json(&lc.docker_config().join("config.json"));
    assert!(config["auths"].get(registry.host()).is_none(), "{config}");
    let again = registry.reference("lc/login:2");
    lc.ok(&["tag", &reference, &again]);
    let err = lc.fails(&["push", &again]);
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );

    // A wrong password: login fails and writes nothing.
    let out = lc
        .command(&["login", "-u", registry.username(), "--password-stdin"])
        .arg(registry.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            writeln!(child.stdin.take().unwrap(), "wrong")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    let config: serde_json::Value = common::read_json(&lc.docker_config().join("config.json"));
    assert!(config["auths"].get(registry.host()).is_none(), "{config}");
}

/// A private dockerd pulls `reference`, sees `image`'s id, and runs `/bin/busybox true` in it.
fn docker_pulls_and_runs(docker: &Dockerd, reference: &str, image: &Image) {
    docker.docker().args(["pull", reference]).run();
    let id = docker
        .docker()
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .run_text();
    assert_eq!(id.trim(), image.id().to_string());
    docker
        .docker()
        .args(["run", "--rm", "--network", "none", reference])
        .args(["/bin/busybox", "true"])
        .run();
}

#[test]
fn docker_runs_what_layercake_pushed() {
    let registry = Registry::start(Setup::Plain);
    let lc = Lc::new("push-docker");
    let reference = registry.reference("lc/hello:1");
    let image = committed(&lc, &reference);
    lc.ok(&["push", &reference]);
    let docker = Dockerd::start();
    docker_pulls_and_runs(&docker, &reference, &image);
    let hello = docker
        .docker()
        .args(["run", "--rm", "--network", "none", &reference])
        .args(["/bin/busybox", "cat", "/hello.txt"])
        .run_text();
    assert_eq!(hello, "hello from layercake\n");
}

#[test]
fn inspect_and_copy_speak_docker_refs() {
    let registry = Registry::start(Setup::Plain);
    let (_, app) = bookworm_like();
    let remote = registry.push_image(&app, "lc/bookworm:app");
    let lc = Lc::new("copy");
    let name = registry.docker("lc/bookworm:app");

    // inspect docker://: the image without pulling it.
    let inspect: serde_json::Value = serde_json::from_str(&lc.ok(&["inspect", &name])).unwrap();
    assert_eq!(inspect[0]["Id"], remote.image_id);
    assert_eq!(
        inspect[0]["RootFS"]["Layers"],
        serde_json::json!(remote.diff_ids)
    );
    for blob in &remote.layers {
        let hex = blob.strip_prefix("sha256:").unwrap();
        assert!(!lc.state().0.contains(hex), "inspect fetched layer {blob}");
    }

    // registry → registry, byte for byte.
    let copy = registry.docker("lc/copied:1");
    lc.ok(&["copy", &name, &copy]);
    assert_eq!(
        registry.skopeo_inspect_raw(&registry.reference("lc/copied:1")),
        remote.manifest_bytes
    );

    // registry → OCI layout → registry.
    let layout = TempDir::new("copy-layout");
    let oci = format!("oci:{}:app", layout.path().display());
    lc.ok(&["copy", &name, &oci]);
    let read = layout_image(layout.path(), "app");
    assert_eq!(read.image_id(), remote.image_id);
    assert_eq!(read.blob_digests(), remote.layers);
    let back = registry.docker("lc/from-oci:1");
    lc.ok(&["copy", &oci, &back]);
    assert_eq!(
        registry
            .remote_image(&registry.reference("lc/from-oci:1"))
            .manifest_digest,
        remote.manifest_digest
    );

    // registry → docker-archive (layers uncompressed: same DiffIds, same ImageId).
    let tar = lc.dir.join("app.tar");
    lc.ok(&["copy", &name, &format!("docker-archive:{}", tar.display())]);
    let archive = layercake::archive::Archive::open(&tar).unwrap();
    let image = &archive.images()[0];
    assert_eq!(image.image().id().to_string(), remote.image_id);

    // a stored name → registry.
    lc.ok(&["pull", &registry.reference("lc/bookworm:app")]);
    let stored = registry.reference("lc/bookworm:app");
    let target = registry.docker("lc/from-store:1");
    lc.ok(&["copy", &stored, &target]);
    assert_eq!(
        registry
            .remote_image(&registry.reference("lc/from-store:1"))
            .image_id,
        remote.image_id
    );
}

#[test]
fn edits_in_the_registry_move_only_what_changed() {
    let registry = Registry::start(Setup::Plain);
    let (base, _) = bookworm_like();
    let base_remote = registry.push_image(&base, "lc/base:1");
    let other_base = registry.push_image(&busybox_image(), "lc/other:1");
    let lc = Lc::new("edits");
    let added = layercake::Layer::builder()
        .file("etc/added", "hello\n")
        .build()
        .unwrap();
    let tar = lc.dir.join("added.tar");
    std::fs::write(&tar, added.tar().unwrap().to_bytes().unwrap()).unwrap();
    let uploads = |mark| {
        registry
            .accesses_since(mark)
            .into_iter()
            .filter(|a| a.is("PUT", "/blobs/uploads/") || a.is("PATCH", "/blobs/uploads/"))
            .count()
    };
    let base_gets = |mark| {
        registry
            .accesses_since(mark)
            .into_iter()
            .filter(|a| {
                a.method == "GET"
                    && a.blob()
                        .is_some_and(|b| base_remote.layers.iter().any(|l| l == b))
            })
            .count()
    };

    // append: the new layer and the config go up; the base's blobs are mounted, never read.
    let mark = registry.log_mark();
    lc.ok(&[
        "append",
        &registry.docker("lc/base:1"),
        tar.to_str().unwrap(),
        "-t",
        &registry.docker("lc/app:1"),
    ]);
    assert_eq!(uploads(mark), 2, "one layer and one config uploaded");
    assert_eq!(base_gets(mark), 0, "no base blob read");
    let mounts = registry
        .accesses_since(mark)
        .into_iter()
        .filter(|a| a.is("POST", "mount=") && a.status == 201)
        .count();
    assert_eq!(mounts, base_remote.layers.len(), "every base layer mounted");
    let app = registry.remote_image(&registry.reference("lc/app:1"));
    let n = base_remote.layers.len();
    assert_eq!(app.layers[..n], base_remote.layers[..]);
    assert_eq!(app.layers.len(), n + 1);
    assert_eq!(app.diff_ids[..n], base_remote.diff_ids[..]);
    assert_eq!(app.diff_ids[n], added.diff_id().to_string());

    // mutate: the config alone goes up.
    let mark = registry.log_mark();
    lc.ok(&[
        "mutate",
        &registry.docker("lc/app:1"),
        "--env",
        "GREETING=hi",
        "-t",
        &registry.docker("lc/app:2"),
    ]);
    assert_eq!(uploads(mark), 1, "only the config uploaded");
    let mutated = registry.remote_image(&registry.reference("lc/app:2"));
    assert_eq!(mutated.layers, app.layers);
    let config: serde_json::Value = serde_json::from_slice(&mutated.config).unwrap();
    let env = config["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(env.iter().any(|e| e == "GREETING=hi"), "{env:?}");

    // rebase: the new base's layers below the image's own; nothing of either base read.
    let mark = registry.log_mark();
    lc.ok(&[
        "rebase",
        &registry.docker("lc/app:1"),
        "--old-base",
        &registry.docker("lc/base:1"),
        "--new-base",
        &registry.docker("lc/other:1"),
        "-t",
        &registry.docker("lc/app:3"),
    ]);
    assert_eq!(uploads(mark), 1, "only the config uploaded");
    assert_eq!(base_gets(mark), 0, "no base blob read");
    let rebased = registry.remote_image(&registry.reference("lc/app:3"));
    let mut want = other_base.layers.clone();
    want.push(app.layers[n].clone());
    assert_eq!(rebased.layers, want);
    let mut want_ids = other_base.diff_ids.clone();
    want_ids.push(app.diff_ids[n].clone());
    assert_eq!(rebased.diff_ids, want_ids);

    // An image not built on the old base is refused, and nothing is written.
    let err = lc.fails(&[
        "rebase",
        &registry.docker("lc/app:1"),
        "--old-base",
        &registry.docker("lc/other:1"),
        "--new-base",
        &registry.docker("lc/base:1"),
        "-t",
        &registry.docker("lc/app:4"),
    ]);
    assert!(err.contains("base"), "{err}");
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(registry.docker("lc/app:4"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "lc/app:4 must not exist");
}
