//! The command line's shape, run as a program on image files in a temporary directory:
//! absolute paths and hardlinks in `ls`, non-UTF-8 path arguments, transports layercake
//! does not support, `-o` everywhere, what `squash` writes, options that cannot apply, and
//! what `unpack` says of setuid bits.
#![cfg(feature = "cli")]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TempDir;
use layercake::archive::{Archive, Format, Writer};
use layercake::{Compression, Entry, Image, Layer};

fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_layercake"))
        .args(args)
        .env("LAYERCAKE_ROOT", "/nonexistent/layercake-test-root")
        .output()
        .expect("run layercake")
}

fn ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "layercake failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "layercake succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn image() -> Image {
    let base = Layer::builder()
        .entry("etc", Entry::dir())
        .file("etc/issue", "Cake\n")
        .hard_link("etc/issue", "etc/issue.net")
        .entry("usr/bin/su", Entry::file("ELF").mode(0o4755))
        .file(&b"data/latin1-caf\xe9.txt"[..], "caf\u{e9}\n")
        .build()
        .unwrap();
    let app = Layer::builder()
        .file("app/run", "#!/bin/sh\n")
        .build()
        .unwrap();
    let more = Layer::builder().file("app/more", "more\n").build().unwrap();
    Image::builder()
        .layer(base)
        .layer(app)
        .layer(more)
        .build()
        .unwrap()
}

