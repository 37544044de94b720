//! The kinds of content of the OCI distribution-spec conformance suite, round-tripped through
//! a real registry (`docker-registry` 2.8, plain HTTP) with the exact bytes and digests: an
//! image, an index of two images, a nested index, an OCI 1.1 artifact with a `subject`, the
//! empty blob, and a manifest with fields this crate does not know, written oddly.
//!
//! Each is built by hand (JSON written here, blobs of our own), put with the raw client calls
//! (`put_blob`, `put_manifest`), then:
//!
//! 1. copied to another repository of the same registry (every blob mounted: the access log
//!    shows `POST …?mount=` answered 201, and no blob upload) and to a second registry
//!    (every blob streamed), each destination serving the same bytes;
//! 2. for images and indexes of images, pulled into a store on disk (all platforms), whose
//!    manifest bytes are those pushed, and pushed from the store to a third repository (and
//!    to the second registry), which serves them again byte for byte.
#![cfg(feature = "cli")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use layercake::archive::oci::{Descriptor, CONFIG_V1, INDEX_V1, MANIFEST_V1};
use layercake::registry::{Client, PullOptions, PushOptions, Transfer};
use layercake::{Digest, Error, Reference, Store};

use common::registry::{http_request, Access, Registry, Setup};
use common::TempDir;

const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI 1.1's empty descriptor: the config of an artifact that has none.
const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
/// The digest of `{}`, as the image-spec gives it.
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The digest of no bytes at all.
const EMPTY_DIGEST: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const ARTIFACT_TYPE: &str = "application/vnd.example+type";
const ARTIFACT_LAYER: &str = "application/vnd.example.payload.v1";

// ---------------------------------------------------------------------------------------
// Registries and the client.

/// A plain-HTTP `docker-registry` of the test's own; a clear failure when it is missing.
fn registry() -> Registry {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .any(|dir| dir.join("docker-registry").is_file());
    assert!(
        found,
        "these tests need `docker-registry` (distribution 2.8), which is not installed: \
         apt-get install -y docker-registry (.ci/run installs it)"
    );
    Registry::start(Setup::Plain)
}

fn client() -> Client {
    Client::new()
}

fn reference(registry: &Registry, repo_tag: &str) -> Reference {
    Reference::parse(&registry.reference(repo_tag)).expect("a reference")
}

// ---------------------------------------------------------------------------------------
// Content, built by hand.

/// A manifest or index as written here: its media type and bytes, the blobs it names
/// directly (with their bytes) and the manifests it names (built the same way).
#[derive(Clone)]
struct Built {
    media_type: String,
    bytes: Bytes,
    blobs: Vec<(Descriptor, Bytes)>,
    children: Vec<Built>,
}

impl Built {
    fn digest(&self) -> Digest {
        Digest::sha256(&self.bytes)
    }

    fn descriptor(&self) -> Descriptor {
        Descriptor::of(&self.media_type, &self.bytes)
    }

    /// Every blob reached, each once, in the order met.
    fn all_blobs(&self) -> Vec<(Descriptor, Bytes)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        self.collect_blobs(&mut seen, &mut out);
        out
    }

    fn collect_blobs(&self, seen: &mut BTreeSet<Digest>, out: &mut Vec<(Descriptor, Bytes)>) {
        for child in &self.children {
            child.collect_blobs(seen, out);
        }
        for (desc, bytes) in &self.blobs {
            if seen.insert(desc.digest) {
                out.push((desc.clone(), bytes.clone()));
            }
        }
    }

    /// The manifests below this one (children, grandchildren), each once.
    fn below(&self) -> Vec<&Built> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut todo: Vec<&Built> = self.children.iter().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.digest()) {
                out.push(m);
                todo.extend(m.children.iter());
            }
        }
        out
    }
}

/// `{"mediaType":…,"digest":…,"size":…}`, written by hand.
fn desc_json(desc: &Descriptor) -> String {
    format!(
        r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
        desc.media_type, desc.digest, desc.size
    )
}

