//! Shared helpers of the interop tests: running the real tools (failing loudly when one is
//! missing), temporary directories, a private dockerd, and listings of a filesystem (an
//! unpacked rootfs on the host, or a layercake [`Tree`]) that two flatteners must agree on.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use layercake::archive::oci::{Index, Manifest};
use layercake::{Digest, FileType, Tree};

pub mod registry;

/// The Debian package that ships each tool, for the message when it is missing.
fn package_of(tool: &str) -> Option<&'static str> {
    Some(match tool {
        "skopeo" => "skopeo",
        "umoci" => "umoci",
        "oci-image-tool" => "oci-image-tool",
        "dockerd" | "docker" | "/usr/bin/docker" => "docker.io",
        "busybox" | "/bin/busybox" => "busybox-static",
        "setfattr" | "getfattr" => "attr",
        "tar" => "tar",
        "mknod" | "cp" => "coreutils",
        "gzip" => "gzip",
        _ => return None,
    })
}

/// The absolute path of a tool: `name` itself if absolute, else the first match on `PATH`
/// (and the sbin directories, which a non-login root shell may lack).
///
/// # Panics
///
/// If the tool is not installed, with the package to install.
pub fn tool(name: &str) -> PathBuf {
    let found = if name.starts_with('/') {
        Some(PathBuf::from(name)).filter(|p| p.is_file())
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(
                ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                    .iter()
                    .map(PathBuf::from),
            )
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    };
    found.unwrap_or_else(|| match package_of(name) {
        Some(package) => panic!(
            "this interop test needs `{name}`, which is not installed \
                 (Debian package `{package}`: apt-get install -y {package})"
        ),
        None => panic!("this interop test needs `{name}`, which is not installed"),
    })
}

/// A command line to run once, shown in full when it fails.
pub struct Cmd {
    command: Command,
    shown: String,
}

/// Starts a command for `program` (resolved with [`tool`], so a missing tool fails here).
pub fn cmd(program: &str) -> Cmd {
    let path = tool(program);
    Cmd {
        command: Command::new(&path),
        shown: program.to_owned(),
    }
}

impl Cmd {
    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.shown.push(' ');
        self.shown.push_str(&arg.as_ref().to_string_lossy());
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    /// Runs the command and returns what it did, whatever its exit status.
    ///
    /// # Panics
    ///
    /// If it cannot be started.
    pub fn output(mut self) -> Output {
        self.command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.shown))
    }

    /// Runs the command, which must succeed, and returns its standard output.
    ///
    /// # Panics
    ///
    /// If it cannot be started or exits non-zero, with its standard error.
    pub fn run(self) -> Vec<u8> {
        let shown = self.shown.clone();
        let out = self.output();
        assert!(
            out.status.success(),
            "`{shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out.stdout
    }

    /// As [`Cmd::run`], the output as text.
    pub fn run_text(self) -> String {
        String::from_utf8(self.run()).expect("the tool printed UTF-8")
    }
}

/// A path under `std::env::temp_dir()` that no other call (in any process) gives.
fn unique_path(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "lc-{label}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    std::env::temp_dir().join(name)
}

/// A file (or directory) under `std::env::temp_dir()` with a unique name, removed when
/// dropped. A layer read from it keeps its descriptor, so it may be dropped once read.
#[derive(Debug)]
pub struct TempFile(PathBuf);

impl TempFile {
    /// A unique path, nothing written there yet.
    pub fn new(label: &str) -> TempFile {
        TempFile(unique_path(label))
    }

    /// A file holding `bytes`.
    pub fn with(label: &str, bytes: &[u8]) -> TempFile {
        let file = TempFile::new(label);
        std::fs::write(&file.0, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.0.display()));
        file
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory under `std::env::temp_dir()` with a unique name, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new empty directory named after `label`.
    pub fn new(label: &str) -> TempDir {
        let path = unique_path(label);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }

