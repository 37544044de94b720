//! `unpack`: a tree written into a host directory matches the tree, and no tree and nothing
//! already in the directory can make it write outside the directory or follow a symlink.
//!
//! Every hostile case works in a scratch directory holding DIR and a SENTINEL beside it, and
//! checks that everything in the scratch directory but DIR is as it was.
#![cfg(target_os = "linux")]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use layercake::unpack::{Devices, Owners, Setuid, SkipReason, Xattrs};
use layercake::{
    unpack, Container, Entry, Error, FileType, Image, Layer, Tree, UnpackOptions, UnpackReport,
};

/// A scratch directory `…/layercake-unpack-NAME-PID-N/` holding `dir/` (empty) and
/// `sentinel/` (a few files, a subdirectory, a symlink), removed when dropped.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "layercake-unpack-{name}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("dir")).unwrap();
        let sentinel = root.join("sentinel");
        fs::create_dir_all(sentinel.join("sub")).unwrap();
        fs::write(sentinel.join("secret"), "do not touch\n").unwrap();
        fs::write(sentinel.join("sub/file"), "nor this\n").unwrap();
        symlink("secret", sentinel.join("link")).unwrap();
        Scratch { root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("dir")
    }

    fn sentinel(&self) -> PathBuf {
        self.root.join("sentinel")
    }

    /// Everything in the scratch directory except below DIR: type, mode, owner, size, mtime,
    /// inode, contents and link targets.
    fn outside(&self) -> BTreeMap<PathBuf, String> {
        let dir = self.dir();
        let mut out = BTreeMap::new();
        let mut todo = vec![self.root.clone()];
        while let Some(path) = todo.pop() {
            let md = fs::symlink_metadata(&path).unwrap();
            let mut line = format!(
                "{:o} {}:{} {} {}.{} ino {}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.len(),
                md.mtime(),
                md.mtime_nsec(),
                md.ino()
            );
            if md.is_file() {
                line.push_str(&format!(" {:?}", fs::read(&path).unwrap()));
            } else if md.is_symlink() {
                line.push_str(&format!(" -> {:?}", fs::read_link(&path).unwrap()));
            } else if md.is_dir() && path != dir {
                for child in fs::read_dir(&path).unwrap() {
                    todo.push(child.unwrap().path());
                }
            }
            if path != dir {
                out.insert(path, line);
            }
        }
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn host(dir: &Path, path: impl AsRef<[u8]>) -> PathBuf {
    dir.join(OsStr::from_bytes(path.as_ref()))
}

/// A host path as a symlink target.
fn target(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}

fn root_user() -> bool {
    rustix::process::geteuid().is_root()
}

fn tree(layers: impl IntoIterator<Item = Layer>) -> Tree {
    let mut builder = Image::builder();
    for layer in layers {
        builder = builder.layer(layer);
    }
    builder.build().unwrap().tree().unwrap()
}

/// Every path below `dir` (relative, as bytes), without following symlinks.
fn host_paths(dir: &Path) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        for child in fs::read_dir(&path).unwrap() {
            let child = child.unwrap().path();
            out.insert(
                child
                    .strip_prefix(dir)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            );
            if fs::symlink_metadata(&child).unwrap().is_dir() {
                todo.push(child);
            }
        }
    }
    out
}

