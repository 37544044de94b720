//! The images the registry tests push: a busybox base, a bookworm-like base and app, and a
//! two-platform index, built in memory with layercake and written as OCI layouts for skopeo.

use std::path::Path;

use layercake::archive::oci::{Descriptor, Index};
use layercake::archive::{Format, Writer};
use layercake::config::{History, Timestamp};
use layercake::{Commit, Compression, Entry, Image, Layer};

use super::super::{blob_path, read_json, sha256, tool};

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

/// The descriptor an index names `ref_name` (`org.opencontainers.image.ref.name`).
fn by_ref_name<'a>(index: &'a Index, ref_name: &str) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| {
        d.annotations
            .get("org.opencontainers.image.ref.name")
            .map(String::as_str)
            == Some(ref_name)
    })
}

/// The digest of the manifest `ref_name` names in a layout's `index.json`.
pub fn layout_manifest_digest(layout: &Path, ref_name: &str) -> String {
    let index: Index = read_json(&layout.join("index.json"));
    by_ref_name(&index, ref_name)
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
        let d = by_ref_name(&index, ref_name).expect("the writer's ref");
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