/// A tar of regular files (and their parent directory), with fixed metadata.
fn layer_tar(dir: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_path(format!("{dir}/")).expect("a tar path");
    header.set_mode(0o755);
    header.set_mtime(1_700_000_000);
    header.set_size(0);
    header.set_cksum();
    builder
        .append(&header, std::io::empty())
        .expect("a tar entry");
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header
            .set_path(format!("{dir}/{name}"))
            .expect("a tar path");
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).expect("a tar entry");
    }
    builder.into_inner().expect("a tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A layer to build: a directory and its files (name, contents).
type LayerFiles<'a> = (&'a str, &'a [(&'a str, &'a [u8])]);

/// An image for `arch`: one gzip layer per entry of `layers`, a config with the layers'
/// DiffIds, an OCI manifest.
fn image(arch: &str, layers: &[LayerFiles<'_>]) -> Built {
    let mut blobs = Vec::new();
    let mut diff_ids = Vec::new();
    for (dir, files) in layers {
        let tar = layer_tar(dir, files);
        diff_ids.push(format!("\"{}\"", Digest::sha256(&tar)));
        let blob = Bytes::from(gzip(&tar));
        blobs.push((Descriptor::of(LAYER_GZIP, &blob), blob));
    }
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","created":"2024-01-02T03:04:05Z","config":{{"Env":["PATH=/usr/bin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}},"rootfs":{{"type":"layers","diff_ids":[{}]}},"history":[{{"created":"2024-01-02T03:04:05Z","created_by":"layercake registry_content {arch}"}}]}}"#,
        diff_ids.join(",")
    );
    let config = Bytes::from(config);
    let config_desc = Descriptor::of(CONFIG_V1, &config);
    let manifest = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{MANIFEST_V1}\",\n  \"config\": {},\n  \"layers\": [\n    {}\n  ]\n}}",
        desc_json(&config_desc),
        blobs
            .iter()
            .map(|(d, _)| desc_json(d))
            .collect::<Vec<_>>()
            .join(",\n    ")
    );
    blobs.insert(0, (config_desc, config));
    Built {
        media_type: MANIFEST_V1.to_owned(),
        bytes: Bytes::from(manifest),
        blobs,
        children: Vec::new(),
    }
}

/// The image of the image test: two layers.
fn app_image() -> Built {
    image(
        "amd64",
        &[
            (
                "bin",
                &[("hello", b"#!/bin/sh\necho hello\n"), ("true", b"")],
            ),
            ("etc", &[("motd", b"layercake registry content\n")]),
        ],
    )
}

/// An index of images for linux/amd64 and linux/arm64.
fn two_platform_index() -> Built {
    let amd64 = image("amd64", &[("opt", &[("arch", b"amd64\n")])]);
    let arm64 = image("arm64", &[("opt", &[("arch", b"arm64\n")])]);
    let entry = |m: &Built, arch: &str| {
        format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            m.media_type,
            m.digest(),
            m.bytes.len()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX_V1}","manifests":[{},{}]}}"#,
        entry(&amd64, "amd64"),
        entry(&arm64, "arm64")
    );
    Built {
        media_type: INDEX_V1.to_owned(),
        bytes: Bytes::from(index),
        blobs: Vec::new(),
        children: vec![amd64, arm64],
    }
}

/// An index whose only child is `inner` (an index), without a platform.
fn nested_index(inner: Built) -> Built {
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX_V1}","manifests":[{}],"annotations":{{"org.example.kind":"nested"}}}}"#,
        desc_json(&inner.descriptor())
    );
    Built {
        media_type: INDEX_V1.to_owned(),
        bytes: Bytes::from(index),
        blobs: Vec::new(),
        children: vec![inner],
    }
}

/// The empty descriptor's blob, `{}`.
fn empty_json() -> (Descriptor, Bytes) {
    let bytes = Bytes::from_static(b"{}");
    (Descriptor::of(EMPTY_JSON, &bytes), bytes)
}