/// Asserts that `dir` holds exactly `tree`: the same paths, types, contents, link targets,
/// modes, mtimes and (with `owners`) owners, and inodes shared exactly where nodes are.
fn assert_unpacked(tree: &Tree, dir: &Path, owners: Owners) {
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let tree_paths: BTreeSet<Vec<u8>> = tree.walk().map(|(p, _)| p.as_bytes().to_vec()).collect();
    assert_eq!(host_paths(dir), tree_paths, "the same paths");

    let root = fs::metadata(dir).unwrap();
    assert_eq!(
        root.mode() & 0o7777,
        tree.root().metadata().mode,
        "DIR's mode"
    );
    assert_eq!(root.mtime(), tree.root().metadata().mtime, "DIR's mtime");

    let mut leaves: Vec<(PathBuf, layercake::Node, u64)> = Vec::new();
    for (path, node) in tree.walk() {
        let at = host(dir, path.as_bytes());
        let md = fs::symlink_metadata(&at).unwrap();
        let meta = node.metadata();
        let ft = md.file_type();
        match node.file_type() {
            FileType::Directory => assert!(ft.is_dir(), "{path:?}"),
            FileType::File => {
                assert!(ft.is_file(), "{path:?}");
                let contents = node.contents().unwrap().to_bytes().unwrap();
                assert_eq!(fs::read(&at).unwrap(), contents, "{path:?}");
            }
            FileType::Symlink => {
                assert!(ft.is_symlink(), "{path:?}");
                let target = fs::read_link(&at).unwrap();
                assert_eq!(
                    target.as_os_str().as_bytes(),
                    &node.link_target().unwrap()[..]
                );
            }
            FileType::Fifo => assert!(ft.is_fifo(), "{path:?}"),
            FileType::CharDevice => assert!(ft.is_char_device(), "{path:?}"),
            FileType::BlockDevice => assert!(ft.is_block_device(), "{path:?}"),
            FileType::Hardlink => unreachable!("a tree holds no hardlink records"),
        }
        if !ft.is_symlink() {
            assert_eq!(md.mode() & 0o7777, meta.mode, "mode of {path:?}");
        }
        assert_eq!(md.mtime(), meta.mtime, "mtime of {path:?}");
        match owners {
            Owners::Keep => {
                assert_eq!(
                    (md.uid() as u64, md.gid() as u64),
                    (meta.uid, meta.gid),
                    "{path:?}"
                )
            }
            _ => assert_eq!((md.uid(), md.gid()), (euid, egid), "{path:?}"),
        }
        if !node.is_dir() {
            leaves.push((at, node.clone(), md.ino()));
        }
    }
    for (a, node_a, ino_a) in &leaves {
        for (b, node_b, ino_b) in &leaves {
            assert_eq!(
                node_a.same_file(node_b),
                ino_a == ino_b,
                "{a:?} and {b:?} share an inode exactly when they share a node"
            );
        }
    }
}

/// A small root filesystem with every kind of entry but devices, owners, modes and mtimes.
fn sample() -> Tree {
    let base = Layer::builder()
        .entry("bin", Entry::dir().mtime(1_000))
        .entry(
            "bin/busybox",
            Entry::file("ELF busybox").mode(0o755).mtime(1_001),
        )
        .entry("bin/sh", Entry::symlink("busybox").mtime(1_002).owner(0, 0))
        .hard_link("bin/busybox", "bin/ls")
        .hard_link("bin/busybox", "bin/cat")
        .entry("etc", Entry::dir().mtime(1_010))
        .entry(
            "etc/passwd",
            Entry::file("root:x:0:0::/root:/bin/sh\n").mtime(1_011),
        )
        .entry(
            "etc/shadow",
            Entry::file("root:*::::::\n").mode(0o640).owner(0, 42),
        )
        .entry("etc/empty", Entry::file("").mode(0o600))
        .entry(
            "etc/attrs",
            Entry::file("x").xattr("user.layercake", "cake"),
        )
        .entry(
            "home/user",
            Entry::dir().mode(0o700).owner(1000, 1000).mtime(1_020),
        )
        .entry(
            "home/user/.profile",
            Entry::file("PS1='$ '\n")
                .owner(1000, 1000)
                .mode(0o600)
                .mtime(1_021),
        )
        .entry("tmp", Entry::dir().mode(0o1777).mtime(1_030))
        .entry("run/ctl", Entry::fifo().mode(0o620).mtime(1_040))
        .entry("ro", Entry::dir().mode(0o555).mtime(1_050))
        .entry(
            "ro/inside",
            Entry::file("written before ro was made read-only").mode(0o444),
        )
        .entry("", Entry::dir().mode(0o755).mtime(999))
        .build()
        .unwrap();
    let top = Layer::builder()
        .whiteout("etc/empty")
        .entry("etc/hostname", Entry::file("cake\n").mtime(2_000))
        .hard_link("etc/passwd", "ro/link-to-passwd")
        .build()
        .unwrap();
    tree([base, top])
}

