//! Interop with umoci 0.4.7: images umoci builds (`repack`, `insert`, `insert --opaque`,
//! `insert --whiteout`, `raw add-layer` of a GNU tar) load in layercake with umoci's ids,
//! and flatten to the same tree as `umoci unpack`; layouts layercake writes (named by a ref
//! name as is, or by a reference as Docker 25 names it) unpack with umoci to layercake's
//! tree; the CLI's `export`, `ls`, `cat` and `squash` agree with umoci.
//!
//! Every fixture is made at test time by the real tool; a missing tool fails the test.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::{
    assert_ids, assert_same_listing, cmd, layout_image, sha256, tree_listing, umoci_unpack, TempDir,
};
use layercake::archive::{Archive, Format, Writer};
use layercake::layer::WhiteoutStyle;
use layercake::{Changeset, CommitOptions, Compression, Container, Entry, Image, Layer};

/// A 160-byte file name: too long for USTAR's 100-byte name field, and one component
/// cannot be split into its prefix field, so writers need PAX or GNU long-name records.
fn long_name(c: char) -> String {
    std::iter::repeat_n(c, 160).collect()
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, contents).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn setfattr(path: &Path, name: &str, value: &str) {
    cmd("setfattr")
        .args(["-h", "-n", name, "-v", value])
        .arg(path)
        .run();
}

fn mknod(path: &Path, args: &[&str]) {
    cmd("mknod").arg(path).args(args).run();
}

/// A rootfs with one of everything a layer tar can carry.
fn populate_base(root: &Path) {
    let p = |rel: &str| root.join(rel);
    write(&p("etc/hostname"), "umoci\n");
    std::os::unix::fs::chown(p("etc/hostname"), Some(1000), Some(1001)).unwrap();
    chmod(&p("etc/hostname"), 0o640);
    setfattr(&p("etc/hostname"), "user.color", "blue");
    write(&p("etc/motd"), "hello\n");
    write(&p("etc/issue"), "Umoci Linux\n");
    write(&p("etc/empty"), "");
    write(&p("usr/bin/tool"), vec![b'x'; 5000]);
    chmod(&p("usr/bin/tool"), 0o4755);
    std::fs::hard_link(p("usr/bin/tool"), p("usr/bin/tool-alias")).unwrap();
    write(&p("usr/lib/libc.so"), "ELF");
    symlink("usr/lib", p("lib")).unwrap();
    symlink("/usr/bin/tool", p("etc/absolute")).unwrap();
    symlink("/nowhere/at/all", p("etc/dangling")).unwrap();
    write(&p(&format!("long/{}", long_name('n'))), "long name\n");
    symlink(
        format!("/long/{}", long_name('n')),
        p(&format!("long/{}", long_name('s'))),
    )
    .unwrap();
    std::fs::create_dir_all(p("dirs")).unwrap();
    let odd = root.join(OsStr::from_bytes(b"dirs/caf\xe9"));
    write(&odd, "latin-1\n");
    let odd_dir = root.join(OsStr::from_bytes(b"dirs/\xff\xfe"));
    write(&odd_dir.join("inside"), "in a non-UTF-8 directory\n");
    std::fs::create_dir_all(p("run")).unwrap();
    mknod(&p("run/pipe"), &["p"]);
    std::fs::create_dir_all(p("dev")).unwrap();
    mknod(&p("dev/zero"), &["c", "1", "5"]);
    mknod(&p("dev/loop7"), &["b", "7", "7"]);
    std::fs::create_dir_all(p("tmp")).unwrap();
    chmod(&p("tmp"), 0o1777);
    write(&p("srv/data"), "served\n");
    setfattr(&p("srv"), "user.dir", "yes");
    chmod(&p("srv"), 0o750);
    write(&p("var/cache/app/a"), "a\n");
    write(&p("var/cache/app/b"), "b\n");
    write(&p("var/old/one"), "1\n");
    write(&p("var/old/sub/two"), "2\n");
    write(&p("swap/child"), "a directory that becomes a file\n");
    write(&p("f2dir"), "a file that becomes a directory\n");
}