/// An OCI 1.1 artifact: `artifactType`, the empty config, `layers` of its own, and a
/// `subject` if given.
fn artifact(layers: Vec<(Descriptor, Bytes)>, subject: Option<&Built>) -> Built {
    let (config, config_bytes) = empty_json();
    let subject = subject
        .map(|s| format!(",\"subject\":{}", desc_json(&s.descriptor())))
        .unwrap_or_default();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_V1}","artifactType":"{ARTIFACT_TYPE}","config":{{"mediaType":"{EMPTY_JSON}","digest":"{}","size":2,"data":"e30="}},"layers":[{}]{subject},"annotations":{{"org.opencontainers.image.created":"2024-01-02T03:04:05Z"}}}}"#,
        config.digest,
        layers
            .iter()
            .map(|(d, _)| desc_json(d))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut blobs = vec![(config, config_bytes)];
    blobs.extend(layers);
    Built {
        media_type: MANIFEST_V1.to_owned(),
        bytes: Bytes::from(manifest),
        blobs,
        children: Vec::new(),
    }
}

/// Bytes that do not repeat.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Putting content with the raw calls.

fn put_blob(client: &Client, to: &Reference, desc: &Descriptor, bytes: &Bytes) -> Transfer {
    let owned = bytes.clone();
    client
        .put_blob(
            to,
            desc,
            &[],
            &mut || Ok(Box::new(std::io::Cursor::new(owned.clone()))),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("put_blob {} to {to}: {e}", desc.digest))
}

/// Puts `built` into `repo` of `registry`: blobs, the manifests below by digest, then
/// `built` under `tag`.
fn upload(client: &Client, registry: &Registry, repo: &str, tag: &str, built: &Built) {
    let at = reference(registry, &format!("{repo}:{tag}"));
    for (desc, bytes) in built.all_blobs() {
        let transfer = put_blob(client, &at, &desc, &bytes);
        assert_eq!(
            transfer,
            Transfer::Done {
                digest: desc.digest,
                size: desc.size
            }
        );
    }
    // Bottom up: a registry checks that an index's children are there.
    let mut below = built.below();
    below.reverse();
    for m in below {
        let pinned = at.with_digest(m.digest());
        let digest = client
            .put_manifest(&pinned, &m.media_type, &m.bytes)
            .unwrap_or_else(|e| panic!("put_manifest {pinned}: {e}\n{}", registry.log()));
        assert_eq!(digest, m.digest());
    }
    let digest = client
        .put_manifest(&at, &built.media_type, &built.bytes)
        .unwrap_or_else(|e| panic!("put_manifest {at}: {e}\n{}", registry.log()));
    assert_eq!(digest, built.digest());
}

// ---------------------------------------------------------------------------------------
// Checks.

fn read_blob(client: &Client, from: &Reference, desc: &Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    client
        .blob(from, desc)
        .unwrap_or_else(|e| panic!("blob {} of {from}: {e}", desc.digest))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading blob {} of {from}: {e}", desc.digest));
    out
}

/// `at` serves `built` byte for byte: the top (through the client and through skopeo), every
/// manifest below by digest, every blob.
fn assert_serves(client: &Client, registry: &Registry, at: &Reference, built: &Built) {
    let (desc, bytes) = client
        .manifest(at)
        .unwrap_or_else(|e| panic!("manifest {at}: {e}"));
    assert_eq!(bytes, built.bytes, "{at} serves the bytes put");
    assert_eq!(desc.digest, built.digest(), "{at}");
    assert_eq!(desc.size, built.bytes.len() as u64, "{at}");
    assert_eq!(desc.media_type, built.media_type, "{at}");
    assert_eq!(
        registry.skopeo_inspect_raw(&at.to_string()),
        built.bytes.to_vec(),
        "skopeo reads {at} as put"
    );
    for m in built.below() {
        let pinned = at.with_digest(m.digest());
        let (desc, bytes) = client
            .manifest(&pinned)
            .unwrap_or_else(|e| panic!("manifest {pinned}: {e}"));
        assert_eq!(bytes, m.bytes, "{pinned}");
        assert_eq!(desc.media_type, m.media_type, "{pinned}");
    }
    for (desc, bytes) in built.all_blobs() {
        assert_eq!(
            client.has_blob(at, desc.digest).expect("has_blob"),
            Some(desc.size),
            "{at} has blob {}",
            desc.digest
        );
        assert_eq!(read_blob(client, at, &desc), bytes, "blob {}", desc.digest);
    }
}

