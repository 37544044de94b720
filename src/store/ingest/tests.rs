//! An ingest as a registry client drives it: layers streamed by four threads, small
//! blobs held whole, one commit; what goes wrong on the way changes nothing.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::archive::oci::{Index, Platform, DOCKER_MANIFEST_V2, INDEX_V1};
use crate::layer::Layer;
use crate::store::LayerStatus;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "layercake-ingest-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` varied bytes (splitmix64 words and letter runs): gzip has work, and the data is
/// nothing like zeros.
fn varied(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z & 1 == 0 {
            out.extend_from_slice(&z.to_le_bytes());
        } else {
            out.extend(std::iter::repeat_n(
                b'a' + (z >> 8) as u8 % 26,
                1 + (z >> 16) as usize % 12,
            ));
        }
    }
    out.truncate(len);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A layer blob as a registry serves it.
#[derive(Clone)]
struct Blob {
    desc: Descriptor,
    diff_id: DiffId,
    bytes: Vec<u8>,
}

/// An image as a registry serves it: gzip layers, its config, a Docker v2 manifest
/// (indented as registries keep what was pushed), and the image as built here.
#[derive(Clone)]
struct Remote {
    image: Image,
    layers: Vec<Blob>,
    config: (Descriptor, Bytes),
    manifest: (Descriptor, Bytes),
}

const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn layer_of(label: &str, seed: u64, bytes: usize) -> Layer {
    Layer::builder()
        .dir("data")
        .file(format!("data/{label}-{seed}.bin"), varied(seed, bytes))
        .file(
            format!("data/{label}-{seed}.txt"),
            format!("{label} {seed}\n"),
        )
        .build()
        .unwrap()
}

fn remote(label: &str, layers: Vec<Layer>, platform: &Platform) -> Remote {
    let mut builder = Image::builder()
        .os(platform.os.clone())
        .architecture(platform.architecture.clone())
        .cmd([format!("/bin/{label}")]);
    for layer in &layers {
        builder = builder.layer(layer.clone());
    }
    let image = builder.build().unwrap();
    let blobs: Vec<Blob> = layers
        .iter()
        .map(|layer| {
            let bytes = gzip(&layer.tar().unwrap().to_bytes().unwrap());
            Blob {
                desc: Descriptor::of(DOCKER_GZIP, &bytes),
                diff_id: layer.diff_id(),
                bytes,
            }
        })
        .collect();
    let config = image.config().as_bytes().clone();
    let config_desc = Descriptor::of(DOCKER_CONFIG, &config);
    let described = |d: &Descriptor| {
        format!(
            "{{\n         \"mediaType\": \"{}\",\n         \"size\": {},\n         \"digest\": \"{}\"\n      }}",
            d.media_type, d.size, d.digest
        )
    };
    let manifest = format!(
        "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"{DOCKER_MANIFEST_V2}\",\n   \"config\": {},\n   \"layers\": [\n      {}\n   ]\n}}",
        described(&config_desc),
        blobs.iter().map(|b| described(&b.desc)).collect::<Vec<_>>().join(",\n      ")
    );
    let manifest = Bytes::from(manifest);
    Remote {
        image,
        layers: blobs,
        config: (config_desc, config),
        manifest: (Descriptor::of(DOCKER_MANIFEST_V2, &manifest), manifest),
    }
}