/// The second repack: modify, delete, recreate, change types, metadata and links.
fn change_base(root: &Path) {
    let p = |rel: &str| root.join(rel);
    write(&p("etc/motd"), "hello again\n");
    std::fs::remove_file(p("etc/issue")).unwrap();
    std::fs::remove_dir_all(p("var/old")).unwrap();
    std::fs::remove_dir_all(p("var/cache/app")).unwrap();
    write(&p("var/cache/app/c"), "c\n");
    std::fs::remove_dir_all(p("swap")).unwrap();
    write(&p("swap"), "now a file\n");
    std::fs::remove_file(p("f2dir")).unwrap();
    write(&p("f2dir/inside"), "now a directory\n");
    setfattr(&p("etc/hostname"), "user.color", "green");
    chmod(&p("etc/motd"), 0o600);
    std::fs::hard_link(p("usr/lib/libc.so"), p("usr/lib/libc.so.6")).unwrap();
    std::fs::remove_file(root.join(OsStr::from_bytes(b"dirs/caf\xe9"))).unwrap();
    write(
        &p(&format!("long/{}", long_name('m'))),
        "another long name\n",
    );
}

/// umoci's image `layout:reference` loads in layercake with umoci's ImageId, DiffIds and
/// blob digests (no layer read to know them), and flattens to what `umoci unpack` makes of
/// it. Returns the image.
fn check_against_umoci(layout: &Path, reference: &str, tmp: &TempDir) -> Image {
    let archive = Archive::open(layout).expect("layercake reads umoci's layout");
    let loaded = archive.image(reference).expect("the reference");
    let theirs = layout_image(layout, reference);
    let what = format!("umoci {reference}");
    assert_ids(&loaded, &theirs.image_id(), &theirs.diff_ids, &what);
    let blobs: Vec<String> = loaded
        .layers()
        .map(|l| l.blob().digest().to_string())
        .collect();
    assert_eq!(blobs, theirs.blob_digests(), "{what}: blob digests");
    assert!(
        loaded.layers().all(|l| !l.is_read()),
        "{what}: opening read a layer"
    );
    let unpacked = umoci_unpack(layout, reference, tmp, &format!("unpack-{reference}"));
    let ours = tree_listing(&loaded.tree().expect("tree"));
    assert_same_listing(&ours, &unpacked, &format!("{what} vs umoci unpack"));
    loaded
}

/// What a layer changes, read.
fn changes(layer: &Layer) -> &Changeset {
    layer.changeset().expect("the layer reads")
}