fn file(dir: &TempDir, name: &str, format: Format, compression: Compression) -> PathBuf {
    let path = dir.join(name);
    let mut writer = Writer::new(format).compression(compression);
    writer = writer.image(&image(), ["peers/app:1"]);
    match format {
        Format::OciLayout => writer.write_dir(&path).unwrap(),
        _ => writer.write(std::fs::File::create(&path).unwrap()).unwrap(),
    }
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn ls_prints_absolute_paths_and_marks_hardlinks() {
    let dir = TempDir::new("cli-ls");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    assert_eq!(ok(&["ls", s(&tar), "/etc"]), "/etc/issue\n/etc/issue.net\n");
    assert_eq!(ok(&["ls", s(&tar), "etc/"]), "/etc/issue\n/etc/issue.net\n");
    let root = ok(&["ls", s(&tar)]);
    assert!(root.lines().all(|l| l.starts_with('/')), "{root}");
    assert!(root.contains("/app\n"), "{root}");
    let recursive = ok(&["ls", s(&tar), "-R", "/app"]);
    assert_eq!(recursive, "/app/more\n/app/run\n");
    let long = ok(&["ls", "-l", s(&tar), "/etc"]);
    let lines: Vec<&str> = long.lines().collect();
    assert!(lines[0].ends_with("  /etc/issue"), "{long}");
    assert!(
        lines[1].ends_with("/etc/issue.net link to /etc/issue"),
        "{long}"
    );
}

#[test]
fn cat_takes_non_utf8_paths_and_echoes_the_path_as_typed() {
    let dir = TempDir::new("cli-cat");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let path = OsStr::from_bytes(b"/data/latin1-caf\xe9.txt");
    let out = run(&[OsStr::new("cat"), tar.as_os_str(), path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, "caf\u{e9}\n".as_bytes());
    let err = fails(&["cat", s(&tar), "./etc//nothing"]);
    assert!(err.contains("./etc//nothing: "), "{err}");
    let err = fails(&["ls", s(&tar), "/nowhere/x"]);
    assert!(err.contains("/nowhere/x: "), "{err}");
}

#[test]
fn unsupported_transport_says_so() {
    let dir = TempDir::new("cli-transport");
    for arg in [
        "dir:/tmp/x",
        "docker://busybox:latest",
        "containers-storage:x",
    ] {
        let err = fails(&["inspect", arg]);
        assert!(err.contains("unsupported transport"), "{arg}: {err}");
    }
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let out = dir.join("x");
    let err = fails(&["convert", s(&tar), "-o", &format!("dir:{}", s(&out))]);
    assert!(err.contains("unsupported transport `dir:`"), "{err}");
    let err = fails(&["save", "-o", "dir:/tmp/x", s(&tar)]);
    assert!(err.contains("unsupported transport `dir:`"), "{err}");
    let err = fails(&["load", "-i", "docker://busybox"]);
    assert!(err.contains("unsupported transport"), "{err}");
    // An existing path with a colon is a path.
    let colon = dir.join("dir:a.tar");
    std::fs::copy(&tar, &colon).unwrap();
    ok(&["inspect", s(&colon)]);
}

#[test]
fn output_is_dash_o_everywhere() {
    let dir = TempDir::new("cli-output");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let layout = dir.join("layout");
    ok(&["convert", s(&tar), "-o", &format!("oci:{}", s(&layout))]);
    assert!(layout.join("index.json").is_file());
    let converted = dir.join("b.tar");
    ok(&["convert", s(&tar), "--output", s(&converted)]);
    assert!(converted.is_file());
    // The old positional spelling still works, and --help says it is deprecated.
    let old = dir.join("c.tar");
    ok(&["convert", s(&tar), s(&old)]);
    assert!(old.is_file());
    assert!(ok(&["convert", "--help"]).contains("deprecated"));
    let rootfs = dir.join("rootfs");
    ok(&["unpack", s(&tar), "-o", s(&rootfs)]);
    assert!(rootfs.join("app/run").is_file());
    let export = dir.join("export.tar");
    ok(&["export", s(&tar), "-o", s(&export)]);
    let squashed = dir.join("squashed.tar");
    ok(&["squash", s(&tar), "-o", s(&squashed)]);
    let imported = dir.join("imported.tar");
    ok(&["import", s(&export), "-o", s(&imported)]);
    for cmd in ["convert", "unpack", "export", "squash", "import", "save"] {
        let help = ok(&[cmd, "--help"]);
        assert!(help.contains("-o, --output"), "{cmd}: {help}");
    }
}

#[test]
fn squash_keeps_compression_and_writes_a_docker_history_row() {
    let dir = TempDir::new("cli-squash");
    let layout = file(&dir, "layout", Format::OciLayout, Compression::Zstd);
    let out = dir.join("squashed");
    let id = ok(&[
        "squash",
        &format!("oci:{}", s(&layout)),
        "-o",
        &format!("oci:{}:sq", s(&out)),
        "--from",
        "1",
    ]);
    let squashed = Archive::open(&out).unwrap().image("sq").unwrap();
    assert_eq!(squashed.id().to_string(), id.trim());
    assert_eq!(squashed.layers().count(), 2);
    for layer in squashed.layers() {
        assert_eq!(layer.blob().compression(), Compression::Zstd);
    }
    let top = squashed.history().remove(0);
    assert_eq!(top.created_by, "layercake squash: layers 2\u{2013}3 of 3");
    assert!(top.created.starts_with("20"), "{top:?}");
    assert_ne!(top.created, "1970-01-01T00:00:00Z");
    assert_eq!(squashed.tree().unwrap(), image().tree().unwrap());
}

#[test]
fn options_that_cannot_apply_are_errors() {
    let dir = TempDir::new("cli-options");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let named = format!("docker-archive:{}:peers/x:1", s(&dir.join("x.tar")));
    let err = fails(&["convert", s(&tar), "-o", &named, "--tag", "peers/y:1"]);
    assert!(err.contains("--tag cannot apply"), "{err}");
    let err = fails(&["squash", s(&tar), "-o", &named, "--tag", "peers/y:1"]);
    assert!(err.contains("--tag cannot apply"), "{err}");
    let err = fails(&[
        "convert",
        s(&tar),
        "-o",
        s(&dir.join("y.tar")),
        "--level",
        "9",
    ]);
    assert!(err.contains("--level cannot apply"), "{err}");
    let err = fails(&[
        "squash",
        s(&tar),
        "-o",
        s(&dir.join("z.tar")),
        "--from",
        "3",
    ]);
    assert!(err.contains("--from 3"), "{err}");
    assert!(!dir.join("z.tar").exists());
    let err = fails(&["images", "-q", "--digests"]);
    assert!(err.contains("cannot be used with"), "{err}");
    let rootfs = dir.join("rootfs.tar");
    ok(&["export", s(&tar), "-o", s(&rootfs)]);
    let err = fails(&["import", s(&rootfs), "-o", &named, "--tag", "peers/y:1"]);
    assert!(err.contains("--tag cannot apply"), "{err}");
}

#[test]
fn unpack_as_root_says_setuid_bit_cleared() {
    let dir = TempDir::new("cli-unpack");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let rootfs = dir.join("rootfs");
    let out = ok(&["unpack", s(&tar), "-o", s(&rootfs)]);
    assert!(
        out.contains(
            "setuid bit cleared: /usr/bin/su (mode 4755 written as 0755; --keep-setuid keeps it)"
        ),
        "{out}"
    );
    assert!(!out.contains("skipped"), "{out}");
}

#[test]
fn readme_says_what_unpack_keeps_and_drops() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    // Words wrapped across lines count.
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = ok(&["unpack", "--help"]);
    // Every option of `unpack` that changes what is kept is named in the README ...
    for flag in ["--keep-setuid", "--devices", "--no-same-owner"] {
        assert!(help.contains(flag), "unpack --help lacks {flag}");
        assert!(
            readme.contains(flag),
            "README does not say what {flag} keeps"
        );
    }
    // ... with the words the command prints.
    for printed in ["setuid bit cleared", "device node not created"] {
        assert!(readme.contains(printed), "README lacks {printed:?}");
    }
}

#[test]
fn inspect_and_history_with_no_size_read_no_layer() {
    let dir = TempDir::new("no-size");
    let image = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/motd", "a unique line\n")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let path = dir.join("app.tar");
    Writer::new(Format::DockerArchive)
        .image(&image, ["app:1"])
        .write(std::fs::File::create(&path).unwrap())
        .unwrap();
    // One byte of the layer's file changed in place: the layer no longer hashes to its
    // DiffId, so a command that succeeds did not read it.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(14)
        .position(|w| w == b"a unique line\n")
        .unwrap();
    bytes[at] = b'A';
    std::fs::write(&path, bytes).unwrap();
    let json = ok(&["inspect", "--no-size", s(&path)]);
    assert!(json.contains(&image.id().to_string()), "{json}");
    assert!(!json.contains("\"Size\""), "{json}");
    let table = ok(&["history", "--no-size", s(&path)]);
    assert!(table.lines().nth(1).unwrap().contains(" - "), "{table}");
    // Without it, the layer is read, and the change found.
    assert!(fails(&["inspect", s(&path)]).contains("mismatch"));
    assert!(fails(&["history", s(&path)]).contains("mismatch"));
}

#[test]
fn limit_raises_a_limit_and_a_refused_ratio_says_how() {
    let dir = TempDir::new("limit");
    // 200 MiB of zeros in one file, gzip: past 128:1 once output passes 64 MiB.
    let rootfs = dir.join("zeros.tar.gz");
    let layer = Layer::builder()
        .file("zeros", vec![0u8; 200 << 20])
        .build()
        .unwrap()
        .compress(Compression::Gzip, 6)
        .unwrap();
    std::fs::write(&rootfs, layer.blob().contents().to_bytes().unwrap()).unwrap();
    let out = dir.join("image.tar");
    let refused = fails(&["import", s(&rootfs), "-o", s(&out)]);
    assert!(
        refused.contains("decompression ratio") && refused.contains("--limit ratio="),
        "{refused}"
    );
    let id = ok(&["--limit", "ratio=2000", "import", s(&rootfs), "-o", s(&out)]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert!(fails(&["--limit", "bogus=1", "images"]).contains("no such limit"));
}