/// An image of four layers for this host.
fn four_layers(label: &str) -> Remote {
    let layers = (0..4).map(|i| layer_of(label, i, 300 << 10)).collect();
    remote(label, layers, &Platform::host())
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

/// Streams `remote`'s layers in on one thread each, all at once.
fn stream_layers(ingest: &Ingest, remote: &Remote) -> Result<Vec<Layer>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = remote
            .layers
            .iter()
            .map(|blob| {
                scope.spawn(move || {
                    let mut heard = (0, 0);
                    let layer = ingest.layer(
                        &mut &blob.bytes[..],
                        &blob.desc,
                        blob.diff_id,
                        &mut |done, total| heard = (done, total),
                    )?;
                    assert_eq!(heard, (blob.desc.size, blob.desc.size), "progress");
                    Ok(layer)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// Pulls `remote` into `store` as a registry client does, tagged `tag`.
fn pull(store: &mut Store, remote: &Remote, tag: &str) -> Result<AddReport> {
    let ingest = store.ingest()?;
    let layers = stream_layers(&ingest, remote)?;
    ingest.bytes(&remote.config.0, &remote.config.1)?;
    ingest.bytes(&remote.manifest.0, &remote.manifest.1)?;
    let image = Image::from_parts(remote.config.1.clone(), layers)?;
    let report = ingest.commit(
        store,
        Some(&image),
        &remote.manifest.0,
        Some(&reference(tag)),
    )?;
    Ok(report.expect("an image was committed"))
}

fn index_of(root: &Path) -> Index {
    serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap()
}

/// Every file under `root` with its bytes, but the (empty) lock files.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "lock") {
                // Lock files are made when first taken, and hold nothing.
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

fn same_files(a: &Image, b: &Image) {
    assert_eq!(a.id(), b.id());
    let (ta, tb) = (a.tree().unwrap(), b.tree().unwrap());
    let mut files = 0;
    for (path, node) in ta.walk() {
        if let Some(contents) = node.contents() {
            assert_eq!(
                contents.to_bytes().unwrap(),
                tb.read(&path).unwrap(),
                "{path:?}"
            );
            files += 1;
        }
    }
    assert!(files > 0, "the images have files");
}

fn skopeo() -> Command {
    let found = ["/usr/bin/skopeo", "/usr/local/bin/skopeo", "/bin/skopeo"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(skopeo) = found else {
        panic!(
            "this test needs `skopeo`, which is not installed \
             (Debian package `skopeo`: apt-get install -y skopeo)"
        )
    };
    Command::new(skopeo)
}

fn run(mut command: Command) -> Vec<u8> {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn four_layers_stream_at_once_and_the_manifest_is_kept_as_pulled() {
    let tmp = TempDir::new("pull");
    let root = tmp.join("store");
    let remote = four_layers("pull");
    let tag = "example.com/team/app:1";
    let mut store = Store::open(&root).unwrap();
    let report = pull(&mut store, &remote, tag).unwrap();
    assert_eq!(report.image.id(), remote.image.id());
    assert!(report.layers.iter().all(|(_, s)| *s == LayerStatus::New));

    // index.json lists the manifest as pulled, marked, under the tag's full name; and
    // beside it an OCI index of it, for OCI tools.
    let index = index_of(&root);
    assert_eq!(index.manifests.len(), 2);
    let entry = &index.manifests[0];
    assert_eq!(entry.digest, remote.manifest.0.digest);
    assert_eq!(entry.media_type, DOCKER_MANIFEST_V2);
    assert_eq!(entry.annotations[oci::REF_NAME], tag);
    assert_eq!(entry.annotations[oci::IMAGE_NAME], tag);
    assert_eq!(
        entry.annotations[disk::PULLED],
        remote.manifest.0.digest.to_string()
    );
    let compat = &index.manifests[1];
    assert_eq!(compat.media_type, INDEX_V1);
    assert_eq!(compat.annotations[oci::REF_NAME], tag);
    assert!(!compat.annotations.contains_key(oci::IMAGE_NAME));
    assert_eq!(
        compat.annotations[disk::COMPAT],
        remote.manifest.0.digest.to_string()
    );
    let wrapper: Index =
        serde_json::from_slice(&std::fs::read(root.join(oci::blob_path(&compat.digest))).unwrap())
            .unwrap();
    assert_eq!(wrapper.manifests.len(), 1);
    assert_eq!(wrapper.manifests[0].digest, remote.manifest.0.digest);
    assert_eq!(wrapper.manifests[0].platform, Some(Platform::host()));

    let name_at = format!("example.com/team/app@{}", remote.manifest.0.digest);
    let check = |store: &Store, what: &str| {
        assert_eq!(
            store.manifest(tag).unwrap(),
            remote.manifest,
            "{what}: by tag"
        );
        assert_eq!(
            store.manifest(&name_at).unwrap(),
            remote.manifest,
            "{what}: by digest"
        );
        let image = store.image(tag).unwrap();
        assert_eq!(store.image(&name_at).unwrap().id(), image.id(), "{what}");
        assert_eq!(
            store.inspect(tag).unwrap().repo_digests,
            std::slice::from_ref(&name_at),
            "{what}"
        );
        assert_eq!(
            store.manifest_digest(image.id()),
            Some(remote.manifest.0.digest)
        );
        for blob in &remote.layers {
            assert!(store.has_blob(blob.desc.digest), "{what}");
            let stored = store.blob(blob.desc.digest).unwrap();
            assert!(
                stored.as_bytes().is_none(),
                "{what}: a range of the file, not read"
            );
            assert_eq!(stored.to_bytes().unwrap(), blob.bytes, "{what}");
        }
        assert_eq!(
            store
                .blob(remote.config.0.digest)
                .unwrap()
                .to_bytes()
                .unwrap(),
            remote.config.1
        );
        same_files(&image, &remote.image);
        assert!(
            store.verify().unwrap().is_ok(),
            "{what}: {:?}",
            store.verify()
        );
    };
    check(&store, "after the commit");
    drop(store);
    let again = Store::open(&root).unwrap();
    check(&again, "reopened");
    // What a prune keeps: everything the manifest names.
    let mut again = again;
    let before = snapshot(&root);
    again.prune().unwrap();
    let blobs = |s: &BTreeMap<PathBuf, Vec<u8>>| {
        s.keys()
            .filter(|p| p.starts_with("blobs"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(blobs(&snapshot(&root)), blobs(&before));
    assert!(std::fs::read_dir(root.join("layercake/ingest"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_blob_not_as_described_is_refused_and_changes_nothing() {
    let tmp = TempDir::new("refuse");
    let root = tmp.join("store");
    let mut store = Store::open(&root).unwrap();
    let remote = four_layers("refuse");
    let before = snapshot(&root);
    let ingest = store.ingest().unwrap();
    let blob = &remote.layers[0];
    let layer = |bytes: &[u8], desc: &Descriptor, diff_id: DiffId| {
        ingest.layer(&mut &bytes[..], desc, diff_id, &mut |_, _| {})
    };

    // Another blob's digest.
    let mut wrong = blob.desc.clone();
    wrong.digest = remote.layers[1].desc.digest;
    let err = layer(&blob.bytes, &wrong, blob.diff_id).unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { expected, .. } if expected == wrong.digest),
        "{err}"
    );
    // The tar is not the DiffId the config names.
    let err = layer(&blob.bytes, &blob.desc, remote.layers[1].diff_id).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    // Fewer bytes than the descriptor says: the stream ends early.
    let short = &blob.bytes[..blob.bytes.len() - 100];
    let err = layer(short, &blob.desc, blob.diff_id).unwrap_err();
    assert!(
        matches!(err, Error::SizeMismatch { expected, actual, .. }
            if expected == blob.desc.size && actual == blob.desc.size - 100),
        "{err}"
    );
    // A descriptor that promises more than the blob has.
    let mut longer = blob.desc.clone();
    longer.size += 1;
    let err = layer(&blob.bytes, &longer, blob.diff_id).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");

    // More bytes than the descriptor says: refused as they come, not at the end of a
    // stream that may never end.
    struct Endless<'a> {
        head: &'a [u8],
        given: u64,
    }
    impl Read for Endless<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = if self.head.is_empty() {
                buf.fill(b'x');
                buf.len()
            } else {
                self.head.read(buf)?
            };
            self.given += n as u64;
            assert!(self.given < 64 << 20, "read on past the blob's size");
            Ok(n)
        }
    }
    for plain in [false, true] {
        let (bytes, desc) = if plain {
            let tar = remote
                .image
                .layers()
                .next()
                .unwrap()
                .tar()
                .unwrap()
                .to_bytes()
                .unwrap();
            (
                tar.to_vec(),
                Descriptor::of("application/vnd.oci.image.layer.v1.tar", &tar),
            )
        } else {
            (blob.bytes.clone(), blob.desc.clone())
        };
        let mut endless = Endless {
            head: &bytes,
            given: 0,
        };
        let err = ingest
            .layer(&mut endless, &desc, blob.diff_id, &mut |_, _| {})
            .unwrap_err();
        assert!(
            matches!(err, Error::SizeMismatch { expected, .. } if expected == desc.size),
            "{err}"
        );
        assert!(
            endless.given <= desc.size + (1 << 20),
            "{} bytes read",
            endless.given
        );
        let mut endless = Endless {
            head: &bytes,
            given: 0,
        };
        let err = ingest
            .blob(&mut endless, &desc, &mut |_, _| {})
            .unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        assert!(
            endless.given <= desc.size + (1 << 20),
            "{} bytes read",
            endless.given
        );
    }

    // Any blob, and small ones.
    let err = ingest
        .blob(&mut &short[..], &blob.desc, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    let err = ingest
        .blob(&mut &blob.bytes[..], &wrong, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    let err = ingest
        .bytes(&remote.config.0, &Bytes::from_static(b"{}"))
        .unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    let mut forged = remote.config.0.clone();
    forged.digest = Digest::sha256(b"another config");
    let err = ingest.bytes(&forged, &remote.config.1).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    drop(ingest);
    assert_eq!(
        snapshot(&root),
        before,
        "nothing was written where it shows"
    );
}

#[test]
fn an_ingest_dropped_midway_leaves_the_store_as_it_was() {
    let tmp = TempDir::new("drop");
    let root = tmp.join("store");
    let mut store = Store::open(&root).unwrap();
    let old = four_layers("old");
    pull(&mut store, &old, "old:1").unwrap();
    let before = snapshot(&root);
    let remote = four_layers("dropped");

    /// A network stream that fails after `left` bytes.
    struct Broken<'a>(&'a [u8], usize);
    impl Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = buf.len().min(self.1);
            let n = (&self.0[..]).read(&mut buf[..n])?;
            self.0 = &self.0[n..];
            self.1 -= n;
            Ok(n)
        }
    }

    {
        let ingest = store.ingest().unwrap();
        // Three layers in, the manifest and config too; the fourth breaks halfway.
        for blob in &remote.layers[..3] {
            ingest
                .layer(
                    &mut &blob.bytes[..],
                    &blob.desc,
                    blob.diff_id,
                    &mut |_, _| {},
                )
                .unwrap();
        }
        ingest.bytes(&remote.config.0, &remote.config.1).unwrap();
        ingest
            .bytes(&remote.manifest.0, &remote.manifest.1)
            .unwrap();
        let last = &remote.layers[3];
        let mut broken = Broken(&last.bytes, last.bytes.len() / 2);
        let err = ingest
            .layer(&mut broken, &last.desc, last.diff_id, &mut |_, _| {})
            .unwrap_err();
        assert!(!err.to_string().is_empty());
        // Dropped here, without a commit.
    }
    assert_eq!(snapshot(&root), before, "files and index as they were");
    let again = Store::open(&root).unwrap();
    assert_eq!(again.images().count(), 1);
    assert!(again.image("old:1").is_ok());
    assert!(!again.has_blob(remote.manifest.0.digest));
    assert!(again.verify().unwrap().is_ok());

    // A commit whose top names a blob that never came in is refused, the store as it was.
    let ingest = store.ingest().unwrap();
    let layers = stream_layers(&ingest, &remote).unwrap();
    ingest
        .bytes(&remote.manifest.0, &remote.manifest.1)
        .unwrap();
    let image = Image::from_parts(remote.config.1.clone(), layers).unwrap();
    let err = ingest
        .commit(
            &mut store,
            Some(&image),
            &remote.manifest.0,
            Some(&reference("new:1")),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingBlob { digest, .. } if digest == remote.config.0.digest),
        "{err}"
    );
    assert_eq!(snapshot(&root), before, "a refused commit names nothing");
    assert!(store.image("new:1").is_err());
}

/// The other platform to this host's.
fn other_platform() -> Platform {
    let other = if Platform::host().architecture == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64/v8"
    };
    Platform::parse(other).unwrap()
}

/// An index of two platforms' images (sharing their bottom layer), as a registry serves
/// it, with OCI media types.
fn two_platforms() -> (Remote, Remote, (Descriptor, Bytes)) {
    two_platforms_as(INDEX_V1)
}

/// An index of `media_type` (OCI's, or Docker's manifest list) of two platforms' images.
fn two_platforms_as(media_type: &str) -> (Remote, Remote, (Descriptor, Bytes)) {
    let shared = layer_of("shared", 1, 200 << 10);
    let host = remote(
        "host",
        vec![shared.clone(), layer_of("host", 2, 100 << 10)],
        &Platform::host(),
    );
    let other = remote(
        "other",
        vec![shared, layer_of("other", 3, 100 << 10)],
        &other_platform(),
    );
    let child = |r: &Remote, p: Platform| {
        let mut desc = r.manifest.0.clone();
        desc.platform = Some(p);
        desc
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type.to_owned()),
        manifests: vec![
            child(&other, other_platform()),
            child(&host, Platform::host()),
        ],
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = Bytes::from(serde_json::to_vec_pretty(&index).unwrap());
    (host, other, (Descriptor::of(media_type, &bytes), bytes))
}

/// Pulls every platform of the index, the host's as the image.
fn pull_all(
    store: &mut Store,
    host: &Remote,
    other: &Remote,
    index: &(Descriptor, Bytes),
    tag: &str,
) -> AddReport {
    let ingest = store.ingest().unwrap();
    let layers = stream_layers(&ingest, host).unwrap();
    std::thread::scope(|scope| {
        for blob in &other.layers {
            let ingest = &ingest;
            scope.spawn(move || {
                ingest
                    .blob(&mut &blob.bytes[..], &blob.desc, &mut |_, _| {})
                    .unwrap();
            });
        }
    });
    for (desc, bytes) in [
        &host.config,
        &host.manifest,
        &other.config,
        &other.manifest,
        index,
    ] {
        ingest.bytes(desc, bytes).unwrap();
    }
    let image = Image::from_parts(host.config.1.clone(), layers).unwrap();
    ingest
        .commit(store, Some(&image), &index.0, Some(&reference(tag)))
        .unwrap()
        .unwrap()
}

#[test]
fn an_index_of_two_platforms_reads_as_the_hosts_image_and_is_kept_whole() {
    let tmp = TempDir::new("index");
    let root = tmp.join("store");
    let (host, other, index) = two_platforms();
    let mut store = Store::open(&root).unwrap();
    let report = pull_all(&mut store, &host, &other, &index, "multi:1");
    assert_eq!(report.image.id(), host.image.id());
    let host_at = format!("multi@{}", host.manifest.0.digest);
    let index_at = format!("multi@{}", index.0.digest);
    let check = |store: &Store, what: &str, pulled: bool| {
        assert_eq!(
            store.image("multi:1").unwrap().id(),
            host.image.id(),
            "{what}"
        );
        assert_eq!(
            store.manifest("multi:1").unwrap(),
            index,
            "{what}: the index, exactly"
        );
        assert_eq!(
            store.image(&host_at).unwrap().id(),
            host.image.id(),
            "{what}"
        );
        assert_eq!(
            store.image(&index_at).unwrap().id(),
            host.image.id(),
            "{what}"
        );
        assert!(store
            .image(&format!("multi@{}", other.manifest.0.digest))
            .is_err());
        assert_eq!(
            store.images().count(),
            1,
            "{what}: the other platform is no image here"
        );
        let digests = store.inspect("multi:1").unwrap().repo_digests;
        let want: Vec<String> = if pulled {
            vec![index_at.clone()]
        } else {
            Vec::new()
        };
        assert_eq!(digests, want, "{what}");
        same_files(&store.image("multi:1").unwrap(), &host.image);
        for blob in host.layers.iter().chain(&other.layers) {
            assert!(
                store.has_blob(blob.desc.digest),
                "{what}: every platform's blobs"
            );
        }
        assert!(store.verify().unwrap().is_ok(), "{what}");
        let usage = store.usage().unwrap();
        let other_only = other.layers[1].desc.size + other.config.0.size + other.manifest.0.size;
        assert!(
            usage.stored_bytes > other_only + host.manifest.0.size,
            "{what}: {usage:?}"
        );
        assert_eq!(usage.reclaimable_bytes, 0, "{what}: {usage:?}");
    };
    check(&store, "after the commit", true);
    let entry = &index_of(&root).manifests[0];
    assert_eq!(
        (entry.digest, entry.media_type.as_str()),
        (index.0.digest, INDEX_V1)
    );
    drop(store);
    let mut store = Store::open(&root).unwrap();
    check(&store, "reopened", true);
    store.prune().unwrap();
    check(&store, "pruned", true);

    // Written by another tool (no pulled mark): the child for this host is picked.
    let mut listed = index_of(&root);
    listed.manifests[0].annotations.remove(disk::PULLED);
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&listed).unwrap(),
    )
    .unwrap();
    let mut store = Store::open(&root).unwrap();
    check(&store, "unmarked", false);
    store.tag("multi:1", "multi:2").unwrap();
    let index_json = index_of(&root);
    assert!(
        index_json
            .manifests
            .iter()
            .all(|d| d.digest == index.0.digest),
        "{index_json:?}"
    );

    // Untagged, and pruned: every platform's blobs go.
    store.remove("multi:1").unwrap();
    store.remove("multi:2").unwrap();
    store.prune().unwrap();
    for blob in host.layers.iter().chain(&other.layers) {
        assert!(!store.has_blob(blob.desc.digest));
    }
    assert!(!store.has_blob(index.0.digest));
}

#[test]
fn tags_copy_move_and_lose_what_was_pulled() {
    let tmp = TempDir::new("tags");
    let root = tmp.join("store");
    let mut store = Store::open(&root).unwrap();
    let remote = four_layers("tags");
    pull(&mut store, &remote, "example.com/team/app:1").unwrap();
    let digest = remote.manifest.0.digest;
    let id = remote.image.id();

    // A tag made from a pulled tag names the manifest as pulled too.
    store
        .tag("example.com/team/app:1", "mirror.example/app:1")
        .unwrap();
    let mut digests = store.inspect("mirror.example/app:1").unwrap().repo_digests;
    digests.sort();
    assert_eq!(
        digests,
        [
            format!("example.com/team/app@{digest}"),
            format!("mirror.example/app@{digest}")
        ]
    );
    assert_eq!(
        store.manifest("mirror.example/app:1").unwrap(),
        remote.manifest
    );
    // Made from the id, it names what the store wrote (here: the image's manifest,
    // which is the one pulled, with no mark).
    store.tag(&id.to_string(), "byid:1").unwrap();
    let entries = index_of(&root).manifests;
    assert_eq!(
        entries.len(),
        5,
        "two tops with their OCI indexes, one manifest"
    );
    let marked = entries
        .iter()
        .filter(|e| e.annotations.contains_key(disk::PULLED));
    assert_eq!(marked.count(), 2);

    // Moved to another image, a tag loses its top.
    let other = Image::builder().cmd(["other"]).build().unwrap();
    store.add(&other).unwrap();
    store
        .tag(&other.id().to_string(), "mirror.example/app:1")
        .unwrap();
    assert_eq!(
        store.inspect(&id.to_string()).unwrap().repo_digests,
        [format!("example.com/team/app@{digest}")]
    );
    let (desc, _) = store.manifest("mirror.example/app:1").unwrap();
    assert_ne!(desc.digest, digest);
    // Untagged, the image is listed by its manifest, unmarked.
    store.untag("example.com/team/app:1").unwrap();
    store.untag("byid:1").unwrap();
    assert!(store
        .inspect(&id.to_string())
        .unwrap()
        .repo_digests
        .is_empty());
    let entries = index_of(&root).manifests;
    let own = entries
        .iter()
        .find(|e| e.digest == digest)
        .expect("the image's entry");
    assert!(own.annotations.is_empty(), "{own:?}");
    drop(store);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.images().count(), 2);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn a_pulled_gzip_layer_the_store_has_uncompressed_is_kept_beside_it() {
    let tmp = TempDir::new("shared");
    let root = tmp.join("store");
    let remote = four_layers("shared");
    let mut store = Store::open(&root).unwrap();
    // Loaded first (plain layers, as Docker stores them), then pulled (gzip).
    store.add(&remote.image).unwrap();
    store
        .tag(&remote.image.id().to_string(), "loaded:1")
        .unwrap();
    assert!(
        store.inspect("loaded:1").unwrap().repo_digests.is_empty(),
        "loaded: none"
    );
    let report = pull(&mut store, &remote, "pulled:1").unwrap();
    assert!(report
        .layers
        .iter()
        .all(|(_, s)| *s == LayerStatus::AlreadyExists));
    assert_eq!(store.layers().count(), 4, "one layer per DiffId");
    for blob in &remote.layers {
        assert!(store.has_blob(blob.desc.digest), "the gzip blob too");
        assert!(store.has_blob(blob.diff_id.digest()), "and the plain one");
    }
    assert!(store.inspect("loaded:1").unwrap().repo_digests.len() == 1);
    assert!(store.verify().unwrap().is_ok());
    drop(store);
    let out = tmp.join("copy");
    let mut copy = skopeo();
    copy.arg("copy")
        .arg(format!("oci:{}:docker.io/library/pulled:1", root.display()))
        .arg(format!("oci:{}:pulled", out.display()));
    run(copy);
    let store = Store::open(&root).unwrap();
    same_files(&store.image("pulled:1").unwrap(), &remote.image);
    same_files(&store.image("loaded:1").unwrap(), &remote.image);
}

#[test]
fn skopeo_reads_a_pulled_docker_manifest_from_the_store() {
    let tmp = TempDir::new("skopeo");
    let root = tmp.join("store");
    let remote = four_layers("skopeo");
    let mut store = Store::open(&root).unwrap();
    pull(&mut store, &remote, "localhost:5000/team/app:1").unwrap();
    drop(store);
    let source = format!("oci:{}:localhost:5000/team/app:1", root.display());
    // skopeo resolves the name to the OCI index beside the Docker manifest, whose one
    // manifest is the Docker manifest as pulled, for this host.
    let mut raw = skopeo();
    raw.args(["inspect", "--raw"]).arg(&source);
    let found: Index = serde_json::from_slice(&run(raw)).unwrap();
    assert_eq!(found.manifests.len(), 1);
    assert_eq!(found.manifests[0].digest, remote.manifest.0.digest);
    assert_eq!(found.manifests[0].media_type, DOCKER_MANIFEST_V2);
    let mut inspect = skopeo();
    inspect.arg("inspect").arg(&source);
    let shown: serde_json::Value = serde_json::from_slice(&run(inspect)).unwrap();
    let layers: Vec<String> = remote
        .layers
        .iter()
        .map(|l| l.desc.digest.to_string())
        .collect();
    assert_eq!(shown["Layers"], serde_json::json!(layers), "{shown}");
    assert_eq!(shown["Architecture"], Platform::host().architecture);
    let out = tmp.join("other");
    let mut copy = skopeo();
    copy.arg("copy")
        .arg(&source)
        .arg(format!("oci:{}:app", out.display()));
    run(copy);
    // The copy's layers are the store's blobs, its config the image's.
    let copied = index_of(&out);
    let manifest: crate::archive::oci::Manifest = serde_json::from_slice(
        &std::fs::read(out.join(oci::blob_path(&copied.manifests[0].digest))).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest.config.digest, remote.image.id().digest());
    let layers: Vec<Digest> = manifest.layers.iter().map(|l| l.digest).collect();
    let pulled: Vec<Digest> = remote.layers.iter().map(|l| l.desc.digest).collect();
    assert_eq!(layers, pulled);
}

#[test]
fn skopeo_reads_a_pulled_docker_manifest_list_from_the_store() {
    let tmp = TempDir::new("skopeo-list");
    let root = tmp.join("store");
    let (host, other, list) = two_platforms_as(crate::archive::oci::DOCKER_MANIFEST_LIST);
    let mut store = Store::open(&root).unwrap();
    pull_all(&mut store, &host, &other, &list, "list:1");
    drop(store);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.manifest("list:1").unwrap(), list, "the list, exactly");
    assert_eq!(store.image("list:1").unwrap().id(), host.image.id());
    assert_eq!(
        store.inspect("list:1").unwrap().repo_digests,
        [format!("list@{}", list.0.digest)]
    );
    let source = format!("oci:{}:docker.io/library/list:1", root.display());
    let mut inspect = skopeo();
    inspect.arg("inspect").arg(&source);
    let shown: serde_json::Value = serde_json::from_slice(&run(inspect)).unwrap();
    let layers: Vec<String> = host
        .layers
        .iter()
        .map(|l| l.desc.digest.to_string())
        .collect();
    assert_eq!(
        shown["Layers"],
        serde_json::json!(layers),
        "the host's image: {shown}"
    );
    let mut copy = skopeo();
    copy.arg("copy")
        .arg(&source)
        .arg(format!("oci:{}:list", tmp.join("other").display()));
    run(copy);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn a_store_in_memory_takes_blobs_in_temporary_files() {
    let remote = four_layers("memory");
    let mut store = Store::new();
    let report = pull(&mut store, &remote, "app:1").unwrap();
    for layer in report.image.layers() {
        let blob = layer.blob().contents();
        assert!(
            blob.as_bytes().is_none() && blob.host_file().is_some(),
            "on disk"
        );
    }
    same_files(&store.image("app:1").unwrap(), &remote.image);
    assert_eq!(store.manifest("app:1").unwrap(), remote.manifest);
    assert_eq!(
        store.inspect("app:1").unwrap().repo_digests,
        [format!("app@{}", remote.manifest.0.digest)]
    );
    for blob in &remote.layers {
        assert_eq!(
            store.blob(blob.desc.digest).unwrap().to_bytes().unwrap(),
            blob.bytes
        );
    }
    assert_eq!(
        store
            .blob(remote.config.0.digest)
            .unwrap()
            .to_bytes()
            .unwrap(),
        remote.config.1
    );
    assert!(store.verify().unwrap().is_ok());
    // An index in memory too.
    let (host, other, index) = two_platforms();
    pull_all(&mut store, &host, &other, &index, "multi:1");
    assert_eq!(store.manifest("multi:1").unwrap(), index);
    assert!(store.has_blob(other.layers[1].desc.digest));
    let usage = store.usage().unwrap();
    assert!(usage.stored_bytes > other.layers[1].desc.size);
    store.remove("multi:1").unwrap();
    assert!(!store.has_blob(index.0.digest), "what no tag names goes");
    assert!(!store.has_blob(other.layers[1].desc.digest));
    assert!(store.has_blob(remote.manifest.0.digest));
}