/// How many manifests `built` is (itself and those below).
fn manifest_count(built: &Built) -> usize {
    1 + built.below().len()
}

/// Copies `from` to `to_repo_tag` on the same registry: every blob mounted (one `POST
/// …?mount=` answered 201 each), nothing uploaded, the manifests put; `to` serves the bytes.
fn copy_within(
    client: &Client,
    registry: &Registry,
    from: &Reference,
    to_repo_tag: &str,
    built: &Built,
) {
    let to = reference(registry, to_repo_tag);
    let mark = registry.log_mark();
    let report = client
        .copy(from, &to, PushOptions::new())
        .unwrap_or_else(|e| panic!("copy {from} {to}: {e}\n{}", registry.log()));
    let log = registry.accesses_since(mark);
    assert_eq!(report.manifest.digest, built.digest(), "{to}");
    assert_eq!(report.manifest.size, built.bytes.len() as u64);
    assert_eq!(report.reference, to);
    for transfer in &report.layers {
        assert!(
            matches!(transfer, Transfer::Mounted { from: repo, .. } if repo == from.repository()),
            "every layer mounted from {}: {:?}",
            from.repository(),
            report.layers
        );
    }

    let uploads = format!("/v2/{}/blobs/uploads/", to.repository());
    for (desc, _) in built.all_blobs() {
        let hex = desc.digest.to_hex().to_string();
        let mounts: Vec<&Access> = log
            .iter()
            .filter(|a| {
                a.is("POST", &uploads) && a.path.contains("mount=") && a.path.contains(&hex)
            })
            .collect();
        assert_eq!(mounts.len(), 1, "one mount of {}: {log:#?}", desc.digest);
        assert_eq!(mounts[0].status, 201, "mounted: {}", mounts[0]);
        assert!(
            mounts[0]
                .path
                .contains(&format!("from={}", from.repository()))
                || mounts[0]
                    .path
                    .contains(&format!("from={}", from.repository().replace('/', "%2F"))),
            "from {}: {}",
            from.repository(),
            mounts[0]
        );
    }
    let blob_writes: Vec<&Access> = log
        .iter()
        .filter(|a| {
            a.method == "PATCH"
                || (a.method == "PUT" && a.path.contains("/blobs/"))
                || (a.method == "POST" && a.status != 201)
        })
        .collect();
    assert!(blob_writes.is_empty(), "no blob uploaded: {blob_writes:#?}");
    let manifest_puts: Vec<&Access> = log
        .iter()
        .filter(|a| a.is("PUT", &format!("/v2/{}/manifests/", to.repository())))
        .collect();
    assert_eq!(manifest_puts.len(), manifest_count(built), "{log:#?}");
    assert!(manifest_puts.iter().all(|a| a.status == 201), "{log:#?}");
    assert_serves(client, registry, &to, built);
}