#[test]
fn a_normal_image_unpacks_as_its_tree() {
    let scratch = Scratch::new("normal");
    let tree = sample();
    let report = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    let owners = if root_user() {
        Owners::Keep
    } else {
        Owners::Drop
    };
    assert_unpacked(&tree, &scratch.dir(), owners);

    assert_eq!(report.files, 7);
    assert_eq!(report.hardlinks, 3);
    assert_eq!(report.symlinks, 1);
    assert_eq!(report.fifos, 1);
    assert_eq!(report.directories, 7);
    assert_eq!(report.entries() as usize, tree.len());
    let bytes: u64 = tree
        .walk()
        .filter_map(|(_, n)| n.contents())
        .map(|c| c.len())
        .sum();
    let linked: u64 = ["bin/ls", "bin/cat", "ro/link-to-passwd"]
        .iter()
        .map(|p| tree.lookup(p).unwrap().unwrap().size())
        .sum();
    assert_eq!(
        report.bytes,
        bytes - linked,
        "a hardlinked file is written once"
    );
    assert_eq!(report.replaced, 0);

    // The user xattr is there, or the filesystem said no and the report says so.
    let attrs = host(&scratch.dir(), "etc/attrs");
    let mut value = [0u8; 64];
    match rustix::fs::getxattr(&attrs, "user.layercake", &mut value[..]) {
        Ok(n) => assert_eq!(&value[..n], b"cake"),
        Err(_) => assert!(report
            .skipped
            .iter()
            .any(|s| matches!(s.reason, SkipReason::XattrFailed { .. }))),
    }
    assert!(
        report
            .skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::XattrFailed { .. })),
        "nothing else is left out: {:?}",
        report.skipped
    );
}

#[test]
fn owners_kept_and_dropped() {
    let tree = tree([Layer::builder()
        .entry("srv", Entry::dir().owner(1234, 4321))
        .entry("srv/data", Entry::file("d").owner(1000, 2000))
        .entry("srv/link", Entry::symlink("data").owner(1001, 2001))
        .entry("srv/pipe", Entry::fifo().owner(1002, 2002))
        .build()
        .unwrap()]);

    let dropped = Scratch::new("owners-drop");
    unpack(
        &tree,
        dropped.dir(),
        &UnpackOptions::new().owners(Owners::Drop),
    )
    .unwrap();
    assert_unpacked(&tree, &dropped.dir(), Owners::Drop);

    let kept = Scratch::new("owners-keep");
    let result = unpack(
        &tree,
        kept.dir(),
        &UnpackOptions::new().owners(Owners::Keep),
    );
    if root_user() {
        result.unwrap();
        assert_unpacked(&tree, &kept.dir(), Owners::Keep);
        let md = fs::symlink_metadata(kept.dir().join("srv/link")).unwrap();
        assert_eq!(
            (md.uid(), md.gid()),
            (1001, 2001),
            "the symlink itself, not its target"
        );
        // Auto is Keep for root.
        let auto = Scratch::new("owners-auto");
        unpack(&tree, auto.dir(), &UnpackOptions::new()).unwrap();
        assert_unpacked(&tree, &auto.dir(), Owners::Keep);
    } else {
        assert!(matches!(result, Err(Error::Io { .. })), "{result:?}");
    }
}

#[test]
fn an_owner_that_does_not_fit_is_an_error_only_when_owners_are_kept() {
    let tree = tree([Layer::builder()
        .entry("big", Entry::file("").owner(1 << 40, 0))
        .build()
        .unwrap()]);
    let scratch = Scratch::new("owner-range");
    let err = unpack(
        &tree,
        scratch.dir(),
        &UnpackOptions::new().owners(Owners::Keep),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unpack { .. }), "{err}");
    assert!(err.to_string().contains("/dir/big"), "{err}");
    let again = Scratch::new("owner-range-drop");
    unpack(
        &tree,
        again.dir(),
        &UnpackOptions::new().owners(Owners::Drop),
    )
    .unwrap();
}