/// Starts an empty umoci layout with one tag and a bundle of it at `tmp/bundle`.
fn umoci_layout(tmp: &TempDir, tag: &str) -> std::path::PathBuf {
    let layout = tmp.join("layout");
    cmd("umoci").arg("init").arg("--layout").arg(&layout).run();
    cmd("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .run();
    cmd("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(tmp.join("bundle"))
        .run();
    layout
}

fn repack(layout: &Path, tag: &str, bundle: &Path) {
    cmd("umoci")
        .args(["repack", "--refresh-bundle", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle)
        .run();
}

#[test]
fn umoci_repack_images_load_with_umoci_ids_and_flatten_like_umoci_unpack() {
    let tmp = TempDir::new("umoci-repack");
    let layout = umoci_layout(&tmp, "v1");
    let bundle = tmp.join("bundle");
    populate_base(&bundle.join("rootfs"));
    repack(&layout, "v1", &bundle);
    change_base(&bundle.join("rootfs"));
    repack(&layout, "v2", &bundle);

    let v1 = check_against_umoci(&layout, "v1", &tmp);
    let v2 = check_against_umoci(&layout, "v2", &tmp);
    assert_eq!(v1.layers().count(), 1);
    assert_eq!(v2.layers().count(), 2);
    assert_eq!(v2.diff_ids()[0], v1.diff_ids()[0], "v2 is built on v1");

    // The fixture is what it claims: long names, non-UTF-8 names, xattrs, hardlinks,
    // devices, and a top layer of whiteouts.
    let tree = v1.tree().unwrap();
    assert!(tree
        .lookup(format!("long/{}", long_name('n')))
        .unwrap()
        .is_some());
    assert!(tree.lookup(b"dirs/caf\xe9").unwrap().is_some());
    assert!(tree.lookup(b"dirs/\xff\xfe/inside").unwrap().is_some());
    let hostname = tree.lookup("etc/hostname").unwrap().unwrap();
    assert_eq!(hostname.metadata().xattrs.len(), 1);
    assert!(tree
        .lookup("usr/bin/tool")
        .unwrap()
        .unwrap()
        .same_file(&tree.lookup("usr/bin/tool-alias").unwrap().unwrap()));
    assert_eq!(
        tree.lookup("dev/zero").unwrap().unwrap().device(),
        Some((1, 5))
    );
    let top = v2.layers().last().unwrap();
    let whiteouts: Vec<String> = changes(top).whiteouts().map(|w| w.to_string()).collect();
    for gone in ["etc/issue", "var/old", "var/cache/app/a", "var/cache/app/b"] {
        assert!(
            whiteouts.iter().any(|w| w == gone),
            "{gone} in {whiteouts:?}"
        );
    }
    // umoci's dir->file change: the file `swap` and a whiteout `swap/.wh.child` below it
    // (a no-op, R5), as PEERS.md describes.
    assert!(
        top.tar()
            .unwrap()
            .to_bytes()
            .unwrap()
            .windows(14)
            .any(|w| w == b"swap/.wh.child"),
        "umoci wrote no whiteout below the new file: the fixture is not what it claims"
    );
    let tree = v2.tree().unwrap();
    assert_eq!(tree.read("swap").unwrap(), "now a file\n");
    assert_eq!(tree.read("f2dir/inside").unwrap(), "now a directory\n");
    assert!(tree.lookup("var/cache/app/a").unwrap().is_none());
}

/// Inserts `source` (or a whiteout) into `layout:from` as a new tag `to`.
fn insert(layout: &Path, from: &str, to: &str, args: &[&OsStr]) {
    cmd("umoci")
        .arg("insert")
        .arg("--image")
        .arg(format!("{}:{from}", layout.display()))
        .args(["--tag", to])
        .args(args)
        .run();
}

#[test]
fn umoci_insert_layers_truncated_opaque_and_whiteout_flatten_like_umoci_unpack() {
    let tmp = TempDir::new("umoci-insert");
    let layout = umoci_layout(&tmp, "base");
    let bundle = tmp.join("bundle");
    let root = bundle.join("rootfs");
    write(&root.join("etc/motd"), "hello\n");
    write(&root.join("etc/issue"), "Umoci\n");
    write(&root.join("var/cache/old-1"), "old\n");
    write(&root.join("var/cache/keep/old-2"), "old\n");
    write(&root.join("opt/app/lib/x"), "x\n");
    repack(&layout, "base", &bundle);

    // What to insert: a file, and directories with hardlinks, a long name, a symlink,
    // non-UTF-8 names and an xattr.
    let src = tmp.join("src");
    write(&src.join("file"), "inserted file\n");
    let app = src.join("app");
    write(&app.join("bin/run"), "#!/bin/sh\necho run\n");
    chmod(&app.join("bin/run"), 0o755);
    std::fs::hard_link(app.join("bin/run"), app.join("bin/run-again")).unwrap();
    write(&app.join(long_name('q')), "long\n");
    symlink("bin/run", app.join("run")).unwrap();
    write(&app.join(OsStr::from_bytes(b"na\xefve")), "latin-1\n");
    setfattr(&app.join("bin/run"), "user.origin", "umoci insert");
    let cache = src.join("cache");
    write(&cache.join("fresh"), "fresh\n");

    let arg = |p: &Path| p.as_os_str().to_owned();
    insert(
        &layout,
        "base",
        "file",
        &[&arg(&src.join("file")), OsStr::new("/etc/inserted")],
    );
    insert(
        &layout,
        "file",
        "dir",
        &[&arg(&app), OsStr::new("/opt/app")],
    );
    insert(
        &layout,
        "dir",
        "opaque",
        &[
            OsStr::new("--opaque"),
            &arg(&cache),
            OsStr::new("/var/cache"),
        ],
    );
    insert(
        &layout,
        "opaque",
        "whiteout",
        &[OsStr::new("--whiteout"), OsStr::new("/etc/motd")],
    );

    let mut last = None;
    for tag in ["base", "file", "dir", "opaque", "whiteout"] {
        last = Some(check_against_umoci(&layout, tag, &tmp));
    }
    let image = last.unwrap();
    assert_eq!(image.layers().count(), 5);
    // umoci 0.4.7 `insert` tars stop right after the last entry's data: no end-of-archive
    // blocks, and not even the padding of the last block (a 4-byte file ends the tar 4
    // bytes into its block). The DiffIds (checked above) cover those bytes as they are.
    let mut unpadded = 0;
    for (i, layer) in image.layers().enumerate().skip(1) {
        let tar = layer.tar().unwrap().to_bytes().unwrap();
        if tar.len() % 512 != 0 {
            unpadded += 1;
        }
        assert!(
            !tar.ends_with(&[0; 1024]),
            "insert layer {i} has end-of-archive blocks after all: the fixture is not what it claims"
        );
        assert_eq!(layer.diff_id().to_string(), sha256(&tar));
    }
    assert!(
        unpadded > 0,
        "no insert layer ends mid-block: the fixture is not what it claims"
    );
    let opaque = image.layers().nth(3).unwrap();
    let dirs: Vec<String> = changes(opaque)
        .opaque_dirs()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(dirs, ["var/cache"]);
    let whiteout = image.layers().nth(4).unwrap();
    let gone: Vec<String> = changes(whiteout)
        .whiteouts()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(gone, ["etc/motd"]);
    let tree = image.tree().unwrap();
    assert!(tree.lookup("var/cache/old-1").unwrap().is_none());
    assert!(tree.lookup("var/cache/keep").unwrap().is_none());
    assert_eq!(tree.read("var/cache/fresh").unwrap(), "fresh\n");
    assert!(tree.lookup("etc/motd").unwrap().is_none());
    assert!(tree
        .lookup("opt/app/bin/run")
        .unwrap()
        .unwrap()
        .same_file(&tree.lookup("opt/app/bin/run-again").unwrap().unwrap()));
}

#[test]
fn gnu_tar_layer_added_with_umoci_raw_add_layer_flattens_like_umoci_unpack() {
    let tmp = TempDir::new("umoci-gnu");
    let layout = umoci_layout(&tmp, "base");
    let bundle = tmp.join("bundle");
    let root = bundle.join("rootfs");
    write(&root.join("etc/motd"), "hello\n");
    write(&root.join("var/cache/old"), "old\n");
    repack(&layout, "base", &bundle);

    // A layer made by GNU tar: `././@LongLink` records for a long name, a long symlink
    // target and a long hardlink target, `./` prefixes, whiteouts written as ordinary
    // 0644 files with real mtimes, an opaque marker after its directory, numeric owners.
    let g = tmp.join("gnu");
    let long = format!("deep/{}", long_name('g'));
    write(&g.join(&long), "long, from GNU tar\n");
    std::fs::hard_link(g.join(&long), g.join(format!("deep/{}", long_name('h')))).unwrap();
    symlink(format!("/{long}"), g.join("to-long")).unwrap();
    write(&g.join("etc/.wh.motd"), "");
    write(&g.join("var/cache/.wh..wh..opq"), "");
    write(&g.join("var/cache/new"), "new\n");
    write(&g.join(OsStr::from_bytes(b"bin\xa0ry")), "raw bytes\n");
    std::os::unix::fs::chown(g.join("var/cache/new"), Some(123), Some(456)).unwrap();
    let tar_path = tmp.join("gnu.tar");
    cmd("tar")
        .args(["--format=gnu", "--sort=name", "--numeric-owner", "-C"])
        .arg(&g)
        .arg("-cf")
        .arg(&tar_path)
        .arg(".")
        .run();
    let tar = std::fs::read(&tar_path).unwrap();
    assert!(
        tar.windows(13).any(|w| w == b"././@LongLink"),
        "GNU tar wrote no long-name records: the fixture is not what it claims"
    );
    cmd("umoci")
        .args(["raw", "add-layer", "--image"])
        .arg(format!("{}:base", layout.display()))
        .args(["--tag", "gnu"])
        .arg(&tar_path)
        .run();

    let image = check_against_umoci(&layout, "gnu", &tmp);
    let top = image.layers().last().unwrap();
    assert_eq!(
        top.diff_id().to_string(),
        sha256(&tar),
        "the DiffId is GNU tar's bytes"
    );
    assert_eq!(changes(top).opaque_dirs().count(), 1);
    assert_eq!(changes(top).whiteouts().count(), 1);
    let tree = image.tree().unwrap();
    assert!(tree.lookup("etc/motd").unwrap().is_none());
    assert!(tree.lookup("var/cache/old").unwrap().is_none());
    assert_eq!(tree.resolve("to-long").unwrap().0.to_string(), long);
}

/// An image built in memory with everything a layer can say: long and non-UTF-8 names,
/// xattrs, owners, special bits, hardlinks, devices; then whiteouts, an opaque directory,
/// type changes; then a container commit with opaque whiteouts.
fn built_in_memory() -> Image {
    let base = Layer::builder()
        .entry(
            "etc/hostname",
            Entry::file("cake\n")
                .owner(1000, 1001)
                .mode(0o640)
                .mtime(1_700_000_000)
                .xattr("user.color", "blue"),
        )
        .entry("etc/motd", Entry::file("hello\n").mtime(1_700_000_000))
        .file("etc/issue", "Cake\n")
        .entry(
            "usr/bin/tool",
            Entry::file(vec![7u8; 3000])
                .mode(0o4755)
                .mtime(1_600_000_000),
        )
        .hard_link("usr/bin/tool", "usr/bin/tool-alias")
        .symlink("usr/bin", "bin")
        .symlink("/no/where", "etc/dangling")
        .entry(
            format!("long/{}", long_name('p')),
            Entry::file("pax path\n"),
        )
        .symlink(
            format!("/long/{}", long_name('p')),
            format!("long/{}", long_name('t')),
        )
        .file(b"odd/caf\xe9".as_slice(), "latin-1\n")
        .file(b"odd/\xff/inside".as_slice(), "in a non-UTF-8 directory\n")
        .char_device("dev/null", 1, 3)
        .block_device("dev/loop0", 7, 0)
        .fifo("run/pipe")
        .entry("tmp", Entry::dir().mode(0o1777))
        .entry("srv", Entry::dir().mode(0o750).xattr("user.dir", "yes"))
        .file("srv/data", "served\n")
        .file("var/cache/a", "a\n")
        .file("var/cache/b", "b\n")
        .file("var/old/one", "1\n")
        .file("swap/child", "dir to file\n")
        .build()
        .unwrap();
    let patch = Layer::builder()
        .whiteout("etc/issue")
        .whiteout("var/old")
        .opaque("var/cache")
        .file("var/cache/c", "c\n")
        .file("swap", "now a file\n")
        .entry(
            "etc/motd",
            Entry::file("changed\n").mode(0o600).mtime(1_700_000_100),
        )
        .build()
        .unwrap();
    let image = Image::builder()
        .layer(base)
        .layer(patch)
        .commit(layercake::Commit::new().created(1_700_000_000))
        .build()
        .unwrap();
    let mut c = Container::new(&image).unwrap();
    c.set_clock(1_700_000_200);
    c.remove_dir_all("srv").unwrap();
    c.create_dir("srv").unwrap();
    c.write("srv/new", "recreated\n").unwrap();
    c.write("usr/bin/tool", "rewritten through one name\n")
        .unwrap();
    c.hard_link("etc/hostname", "etc/hostname.bak").unwrap();
    c.set_xattr("etc/hostname", "user.color", "red").unwrap();
    c.set_owner("etc/motd", 5, 6).unwrap();
    c.commit(
        &CommitOptions::new()
            .commit(layercake::Commit::new().created(1_700_000_300))
            .whiteouts(WhiteoutStyle::Opaque),
    )
    .unwrap()
}

#[test]
fn oci_layouts_written_by_layercake_unpack_with_umoci_to_our_tree() {
    let tmp = TempDir::new("umoci-ours");
    let image = built_in_memory();
    let ours = tree_listing(&image.tree().unwrap());
    assert!(
        changes(image.layers().last().unwrap())
            .opaque_dirs()
            .count()
            > 0,
        "the commit should record srv as an opaque directory"
    );
    // Named both ways: a ref name as is (what umoci itself writes), and a Docker reference,
    // whose tag is the ref name (Docker 25's convention).
    for compression in [Compression::Gzip, Compression::None] {
        for (convention, tag) in [("ref-name", "ours"), ("docker25", "v1")] {
            let layout = tmp.join(format!("layout-{compression}-{convention}"));
            let writer = Writer::new(Format::OciLayout).compression(compression);
            let writer = match convention {
                "ref-name" => writer.image_ref(&image, tag),
                _ => writer.image(&image, ["lc/ours:v1"]),
            };
            writer.write_dir(&layout).unwrap();
            let what = format!("our {compression} layout named by {convention}");
            let theirs = umoci_unpack(
                &layout,
                tag,
                &tmp,
                &format!("unpack-{compression}-{convention}"),
            );
            assert_same_listing(&ours, &theirs, &format!("umoci unpack of {what}"));
            // umoci lists the tag we wrote, and sees our ids.
            let tags = cmd("umoci")
                .arg("ls")
                .arg("--layout")
                .arg(&layout)
                .run_text();
            assert_eq!(tags.trim(), tag, "{what}");
            let written = layout_image(&layout, tag);
            assert_ids(&image, &written.image_id(), &written.diff_ids, &what);
        }
    }
}

#[cfg(feature = "cli")]
mod cli {
    //! The `layercake` binary against umoci: `export`, `ls`, `cat`, `squash`, and a
    //! failing command.

    use super::*;
    use crate::common::dir_listing;
    use std::collections::BTreeSet;
    use std::process::Command;

    /// Bytes as layercake shows names: UTF-8 as it is, other bytes as `\xNN`.
    fn escaped(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }

    fn layercake() -> Command {
        Command::new(env!("CARGO_BIN_EXE_layercake"))
    }

    #[track_caller]
    fn ok(command: &mut Command) -> Vec<u8> {
        let out = command.output().expect("run layercake");
        assert!(
            out.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn cli_export_ls_cat_and_squash_agree_with_umoci_unpack() {
        let tmp = TempDir::new("umoci-cli");
        let layout = umoci_layout(&tmp, "v1");
        let bundle = tmp.join("bundle");
        populate_base(&bundle.join("rootfs"));
        repack(&layout, "v1", &bundle);
        change_base(&bundle.join("rootfs"));
        repack(&layout, "v2", &bundle);
        let image_arg = format!("oci:{}:v2", layout.display());
        let unpacked = umoci_unpack(&layout, "v2", &tmp, "unpack-v2");

        // export: the tar, extracted by GNU tar as root, is the tree umoci unpacks.
        let rootfs_tar = tmp.join("rootfs.tar");
        ok(layercake()
            .arg("export")
            .arg(&image_arg)
            .arg("-o")
            .arg(&rootfs_tar));
        let extracted = tmp.join("extracted");
        std::fs::create_dir(&extracted).unwrap();
        cmd("tar")
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
            .arg(&rootfs_tar)
            .arg("-C")
            .arg(&extracted)
            .run();
        assert_same_listing(
            &dir_listing(&extracted),
            &unpacked,
            "layercake export (GNU tar -x) vs umoci unpack",
        );

        // ls -R: the same paths (non-UTF-8 bytes shown as `\xNN`); cat: the same bytes.
        let listed = String::from_utf8(ok(layercake().arg("ls").arg("-R").arg(&image_arg)))
            .expect("ls prints UTF-8");
        let ls_paths: BTreeSet<String> = listed.lines().map(str::to_owned).collect();
        let umoci_paths: BTreeSet<String> = unpacked
            .keys()
            .filter(|k| !k.is_empty())
            .map(|k| format!("/{}", escaped(k)))
            .collect();
        assert_eq!(ls_paths, umoci_paths, "layercake ls -R vs umoci unpack");
        let motd = ok(layercake().arg("cat").arg(&image_arg).arg("/etc/motd"));
        assert_eq!(
            motd,
            std::fs::read(tmp.join("unpack-v2/rootfs/etc/motd")).unwrap()
        );
        // cat follows symlinks inside the image: /etc/absolute -> /usr/bin/tool.
        let tool = ok(layercake().arg("cat").arg(&image_arg).arg("/etc/absolute"));
        assert_eq!(
            tool,
            std::fs::read(tmp.join("unpack-v2/rootfs/usr/bin/tool")).unwrap()
        );

        // squash: one layer that umoci unpacks to the same tree.
        let squashed = tmp.join("squashed");
        let out = ok(layercake()
            .arg("squash")
            .arg(&image_arg)
            .arg("-o")
            .arg(format!("oci:{}:flat", squashed.display())));
        let id = String::from_utf8(out).unwrap();
        let flat = layout_image(&squashed, "flat");
        assert_eq!(id.trim(), flat.image_id(), "squash prints the new ImageId");
        assert_eq!(flat.diff_ids.len(), 1);
        let flat_unpacked = umoci_unpack(&squashed, "flat", &tmp, "unpack-flat");
        assert_same_listing(
            &flat_unpacked,
            &unpacked,
            "umoci unpack of the squashed image vs of the original",
        );
    }

    #[test]
    fn cli_failure_exits_non_zero_with_one_line_on_stderr() {
        let tmp = TempDir::new("umoci-cli-fail");
        let layout = umoci_layout(&tmp, "v1");
        let bundle = tmp.join("bundle");
        write(&bundle.join("rootfs/etc/motd"), "hello\n");
        repack(&layout, "v1", &bundle);
        let cases: Vec<Vec<String>> = vec![
            vec![
                "cat".into(),
                format!("oci:{}:v1", layout.display()),
                "/no/such/file".into(),
            ],
            vec![
                "inspect".into(),
                format!("oci:{}:no-such-tag", layout.display()),
            ],
            vec!["ls".into(), tmp.arg("missing.tar")],
            vec![
                "export".into(),
                format!("oci:{}:v1", layout.display()),
                "-o".into(),
                tmp.arg("no/such/dir/out.tar"),
            ],
        ];
        for args in cases {
            let out = layercake().args(&args).output().expect("run layercake");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "layercake {args:?} succeeded");
            assert_eq!(out.status.code(), Some(1), "layercake {args:?}: {stderr}");
            assert_eq!(
                stderr.lines().count(),
                1,
                "layercake {args:?}: one line on stderr, got {stderr:?}"
            );
            assert!(stderr.starts_with("layercake: "), "{stderr:?}");
            assert!(
                out.stdout.is_empty(),
                "layercake {args:?} printed on stdout"
            );
        }
    }
}