/// Copies `from` (on `a`) to `to_repo_tag` on `b`: every blob read from `a` and uploaded to
/// `b` (no mount asked); `b` serves the bytes.
fn copy_across(
    client: &Client,
    a: &Registry,
    b: &Registry,
    from: &Reference,
    to_repo_tag: &str,
    built: &Built,
) {
    let to = reference(b, to_repo_tag);
    let (mark_a, mark_b) = (a.log_mark(), b.log_mark());
    let report = client
        .copy(from, &to, PushOptions::new())
        .unwrap_or_else(|e| panic!("copy {from} {to}: {e}\n{}", b.log()));
    let (log_a, log_b) = (a.accesses_since(mark_a), b.accesses_since(mark_b));
    assert_eq!(report.manifest.digest, built.digest(), "{to}");
    assert!(
        report
            .layers
            .iter()
            .all(|t| matches!(t, Transfer::Done { .. })),
        "every layer uploaded: {:?}",
        report.layers
    );
    assert!(
        log_b.iter().all(|a| !a.path.contains("mount=")),
        "no mount across registries: {log_b:#?}"
    );
    assert!(
        log_a
            .iter()
            .all(|a| matches!(a.method.as_str(), "GET" | "HEAD")),
        "the source is only read: {log_a:#?}"
    );
    let uploads = format!("/v2/{}/blobs/uploads/", to.repository());
    let source_blobs = format!("/v2/{}/blobs/", from.repository());
    for (desc, _) in built.all_blobs() {
        let hex = desc.digest.to_hex().to_string();
        assert!(
            log_a.iter().any(|a| a.is("GET", &source_blobs)
                && a.blob() == Some(&desc.digest.to_string())
                && a.status == 200),
            "blob {} read from the source: {log_a:#?}",
            desc.digest
        );
        assert!(
            log_b
                .iter()
                .any(|a| a.is("PUT", &uploads) && a.path.contains(&hex) && a.status == 201),
            "blob {} uploaded whole: {log_b:#?}",
            desc.digest
        );
    }
    assert_serves(client, b, &to, built);
}