/// A version 2 `security.capability` value granting `cap_net_bind_service`, effective.
const CAP_NET_BIND_SERVICE: &[u8] = &[
    0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

#[test]
fn setuid_setgid_and_capabilities_are_stripped_unless_kept() {
    let tree = tree([Layer::builder()
        .entry("bin/su", Entry::file("su").mode(0o4755))
        .entry("bin/wall", Entry::file("wall").mode(0o2755))
        .entry(
            "bin/ping",
            Entry::file("ping")
                .mode(0o755)
                .xattr("security.capability", CAP_NET_BIND_SERVICE),
        )
        .entry("shared", Entry::dir().mode(0o2775))
        .build()
        .unwrap()]);
    let mode = |dir: &Path, p: &str| fs::symlink_metadata(dir.join(p)).unwrap().mode() & 0o7777;
    let has_capability = |dir: &Path| {
        let mut value = [0u8; 64];
        rustix::fs::getxattr(dir.join("bin/ping"), "security.capability", &mut value[..]).is_ok()
    };

    let stripped = Scratch::new("setuid-strip");
    let report = unpack(&tree, stripped.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(mode(&stripped.dir(), "bin/su"), 0o755);
    assert_eq!(mode(&stripped.dir(), "bin/wall"), 0o755);
    assert_eq!(
        mode(&stripped.dir(), "shared"),
        0o2775,
        "a directory keeps setgid"
    );
    assert!(!has_capability(&stripped.dir()));
    let skipped: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        skipped,
        [
            "bin/ping: xattr security.capability not allowed",
            "bin/su: setuid/setgid bits cleared from 4755",
            "bin/wall: setuid/setgid bits cleared from 2755",
        ]
    );

    let kept = Scratch::new("setuid-keep");
    let options = UnpackOptions::new().setuid(Setuid::Keep);
    let report = unpack(&tree, kept.dir(), &options).unwrap();
    assert_eq!(mode(&kept.dir(), "bin/su"), 0o4755);
    assert_eq!(mode(&kept.dir(), "bin/wall"), 0o2755);
    if root_user() {
        assert!(
            has_capability(&kept.dir())
                || report.skipped.iter().any(|s| matches!(
                    &s.reason,
                    SkipReason::XattrFailed { name, .. } if &name[..] == b"security.capability"
                )),
            "{:?}",
            report.skipped
        );
    }
}

#[test]
fn xattrs_can_be_left_out() {
    let tree = tree([Layer::builder()
        .entry(
            "f",
            Entry::file("x")
                .xattr("user.a", "1")
                .xattr("trusted.b", "2"),
        )
        .build()
        .unwrap()]);
    let scratch = Scratch::new("xattrs-skip");
    let report = unpack(
        &tree,
        scratch.dir(),
        &UnpackOptions::new().xattrs(Xattrs::Skip),
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let mut value = [0u8; 8];
    assert!(rustix::fs::getxattr(scratch.dir().join("f"), "user.a", &mut value[..]).is_err());
}

#[test]
fn devices_are_skipped_unless_asked_for() {
    let tree = tree([Layer::builder()
        .entry("dev/null", Entry::char_device(1, 3).mode(0o666).mtime(7))
        .entry("dev/sda", Entry::block_device(8, 0).mode(0o660))
        .hard_link("dev/null", "dev/null-too")
        .file("dev/readme", "devices live here\n")
        .build()
        .unwrap()]);
    let skipped = Scratch::new("devices-skip");
    let report = unpack(&tree, skipped.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(report.devices, 0);
    assert_eq!(report.files, 1);
    let left_out: Vec<String> = report
        .skipped
        .iter()
        .filter(|s| s.reason == SkipReason::Device)
        .map(|s| s.path.to_string())
        .collect();
    assert_eq!(left_out, ["dev/null", "dev/null-too", "dev/sda"]);
    let names: Vec<_> = fs::read_dir(skipped.dir().join("dev"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["readme"]);

    if !root_user() {
        return;
    }
    let created = Scratch::new("devices-create");
    let options = UnpackOptions::new().devices(Devices::Create);
    let report = unpack(&tree, created.dir(), &options).unwrap();
    assert_eq!((report.devices, report.hardlinks), (2, 1));
    assert_unpacked(&tree, &created.dir(), Owners::Keep);
    let null = fs::symlink_metadata(created.dir().join("dev/null")).unwrap();
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    let sda = fs::symlink_metadata(created.dir().join("dev/sda")).unwrap();
    assert_eq!(sda.rdev(), rustix::fs::makedev(8, 0));
}

#[test]
fn symlinks_of_the_tree_are_written_verbatim_and_never_followed() {
    let scratch = Scratch::new("symlinks");
    let sentinel = scratch.sentinel();
    let marker = format!("layercake-unpack-escape-{}", std::process::id());
    let tree = tree([Layer::builder()
        .symlink(target(&sentinel), "a")
        .file("a2", "beside a")
        .symlink("../sentinel", "rel")
        .symlink("../../../../../../../../..", "up")
        .symlink("/", "root")
        .symlink(target(&sentinel.join("secret")), "secret")
        .hard_link("secret", "secret-too")
        .file("b/c", "deeper")
        .symlink("../../sentinel/secret", "b/out")
        .file(&marker, "inside only")
        .build()
        .unwrap()]);
    let before = scratch.outside();
    unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(scratch.outside(), before, "nothing outside DIR changed");
    assert!(!Path::new("/").join(&marker).exists());
    assert_unpacked(
        &tree,
        &scratch.dir(),
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

#[test]
fn a_later_unpack_does_not_write_through_an_earlier_symlink() {
    // Unpacking layer by layer: the first pass leaves symlinks to the outside, the second
    // has directories (R6 replaced the symlinks in the merged tree) with files below them.
    let scratch = Scratch::new("later");
    let sentinel = scratch.sentinel();
    let marker = format!("layercake-unpack-later-{}", std::process::id());
    let lower = Layer::builder()
        .symlink(target(&sentinel), "evil")
        .symlink("../sentinel", "evil2")
        .symlink("/", "evil3")
        .symlink("../../../../../../..", "evil4")
        .symlink("../sentinel/secret", "secret")
        .build()
        .unwrap();
    let upper = Layer::builder()
        .file("evil/secret", "pwned")
        .file("evil2/sub/file", "pwned")
        .file(format!("evil3/{marker}"), "pwned")
        .file(format!("evil4/{marker}"), "pwned")
        .file("secret", "pwned")
        .build()
        .unwrap();
    let first = tree([lower.clone()]);
    let merged = tree([lower, upper]);
    assert!(merged.lookup("evil").unwrap().unwrap().is_dir(), "R6");

    let before = scratch.outside();
    unpack(&first, scratch.dir(), &UnpackOptions::new()).unwrap();
    let report = unpack(&merged, scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(scratch.outside(), before, "nothing outside DIR changed");
    assert!(!Path::new("/").join(&marker).exists());
    assert_eq!(report.replaced, 5, "each symlink was removed, not followed");
    assert_unpacked(
        &merged,
        &scratch.dir(),
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

#[test]
fn a_hardlink_to_a_symlink_links_the_symlink_itself() {
    let scratch = Scratch::new("hardlink-symlink");
    let secret = scratch.sentinel().join("secret");
    let tree = tree([Layer::builder()
        .symlink(target(&secret), "s")
        .hard_link("s", "h")
        .symlink(target(&scratch.sentinel()), "d")
        .hard_link("d", "d2")
        .build()
        .unwrap()]);
    let before = scratch.outside();
    let report = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!((report.symlinks, report.hardlinks), (2, 2));
    assert_eq!(scratch.outside(), before, "nothing outside DIR changed");
    assert_eq!(
        fs::metadata(&secret).unwrap().nlink(),
        1,
        "no link to the target"
    );
    let s = fs::symlink_metadata(scratch.dir().join("s")).unwrap();
    let h = fs::symlink_metadata(scratch.dir().join("h")).unwrap();
    assert!(h.file_type().is_symlink());
    assert_eq!((s.ino(), s.nlink()), (h.ino(), 2));
    assert_unpacked(
        &tree,
        &scratch.dir(),
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

#[test]
fn symlinks_already_in_the_directory_are_replaced_not_followed() {
    let scratch = Scratch::new("preexisting");
    let dir = scratch.dir();
    let sentinel = scratch.sentinel();
    // Planted before the unpack: symlinks named like the tree's directories and files.
    symlink(&sentinel, dir.join("etc")).unwrap();
    symlink("../sentinel", dir.join("usr")).unwrap();
    symlink(sentinel.join("secret"), dir.join("file")).unwrap();
    symlink(sentinel.join("secret"), dir.join("pipe")).unwrap();
    symlink(sentinel.join("secret"), dir.join("link")).unwrap();
    symlink(&sentinel, dir.join("dangling-dir")).unwrap();
    fs::create_dir(dir.join("var")).unwrap();
    symlink("../../sentinel", dir.join("var/lib")).unwrap();
    let tree = tree([Layer::builder()
        .file("etc/passwd", "pwned")
        .file("etc/sub/file", "pwned")
        .file("usr/secret", "pwned")
        .file("file", "pwned")
        .fifo("pipe")
        .hard_link("file", "link")
        .entry("dangling-dir", Entry::dir().mode(0o700))
        .file("var/lib/secret", "pwned")
        .build()
        .unwrap()]);
    let before = scratch.outside();
    let report = unpack(&tree, &dir, &UnpackOptions::new()).unwrap();
    assert_eq!(scratch.outside(), before, "nothing outside DIR changed");
    assert_eq!(report.replaced, 7);
    assert_unpacked(
        &tree,
        &dir,
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

#[test]
fn a_hardlink_already_in_the_directory_is_not_written_through() {
    let scratch = Scratch::new("preexisting-hardlink");
    let secret = scratch.sentinel().join("secret");
    fs::hard_link(&secret, scratch.dir().join("passwd")).unwrap();
    let tree = tree([Layer::builder().file("passwd", "pwned").build().unwrap()]);
    unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "do not touch\n");
    assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
    assert_eq!(
        fs::read_to_string(scratch.dir().join("passwd")).unwrap(),
        "pwned"
    );
}

#[test]
fn a_non_empty_directory_in_the_way_is_an_error() {
    let scratch = Scratch::new("in-the-way");
    fs::create_dir(scratch.dir().join("x")).unwrap();
    fs::write(scratch.dir().join("x/kept"), "mine").unwrap();
    fs::create_dir(scratch.dir().join("empty")).unwrap();
    let tree = tree([Layer::builder()
        .file("empty", "an empty directory is replaced")
        .symlink("/", "x")
        .build()
        .unwrap()]);
    let before = scratch.outside();
    let err = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Unpack { .. }), "{err}");
    assert!(err.to_string().contains("/dir/x`"), "{err}");
    assert!(err.to_string().contains("non-empty directory"), "{err}");
    assert_eq!(scratch.outside(), before);
    assert_eq!(
        fs::read_to_string(scratch.dir().join("x/kept")).unwrap(),
        "mine"
    );
    assert!(fs::symlink_metadata(scratch.dir().join("empty"))
        .unwrap()
        .is_file());
}

#[test]
fn a_file_in_the_way_of_a_directory_is_replaced() {
    let scratch = Scratch::new("file-in-the-way");
    fs::write(scratch.dir().join("etc"), "a file").unwrap();
    fs::create_dir(scratch.dir().join("keep")).unwrap();
    fs::write(scratch.dir().join("keep/mine"), "mine").unwrap();
    let tree = tree([Layer::builder()
        .file("etc/hosts", "127.0.0.1 localhost\n")
        .file("keep/theirs", "theirs")
        .build()
        .unwrap()]);
    let report = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(report.replaced, 1);
    assert!(scratch.dir().join("etc/hosts").is_file());
    assert_eq!(
        fs::read_to_string(scratch.dir().join("keep/mine")).unwrap(),
        "mine",
        "a directory is merged into, not emptied"
    );
}

#[test]
fn unpacking_twice_replaces_every_entry_and_keeps_hardlinks() {
    let scratch = Scratch::new("twice");
    let tree = sample();
    let first = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    let second = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    let leaves = tree.walk().filter(|(_, n)| !n.is_dir()).count() as u64;
    assert_eq!(second.replaced, leaves);
    let mut same = second.clone();
    same.replaced = 0;
    assert_eq!(same, first, "the same entries written again");
    assert_unpacked(
        &tree,
        &scratch.dir(),
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

#[test]
fn a_deep_tree_unpacks_without_recursion_or_running_out_of_descriptors() {
    const DEPTH: usize = 1000;
    let scratch = Scratch::new("deep");
    let deep = |n: usize| vec!["d"; n].join("/");
    let bottom = format!("{}/bottom", deep(DEPTH));
    let middle = deep(DEPTH / 2);
    let tree = tree([Layer::builder()
        .file(&bottom, "at the bottom")
        .file("top", "at the top")
        .hard_link("top", format!("{}/link-to-top", deep(DEPTH)))
        // Written after the deep branch is done: its parent is reopened through `..`.
        .file(format!("{middle}/zz"), "in the middle")
        .hard_link(&bottom, "z-link-to-bottom")
        .entry(&middle, Entry::dir().mode(0o750).mtime(12_345))
        .build()
        .unwrap()]);
    let before = scratch.outside();
    // A small stack: the unpack keeps its own.
    let report = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn_scoped(s, || unpack(&tree, scratch.dir(), &UnpackOptions::new()))
            .unwrap()
            .join()
            .unwrap()
    })
    .unwrap();
    assert_eq!(report.directories, DEPTH as u64);
    assert_eq!(report.hardlinks, 2);
    assert_eq!(scratch.outside(), before);
    let dir = scratch.dir();
    assert_eq!(
        fs::read_to_string(dir.join(&bottom)).unwrap(),
        "at the bottom"
    );
    assert_eq!(
        fs::read_to_string(dir.join(&middle).join("zz")).unwrap(),
        "in the middle"
    );
    let mid = fs::metadata(dir.join(&middle)).unwrap();
    assert_eq!((mid.mode() & 0o7777, mid.mtime()), (0o750, 12_345));
    let top = fs::metadata(dir.join("top")).unwrap();
    let linked = fs::metadata(dir.join(deep(DEPTH)).join("link-to-top")).unwrap();
    assert_eq!((top.ino(), top.nlink()), (linked.ino(), 2));
    let bottom_md = fs::metadata(dir.join(&bottom)).unwrap();
    let z = fs::metadata(dir.join("z-link-to-bottom")).unwrap();
    assert_eq!(bottom_md.ino(), z.ino());
}

#[test]
fn a_container_unpacks_its_working_tree() {
    let image = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/motd", "hello\n")
                .file("etc/issue", "Cake\n")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let mut container = Container::new(&image).unwrap();
    container.write("etc/motd", "changed\n").unwrap();
    container.remove_file("etc/issue").unwrap();
    container.symlink("motd", "etc/motd.link").unwrap();
    let scratch = Scratch::new("container");
    unpack(container.tree(), scratch.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(
        fs::read_to_string(scratch.dir().join("etc/motd")).unwrap(),
        "changed\n"
    );
    assert!(!scratch.dir().join("etc/issue").exists());
    assert_unpacked(
        container.tree(),
        &scratch.dir(),
        if root_user() {
            Owners::Keep
        } else {
            Owners::Drop
        },
    );
}

/// The layers of `sample()` plus a file larger than one read chunk, written to files in
/// `scratch` (the second one gzip-compressed) and opened from there: a tree whose file
/// contents are all read from disk.
fn sample_on_disk(scratch: &Scratch) -> (Tree, PathBuf) {
    let big = Layer::builder()
        .entry(
            "srv/big",
            Entry::file(big_contents()).mode(0o600).mtime(3_000),
        )
        .hard_link("srv/big", "srv/big-link")
        .build()
        .unwrap();
    let plain = scratch.root.join("layer.tar");
    fs::write(
        &plain,
        Layer::squash(&sample())
            .unwrap()
            .tar()
            .unwrap()
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    let gzip = scratch.root.join("layer.tar.gz");
    let compressed = big.compress(layercake::Compression::Gzip, 1).unwrap();
    fs::write(&gzip, compressed.blob().contents().to_bytes().unwrap()).unwrap();
    let tree = tree([Layer::open(&plain).unwrap(), Layer::open(&gzip).unwrap()]);
    for (path, node) in tree.walk() {
        if let Some(contents) = node.contents() {
            assert!(contents.as_bytes().is_none(), "{path:?} is read from disk");
        }
    }
    (tree, plain)
}

fn big_contents() -> Vec<u8> {
    (0..700_000u32).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_tree_read_from_disk_unpacks_as_its_tree() {
    let scratch = Scratch::new("from-disk");
    let (tree, _) = sample_on_disk(&scratch);
    let report = unpack(&tree, scratch.dir(), &UnpackOptions::new()).unwrap();
    let owners = if root_user() {
        Owners::Keep
    } else {
        Owners::Drop
    };
    assert_unpacked(&tree, &scratch.dir(), owners);
    assert_eq!(
        fs::read(scratch.dir().join("srv/big")).unwrap(),
        big_contents()
    );
    // The same tree in memory unpacks to the same report.
    let memory = Scratch::new("from-memory");
    let squashed = Layer::squash(&tree)
        .unwrap()
        .tar()
        .unwrap()
        .to_bytes()
        .unwrap();
    let in_memory = Tree::new()
        .apply(&Layer::from_tar(squashed).unwrap())
        .unwrap();
    let big = in_memory.lookup("srv/big").unwrap().unwrap();
    assert!(big.contents().unwrap().as_bytes().is_some());
    assert_eq!(in_memory, tree);
    let want = unpack(&in_memory, memory.dir(), &UnpackOptions::new()).unwrap();
    assert_eq!(report, want);
    assert_eq!(
        report.bytes,
        700_000
            + Layer::squash(&sample())
                .unwrap()
                .changeset()
                .unwrap()
                .content_size()
    );
}

#[test]
fn a_tree_whose_file_on_disk_was_truncated_is_an_io_error_naming_it() {
    let scratch = Scratch::new("truncated");
    let (tree, plain) = sample_on_disk(&scratch);
    // The plain layer file loses its second half while the tree is in use.
    let len = fs::metadata(&plain).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&plain)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    match unpack(&tree, scratch.dir(), &UnpackOptions::new()) {
        Err(Error::Io { context, .. }) => {
            assert!(context.contains(&plain.display().to_string()), "{context}")
        }
        other => panic!("expected Io naming {}, got {other:?}", plain.display()),
    }
}

#[test]
fn a_missing_directory_is_created_and_a_file_is_refused() {
    let scratch = Scratch::new("create");
    let tree = tree([Layer::builder().file("a", "1").build().unwrap()]);
    let nested = scratch.root.join("new/nested");
    unpack(&tree, &nested, &UnpackOptions::new()).unwrap();
    assert_eq!(fs::read_to_string(nested.join("a")).unwrap(), "1");

    let file = scratch.root.join("a-file");
    fs::write(&file, "").unwrap();
    let err = unpack(&tree, &file, &UnpackOptions::new()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<UnpackOptions>();
    check::<UnpackReport>();
    check::<layercake::unpack::Skipped>();
}