    /// A path inside the directory, as a string (for tool arguments such as `oci:DIR:tag`).
    pub fn arg(&self, name: &str) -> String {
        self.join(name).to_str().expect("UTF-8 temp dir").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SHA-256 of some bytes as `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    Digest::sha256(bytes).to_string()
}

// ---------------------------------------------------------------------------------------
// Filesystem listings: what two flatteners must agree on, entry by entry.

/// One entry of a flattened filesystem, as the host's `lstat` or a [`Tree`] node sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    /// `-`, `d`, `l`, `c`, `b` or `p`.
    pub kind: char,
    /// The permission, setuid, setgid and sticky bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Regular file length or symlink target length; 0 for the rest.
    pub size: u64,
    /// SHA-256 of a regular file's contents.
    pub contents: Option<String>,
    /// A symlink's target, verbatim.
    pub target: Option<Vec<u8>>,
    /// A device's major and minor numbers.
    pub device: Option<(u32, u32)>,
    /// Extended attributes.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For a file with several names (hardlinks), the first of them in path order.
    pub link_group: Option<Vec<u8>>,
    /// Modification time of non-directories (directory mtimes move when children are
    /// written, so flatteners need not agree on them).
    pub mtime: Option<i64>,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:o} {}:{} size {}",
            self.kind, self.mode, self.uid, self.gid, self.size
        )?;
        if let Some(c) = &self.contents {
            write!(f, " {}", &c[..19])?;
        }
        if let Some(t) = &self.target {
            write!(f, " -> {}", String::from_utf8_lossy(t))?;
        }
        if let Some((ma, mi)) = self.device {
            write!(f, " dev {ma},{mi}")?;
        }
        for (k, v) in &self.xattrs {
            write!(
                f,
                " xattr {}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )?;
        }
        if let Some(g) = &self.link_group {
            write!(f, " linked with /{}", String::from_utf8_lossy(g))?;
        }
        if let Some(m) = self.mtime {
            write!(f, " mtime {m}")?;
        }
        Ok(())
    }
}

/// A whole filesystem: path (relative, no leading `/`; the root is the empty path) to item.
pub type Listing = BTreeMap<Vec<u8>, Item>;

/// Fills in `link_group` for items that share a key (an inode, an `Arc`).
fn group_links<K: Ord>(listing: &mut Listing, keys: Vec<(Vec<u8>, K)>) {
    let mut groups: BTreeMap<K, Vec<Vec<u8>>> = BTreeMap::new();
    for (path, key) in keys {
        groups.entry(key).or_default().push(path);
    }
    for paths in groups.into_values().filter(|p| p.len() > 1) {
        let first = paths.iter().min().expect("non-empty").clone();
        for p in paths {
            listing.get_mut(&p).expect("listed").link_group = Some(first.clone());
        }
    }
}

/// The listing of a layercake tree, the root included.
pub fn tree_listing(tree: &Tree) -> Listing {
    let mut listing = Listing::new();
    let mut nodes = vec![(Vec::new(), tree.root().clone())];
    nodes.extend(tree.walk().map(|(p, n)| (p.as_bytes().to_vec(), n.clone())));
    for (path, node) in &nodes {
        let m = node.metadata();
        let kind = match node.file_type() {
            FileType::Hardlink => unreachable!("a tree holds no hardlink records"),
            t => t.as_char(),
        };
        listing.insert(
            path.clone(),
            Item {
                kind,
                mode: m.mode,
                uid: m.uid,
                gid: m.gid,
                size: if node.is_dir() { 0 } else { node.size() },
                contents: node.contents().map(|c| {
                    sha256(
                        &c.to_bytes().unwrap_or_else(|e| {
                            panic!("read /{}: {e}", String::from_utf8_lossy(path))
                        }),
                    )
                }),
                target: node.link_target().map(|t| t.to_vec()),
                device: node.device(),
                xattrs: m
                    .xattrs
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect(),
                link_group: None,
                mtime: (!node.is_dir()).then_some(m.mtime),
            },
        );
    }
    // Hardlinks are nodes that are the same file; number each file by its first path.
    let leaves: Vec<&(Vec<u8>, layercake::Node)> =
        nodes.iter().filter(|(_, n)| !n.is_dir()).collect();
    let mut keys = Vec::new();
    for (i, (path, node)) in leaves.iter().enumerate() {
        let first = leaves[..=i]
            .iter()
            .position(|(_, other)| other.same_file(node))
            .expect("a node is the same file as itself");
        keys.push((path.clone(), first));
    }
    group_links(&mut listing, keys);
    listing
}

/// Linux's `major()`/`minor()` of a `dev_t`.
fn major_minor(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// The listing of a directory on the host (an unpacked rootfs), walked with
/// `symlink_metadata`, the root included; xattrs read with `getfattr`.
pub fn dir_listing(root: &Path) -> Listing {
    let mut listing = Listing::new();
    let mut inodes = Vec::new();
    let mut stack = vec![(Vec::<u8>::new(), root.to_path_buf())];
    while let Some((rel, host)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&host)
            .unwrap_or_else(|e| panic!("lstat {}: {e}", host.display()));
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else if ft.is_file() {
            '-'
        } else if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            panic!("{}: a socket in an unpacked image", host.display())
        };
        let contents = (kind == '-').then(|| {
            sha256(&std::fs::read(&host).unwrap_or_else(|e| panic!("read {}: {e}", host.display())))
        });
        let target = (kind == 'l').then(|| {
            std::fs::read_link(&host)
                .expect("readlink")
                .as_os_str()
                .as_bytes()
                .to_vec()
        });
        if kind != 'd' && meta.nlink() > 1 {
            inodes.push((rel.clone(), (meta.dev(), meta.ino())));
        }
        listing.insert(
            rel.clone(),
            Item {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid().into(),
                gid: meta.gid().into(),
                size: if kind == 'd' { 0 } else { meta.size() },
                contents,
                target,
                device: matches!(kind, 'c' | 'b').then(|| major_minor(meta.rdev())),
                xattrs: BTreeMap::new(),
                link_group: None,
                mtime: (kind != 'd').then_some(meta.mtime()),
            },
        );
        if kind == 'd' {
            for child in std::fs::read_dir(&host).expect("read_dir") {
                let child = child.expect("dir entry");
                let name = child.file_name();
                let mut path = rel.clone();
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name.as_bytes());
                stack.push((path, child.path()));
            }
        }
    }
    group_links(&mut listing, inodes);
    for (path, xattrs) in host_xattrs(root) {
        listing
            .get_mut(&path)
            .expect("getfattr names a listed path")
            .xattrs = xattrs;
    }
    listing
}

/// Undoes getfattr's quoting of names: `\ooo` octal escapes.
fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let octal = |b: u8| (b'0'..=b'7').contains(&b);
        if text[i] == b'\\' && i + 3 < text.len() && text[i + 1..i + 4].iter().all(|&b| octal(b)) {
            let v = text[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, &b| acc * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

/// Every extended attribute under `root` (symlinks not followed), by relative path.
fn host_xattrs(root: &Path) -> BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>> {
    let out = cmd("getfattr")
        .args([
            "-R",
            "-P",
            "-h",
            "-d",
            "-m",
            "-",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(root)
        .run();
    let prefix = root.as_os_str().as_bytes();
    let mut all = BTreeMap::new();
    let mut current: Option<Vec<u8>> = None;
    for line in out.split(|&b| b == b'\n') {
        if let Some(name) = line.strip_prefix(b"# file: ") {
            let name = unescape(name);
            let rel = name
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("getfattr named {}", String::from_utf8_lossy(&name)));
            let rel = rel.strip_prefix(b"/").unwrap_or(rel).to_vec();
            current = Some(rel);
        } else if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            let value = value
                .strip_prefix(b"0x")
                .map(|hex| hex::decode(hex).expect("getfattr -e hex"))
                .unwrap_or_else(|| value.to_vec());
            let path = current.clone().expect("an attribute follows its file");
            all.entry(path)
                .or_insert_with(BTreeMap::new)
                .insert(key.to_vec(), value);
        }
    }
    all
}

/// Asserts that two listings agree entry by entry, naming every path where they differ.
#[track_caller]
pub fn assert_same_listing(ours: &Listing, theirs: &Listing, what: &str) {
    let mut problems = Vec::new();
    let paths: std::collections::BTreeSet<&Vec<u8>> = ours.keys().chain(theirs.keys()).collect();
    for path in paths {
        let shown = format!("/{}", String::from_utf8_lossy(path));
        match (ours.get(path), theirs.get(path)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                problems.push(format!("{shown}\n    ours:   {a:?}\n    theirs: {b:?}"))
            }
            (Some(a), None) => problems.push(format!("{shown} only in ours: {a:?}")),
            (None, Some(b)) => problems.push(format!("{shown} only in theirs: {b:?}")),
            (None, None) => unreachable!(),
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} of {} entries differ:\n{}",
        problems.len(),
        ours.len().max(theirs.len()),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// OCI layouts on disk, read by hand (not through layercake) to name what a tool wrote.

/// Reads a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The path of a blob in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(alg).join(hex)
}

/// What a tool's OCI layout says about the image under `reference`: the manifest, the
/// config bytes, and the DiffIds the config lists.
pub struct LayoutImage {
    /// The manifest.
    pub manifest: Manifest,
    /// The config bytes, exactly as stored.
    pub config: Vec<u8>,
    /// `rootfs.diff_ids` of the config.
    pub diff_ids: Vec<String>,
}

impl LayoutImage {
    /// The image id the tool gave: the config descriptor's digest, checked against the
    /// config bytes.
    pub fn image_id(&self) -> String {
        let id = self.manifest.config.digest.to_string();
        assert_eq!(id, sha256(&self.config), "the tool's config digest");
        id
    }

    /// The layer blob digests, bottom first.
    pub fn blob_digests(&self) -> Vec<String> {
        self.manifest
            .layers
            .iter()
            .map(|d| d.digest.to_string())
            .collect()
    }
}

/// Reads the image a layout's `index.json` names `reference` by hand.
pub fn layout_image(layout: &Path, reference: &str) -> LayoutImage {
    let index: Index = read_json(&layout.join("index.json"));
    let desc = index
        .manifests
        .iter()
        .find(|d| {
            d.annotations
                .get("org.opencontainers.image.ref.name")
                .is_some_and(|r| r == reference)
        })
        .unwrap_or_else(|| panic!("{} has no ref {reference}", layout.display()));
    let manifest_bytes =
        std::fs::read(blob_path(layout, &desc.digest.to_string())).expect("manifest");
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).expect("manifest JSON");
    let config =
        std::fs::read(blob_path(layout, &manifest.config.digest.to_string())).expect("config");
    let diff_ids = config_diff_ids(&config);
    LayoutImage {
        manifest,
        config,
        diff_ids,
    }
}

/// `rootfs.diff_ids` of config bytes.
pub fn config_diff_ids(config: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(config).expect("config JSON");
    v["rootfs"]["diff_ids"]
        .as_array()
        .expect("rootfs.diff_ids")
        .iter()
        .map(|d| d.as_str().expect("a string").to_owned())
        .collect()
}

/// Asserts that a layercake image carries the ids a tool gave it.
#[track_caller]
pub fn assert_ids(image: &layercake::Image, image_id: &str, diff_ids: &[String], what: &str) {
    assert_eq!(image.id().to_string(), image_id, "{what}: ImageId");
    let ours: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
    assert_eq!(ours, diff_ids, "{what}: DiffIds");
}

/// `umoci unpack` (as root) of `layout:reference` into a fresh bundle; returns the
/// listing of its rootfs.
pub fn umoci_unpack(layout: &Path, reference: &str, scratch: &TempDir, bundle: &str) -> Listing {
    let bundle = scratch.join(bundle);
    cmd("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{reference}", layout.display()))
        .arg(&bundle)
        .run();
    dir_listing(&bundle.join("rootfs"))
}

// ---------------------------------------------------------------------------------------
// A private Docker engine.

/// A dockerd of our own: its own data root, exec root and unix socket under a temp dir, vfs
/// storage, no iptables, no bridge. Stopped (SIGTERM, then waited for) when dropped.
pub struct Dockerd {
    child: Option<Child>,
    host: String,
    dir: TempDir,
}

/// The Docker client to use: the 20.10 one from `docker.io`, not a newer one on `PATH`.
pub const DOCKER: &str = "/usr/bin/docker";

impl Dockerd {
    /// Starts dockerd and waits until it answers.
    ///
    /// # Panics
    ///
    /// If dockerd is missing, exits, or does not answer within two minutes, with its log.
    pub fn start() -> Dockerd {
        let dockerd = tool("dockerd");
        tool(DOCKER);
        let dir = TempDir::new("dockerd");
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).expect("dockerd.log");
        let host = format!("unix://{}", d.join("docker.sock").display());
        let child = Command::new(dockerd)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(&host)
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--bridge=none",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd: {e}"));
        let mut daemon = Dockerd {
            child: Some(child),
            host,
            dir,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = daemon
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                daemon.child = None;
                panic!(
                    "dockerd exited ({status}) while starting:\n{}",
                    daemon.log()
                );
            }
            if daemon.docker().arg("version").output().status.success() {
                return daemon;
            }
            if started.elapsed() > Duration::from_secs(120) {
                panic!("dockerd did not answer within 120 s:\n{}", daemon.log());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A `docker` command talking to this daemon.
    pub fn docker(&self) -> Cmd {
        cmd(DOCKER)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.dir.join("client"))
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }
}

/// Sends a signal with `kill` (procps), or busybox's if that is missing; never panics.
fn signal(pid: &str, signal: &str) {
    let sent = Command::new("kill").args([signal, pid]).status();
    if !sent.is_ok_and(|s| s.success()) {
        let _ = Command::new("/bin/busybox")
            .args(["kill", signal, pid])
            .status();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM lets dockerd stop its containers and its containerd; SIGKILL if it
            // hangs. (No `tool()` here: a panic while unwinding would abort.)
            let pid = child.id().to_string();
            signal(&pid, "-TERM");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(100))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        // A containerd that this dockerd started and did not stop: stop it by its pid file,
        // if its command line names our exec root (so it is ours, not a reused pid).
        let pidfile = self.dir.join("exec/containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(pidfile) {
            let pid = pid.trim();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = self.dir.path().as_os_str().as_bytes();
            if !pid.is_empty() && cmdline.windows(ours.len()).any(|w| w == ours) {
                signal(pid, "-KILL");
            }
        }
    }
}