/// Every file under `root` (relative path → its bytes' digest, or what a link points at).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            if meta.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(root, &path, out);
            } else if meta.is_symlink() {
                let target = std::fs::read_link(&path).expect("readlink");
                out.insert(rel, format!("-> {}", target.display()));
            } else {
                let bytes = std::fs::read(&path).expect("read a store file");
                out.insert(rel, Digest::sha256(&bytes).to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Pulls `from` (all platforms) into a new store on disk: the store keeps `built`'s bytes,
/// every blob and manifest below, also once opened again; then pushes it from the store to
/// `third_repo_tag` (mounts allowed) and to `other` (streamed from the store's files), which
/// serve the bytes.
fn pull_and_push_stored(
    client: &Client,
    registry: &Registry,
    other: &Registry,
    from: &Reference,
    third_repo_tag: &str,
    built: &Built,
) {
    let dir = TempDir::new("content-store");
    let root = dir.join("store");
    let mut store = Store::open(&root).expect("a store");
    let report = client
        .pull(from, &mut store, PullOptions::new().all_platforms(true))
        .unwrap_or_else(|e| panic!("pull {from}: {e}"));
    assert_eq!(report.manifest.digest, built.digest(), "pulled {from}");
    assert!(!report.up_to_date);

    let name = from.to_string();
    let check_store = |store: &Store| {
        let (desc, bytes) = store
            .manifest(&name)
            .unwrap_or_else(|e| panic!("store manifest {name}: {e}"));
        assert_eq!(bytes, built.bytes, "the store keeps the bytes pulled");
        assert_eq!(desc.digest, built.digest());
        assert_eq!(desc.size, built.bytes.len() as u64);
        assert_eq!(desc.media_type, built.media_type);
        for m in built.below() {
            let kept = store
                .blob(m.digest())
                .and_then(|c| c.to_bytes())
                .unwrap_or_else(|e| panic!("store manifest blob {}: {e}", m.digest()));
            assert_eq!(kept, m.bytes, "manifest {} kept", m.digest());
        }
        for (desc, bytes) in built.all_blobs() {
            let kept = store
                .blob(desc.digest)
                .and_then(|c| c.to_bytes())
                .unwrap_or_else(|e| panic!("store blob {}: {e}", desc.digest));
            assert_eq!(kept, bytes, "blob {} kept", desc.digest);
        }
    };
    check_store(&store);
    drop(store);
    let store = Store::open(&root).expect("the store again");
    check_store(&store);

    let third = reference(registry, third_repo_tag);
    let pushed = client
        .push_stored(&store, &name, &third, PushOptions::new())
        .unwrap_or_else(|e| panic!("push_stored {name} {third}: {e}\n{}", registry.log()));
    assert_eq!(pushed.manifest.digest, built.digest(), "pushed to {third}");
    assert_serves(client, registry, &third, built);

    let mark = other.log_mark();
    let elsewhere = reference(other, third_repo_tag);
    let pushed = client
        .push_stored(&store, &name, &elsewhere, PushOptions::new())
        .unwrap_or_else(|e| panic!("push_stored {name} {elsewhere}: {e}\n{}", other.log()));
    assert_eq!(
        pushed.manifest.digest,
        built.digest(),
        "pushed to {elsewhere}"
    );
    let log = other.accesses_since(mark);
    assert!(log.iter().all(|a| !a.path.contains("mount=")), "{log:#?}");
    assert_serves(client, other, &elsewhere, built);
}

// ---------------------------------------------------------------------------------------
// The kinds.

#[test]
fn image_round_trips_byte_for_byte() {
    let (a, b) = (registry(), registry());
    let client = client();
    let built = app_image();
    upload(&client, &a, "content/image", "1", &built);
    let from = reference(&a, "content/image:1");
    assert_serves(&client, &a, &from, &built);

    copy_within(&client, &a, &from, "copy/image:1", &built);
    copy_across(&client, &a, &b, &from, "mirror/image:1", &built);
    pull_and_push_stored(&client, &a, &b, &from, "stored/image:1", &built);

    // The image as pulled is the one written: its id is the config's digest, its DiffIds the
    // config's.
    let dir = TempDir::new("content-image");
    let mut store = Store::open(dir.join("store")).expect("a store");
    let report = client
        .pull(&from, &mut store, PullOptions::new())
        .expect("pull");
    let config = &built.blobs[0];
    assert_eq!(report.image.id().digest(), config.0.digest);
    assert_eq!(report.image.layers().len(), 2);
    let config_json: serde_json::Value = serde_json::from_slice(&config.1).expect("JSON");
    let diff_ids: Vec<String> = report
        .image
        .diff_ids()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        serde_json::json!(diff_ids),
        config_json["rootfs"]["diff_ids"]
    );
    assert_eq!(
        report.layers.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        built.blobs[1..]
            .iter()
            .map(|(d, _)| d.digest)
            .collect::<Vec<_>>()
    );
}

#[test]
fn two_platform_index_round_trips_byte_for_byte() {
    let (a, b) = (registry(), registry());
    let client = client();
    let built = two_platform_index();
    upload(&client, &a, "content/index", "multi", &built);
    let from = reference(&a, "content/index:multi");
    assert_serves(&client, &a, &from, &built);

    copy_within(&client, &a, &from, "copy/index:multi", &built);
    copy_across(&client, &a, &b, &from, "mirror/index:multi", &built);
    pull_and_push_stored(&client, &a, &b, &from, "stored/index:multi", &built);
}

#[test]
fn nested_index_round_trips_byte_for_byte() {
    let (a, b) = (registry(), registry());
    let client = client();
    let built = nested_index(two_platform_index());
    assert_eq!(built.below().len(), 3, "the inner index and its two images");
    upload(&client, &a, "content/nested", "1", &built);
    let from = reference(&a, "content/nested:1");
    assert_serves(&client, &a, &from, &built);

    copy_within(&client, &a, &from, "copy/nested:1", &built);
    copy_across(&client, &a, &b, &from, "mirror/nested:1", &built);
    pull_and_push_stored(&client, &a, &b, &from, "stored/nested:1", &built);
}

#[test]
fn artifact_with_subject_copies_and_is_not_pulled() {
    let (a, b) = (registry(), registry());
    let client = client();
    assert_eq!(empty_json().0.digest.to_string(), EMPTY_JSON_DIGEST);

    let subject = app_image();
    upload(&client, &a, "content/app", "1", &subject);
    let payload = Bytes::from(noise(3000, 7));
    let layer = (Descriptor::of(ARTIFACT_LAYER, &payload), payload);
    let built = artifact(vec![layer], Some(&subject));
    let parsed: serde_json::Value = serde_json::from_slice(&built.bytes).expect("JSON");
    assert_eq!(parsed["artifactType"], ARTIFACT_TYPE);
    assert_eq!(parsed["subject"]["digest"], subject.digest().to_string());
    assert_eq!(parsed["config"]["digest"], EMPTY_JSON_DIGEST);
    upload(&client, &a, "content/app", "sig", &built);
    let from = reference(&a, "content/app:sig");
    assert_serves(&client, &a, &from, &built);

    copy_within(&client, &a, &from, "copy/app:sig", &built);
    copy_across(&client, &a, &b, &from, "mirror/app:sig", &built);

    // Not an image: a pull refuses it by name and leaves the store as it was.
    let dir = TempDir::new("content-artifact");
    let root = dir.join("store");
    let mut store = Store::open(&root).expect("a store");
    let image = reference(&a, "content/app:1");
    client
        .pull(&image, &mut store, PullOptions::new())
        .expect("pull the subject");
    let before = snapshot(&root);
    let images_before: Vec<String> = store.images().map(|i| i.id().to_string()).collect();
    let err = client
        .pull(&from, &mut store, PullOptions::new().all_platforms(true))
        .expect_err("an artifact is not pulled");
    match &err {
        Error::Unsupported { what } => {
            assert!(
                what.contains(&from.to_string()),
                "names the reference: {err}"
            );
            assert!(
                what.contains(ARTIFACT_TYPE),
                "names the artifact type: {err}"
            );
        }
        other => panic!("expected Error::Unsupported, got {other:?}: {other}"),
    }
    assert!(store.manifest(&from.to_string()).is_err(), "nothing stored");
    let images_after: Vec<String> = store.images().map(|i| i.id().to_string()).collect();
    assert_eq!(images_after, images_before);
    assert_eq!(snapshot(&root), before, "the store is unchanged");
    drop(store);
    let store = Store::open(&root).expect("the store again");
    assert!(store.manifest(&from.to_string()).is_err());
    assert_eq!(
        store.manifest(&image.to_string()).expect("the subject").1,
        subject.bytes
    );
    assert_eq!(snapshot(&root), before, "the store is unchanged");

    // Without all platforms too.
    let mut store = store;
    let err = client
        .pull(&from, &mut store, PullOptions::new())
        .expect_err("an artifact is not pulled");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!(snapshot(&root), before, "the store is unchanged");
}

#[test]
fn empty_blob_round_trips() {
    let (a, b) = (registry(), registry());
    let client = client();
    let empty = Bytes::new();
    let desc = Descriptor::of("application/octet-stream", &empty);
    assert_eq!(desc.digest.to_string(), EMPTY_DIGEST);
    assert_eq!(desc.size, 0);

    // On its own.
    let at = reference(&a, "content/empty:1");
    assert_eq!(client.has_blob(&at, desc.digest).expect("has_blob"), None);
    assert_eq!(
        put_blob(&client, &at, &desc, &empty),
        Transfer::Done {
            digest: desc.digest,
            size: 0
        }
    );
    assert_eq!(
        client.has_blob(&at, desc.digest).expect("has_blob"),
        Some(0)
    );
    assert!(read_blob(&client, &at, &desc).is_empty());
    assert!(client
        .small_blob(&at, &desc)
        .expect("small_blob")
        .is_empty());
    let raw = http_request(
        &a.host(),
        "GET",
        &format!("/v2/content/empty/blobs/{EMPTY_DIGEST}"),
        &[],
    )
    .expect("GET the empty blob");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.content_length(), Some(0));
    assert!(raw.body.is_empty());
    assert_eq!(raw.header("docker-content-digest"), Some(EMPTY_DIGEST));

    // A layer of an artifact, beside one of a few bytes.
    let payload = Bytes::from_static(b"not empty\n");
    let built = artifact(
        vec![
            (Descriptor::of(ARTIFACT_LAYER, &empty), empty.clone()),
            (Descriptor::of(ARTIFACT_LAYER, &payload), payload),
        ],
        None,
    );
    upload(&client, &a, "content/empty", "art", &built);
    let from = reference(&a, "content/empty:art");
    assert_serves(&client, &a, &from, &built);
    copy_within(&client, &a, &from, "copy/empty:art", &built);
    copy_across(&client, &a, &b, &from, "mirror/empty:art", &built);
    let mirrored = reference(&b, "mirror/empty:art");
    assert_eq!(
        client.has_blob(&mirrored, desc.digest).expect("has_blob"),
        Some(0)
    );
    assert!(read_blob(&client, &mirrored, &desc).is_empty());
}

/// An image manifest with fields nobody defines, annotations, keys in an odd order and odd
/// whitespace; and an index of it written the same way.
fn odd_image_and_index() -> (Built, Built) {
    let plain = image("amd64", &[("srv", &[("data", b"odd fields\n")])]);
    let config = &plain.blobs[0].0;
    let layer = &plain.blobs[1].0;
    let manifest = format!(
        "{{\"layers\" :[\r\n\t{{ \"size\":{} ,\"digest\":\"{}\",\"mediaType\":\"{}\",\"annotations\":{{\"org.example.layer\":\"z\"}},\"x-descriptor\":[1,2.50,null]}}\r\n],\n    \"x-unknown\": {{\"nested\": {{\"b\": true, \"a\": [ ]}}}},\n\"config\":  {{\"digest\":\"{}\",   \"size\":{},\"mediaType\":\"{CONFIG_V1}\"}},\n\t\"annotations\":{{\"org.example.z\":\"last\",\"org.example.a\":\"caf\\u00e9 \u{2615}\",\"org.opencontainers.image.title\":\"odd\"}},\"schemaVersion\"  :  2 ,\"mediaType\":\"{MANIFEST_V1}\",\n\"zzz\": 1e3\n}}\n\n",
        layer.size, layer.digest, layer.media_type, config.digest, config.size
    );
    let odd = Built {
        media_type: MANIFEST_V1.to_owned(),
        bytes: Bytes::from(manifest),
        blobs: plain.blobs.clone(),
        children: Vec::new(),
    };
    let index = format!(
        "  {{ \"manifests\":[ {{\"platform\":{{\"os\":\"linux\",\"x-platform\":\"?\",\"architecture\":\"amd64\"}},\"size\":{},\"digest\":\"{}\",\"mediaType\":\"{MANIFEST_V1}\",\"annotations\":{{\"b\":\"2\",\"a\":\"1\"}}}} ],\n\t\"x-index\":{{}},\"schemaVersion\":2,\"mediaType\":\"{INDEX_V1}\",\"annotations\":{{\"org.example\":\"index\"}}}}",
        odd.bytes.len(),
        odd.digest()
    );
    let index = Built {
        media_type: INDEX_V1.to_owned(),
        bytes: Bytes::from(index),
        blobs: Vec::new(),
        children: vec![odd.clone()],
    };
    (odd, index)
}

#[test]
fn unknown_fields_and_odd_whitespace_survive_byte_for_byte() {
    let (a, b) = (registry(), registry());
    let client = client();
    let (odd, index) = odd_image_and_index();
    // Sure to be odd: serde would write either otherwise.
    for built in [&odd, &index] {
        let value: serde_json::Value = serde_json::from_slice(&built.bytes).expect("JSON");
        assert_ne!(
            serde_json::to_vec(&value).expect("JSON"),
            built.bytes.to_vec()
        );
        assert_ne!(
            serde_json::to_vec_pretty(&value).expect("JSON"),
            built.bytes.to_vec()
        );
    }

    upload(&client, &a, "content/odd", "img", &odd);
    let from = reference(&a, "content/odd:img");
    assert_serves(&client, &a, &from, &odd);
    copy_within(&client, &a, &from, "copy/odd:img", &odd);
    copy_across(&client, &a, &b, &from, "mirror/odd:img", &odd);
    pull_and_push_stored(&client, &a, &b, &from, "stored/odd:img", &odd);

    upload(&client, &a, "content/oddindex", "idx", &index);
    let from = reference(&a, "content/oddindex:idx");
    assert_serves(&client, &a, &from, &index);
    copy_within(&client, &a, &from, "copy/oddindex:idx", &index);
    copy_across(&client, &a, &b, &from, "mirror/oddindex:idx", &index);
    pull_and_push_stored(&client, &a, &b, &from, "stored/oddindex:idx", &index);
}
