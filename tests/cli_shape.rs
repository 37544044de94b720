//! The command line's shape, run as a program on image files in a temporary directory:
//! absolute paths and hardlinks in `ls`, non-UTF-8 path arguments, transports layercake
//! does not support, `-o` everywhere, what `squash` writes, options that cannot apply, and
//! what `unpack` says of setuid bits; the registry commands' arguments (offline), and the
//! edits (`append`, `rebase`, `mutate`) on files and the store.
#![cfg(feature = "cli")]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TempDir;
use layercake::archive::{Archive, Format, Writer};
use layercake::config::History;
use layercake::{Compression, Entry, Image, Layer, Store};

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
    for arg in ["dir:/tmp/x", "containers-storage:x", "ostree:x"] {
        let err = fails(&["inspect", arg]);
        assert!(err.contains("unsupported transport"), "{arg}: {err}");
    }
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let out = dir.join("x");
    let err = fails(&["convert", s(&tar), "-o", &format!("dir:{}", s(&out))]);
    assert!(err.contains("unsupported transport `dir:`"), "{err}");
    let err = fails(&["save", "-o", "dir:/tmp/x", s(&tar)]);
    assert!(err.contains("unsupported transport `dir:`"), "{err}");
    // `load` and `save` read and write files; `docker://` is for pull, push and copy.
    let err = fails(&["load", "-i", "docker://busybox"]);
    assert!(err.contains("unsupported transport"), "{err}");
    let err = fails(&["save", "-o", "docker://localhost:5000/x:1", s(&tar)]);
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

#[test]
fn help_lists_the_registry_commands_and_edits() {
    let help = ok(&["--help"]);
    for command in [
        "pull", "push", "login", "logout", "copy", "append", "rebase", "mutate",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "--help lacks {command}: {help}"
        );
        let own = ok(&[command, "--help"]);
        assert!(own.contains("Example:"), "{command} --help: {own}");
        // Every command may reach a registry (any IMAGE may be docker://).
        for flag in ["--creds", "--authfile", "--tls-verify", "--cert-dir"] {
            assert!(own.contains(flag), "{command} --help lacks {flag}");
        }
    }
    assert!(help.contains("docker://REF"), "{help}");
}

#[test]
fn registry_arguments_are_checked_before_any_registry_is_asked() {
    let dir = TempDir::new("cli-registry-args");
    let root = dir.join("root");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let err = fails(&["--creds", "me", "images"]);
    assert!(err.contains("expected USER:PASS"), "{err}");
    assert!(run(&["--tls-verify=false", "images"]).status.success());
    let err = fails(&["--tls-verify=maybe", "images"]);
    assert!(err.contains("maybe"), "{err}");
    // No terminal, no password: Docker's words, and no request made.
    let err = fails(&["login", "-u", "me", "localhost:5000"]);
    assert!(
        err.contains("Cannot perform an interactive login from a non TTY device"),
        "{err}"
    );
    let err = fails(&["login", "--password-stdin", "localhost:5000"]);
    assert!(err.contains("Must provide --username"), "{err}");
    let err = fails(&["login", "-u", "me", "-p", "x", "--password-stdin"]);
    assert!(err.contains("cannot be used with"), "{err}");
    // `push` takes an image of the store, named as it will be in the registry.
    let err = fails(&["--root", s(&root), "push", "localhost:5000/peers/none:1"]);
    assert!(
        err.contains("An image does not exist locally with the tag: localhost:5000/peers/none"),
        "{err}"
    );
    let err = fails(&["pull", "Not/A/Reference"]);
    assert!(err.contains("invalid reference"), "{err}");
    // docker:// as an OUTPUT takes no --format, and names the image itself.
    let remote = "docker://localhost:5000/peers/app:2";
    let err = fails(&["convert", s(&tar), "-o", remote, "--format", "oci"]);
    assert!(err.contains("--format oci cannot apply"), "{err}");
    let err = fails(&["convert", s(&tar), "-o", remote, "--tag", "peers/x:1"]);
    assert!(err.contains("--tag cannot apply"), "{err}");
    // A copy's destination file needs its transport.
    let err = fails(&["copy", s(&tar), s(&dir.join("b.tar"))]);
    assert!(err.contains("needs its transport"), "{err}");
    let err = fails(&["copy", s(&tar), "dir:/tmp/x"]);
    assert!(err.contains("unsupported transport `dir:`"), "{err}");
}

#[test]
fn edit_arguments_are_checked() {
    let dir = TempDir::new("cli-edit-args");
    let tar = file(&dir, "a.tar", Format::DockerArchive, Compression::None);
    let err = fails(&["mutate", s(&tar), "-t", "peers/app:2"]);
    assert!(err.contains("nothing to change"), "{err}");
    let err = fails(&["mutate", s(&tar), "--env", "NOVALUE", "-t", "peers/app:2"]);
    assert!(err.contains("expected KEY=VALUE"), "{err}");
    let err = fails(&["mutate", s(&tar), "--cmd", "[1]", "-t", "peers/app:2"]);
    assert!(err.contains("JSON array of strings"), "{err}");
    let err = fails(&["mutate", s(&tar), "--user", "me"]);
    assert!(err.contains("--tag <NEW>"), "-t is required: {err}");
    let err = fails(&["append", s(&tar), "-t", "peers/app:2"]);
    assert!(err.contains("<TAR>"), "a TAR is required: {err}");
    let err = fails(&["append", s(&tar), s(&tar), "-t", "out.tar"]);
    assert!(err.contains("needs its transport"), "{err}");
    let err = fails(&["rebase", s(&tar), "--old-base", s(&tar), "-t", "x:1"]);
    assert!(err.contains("--new-base"), "{err}");
}

/// Writes a layer's tar (as its blob: plain, or compressed) to `path`.
fn layer_file(path: &Path, layer: &Layer) {
    std::fs::write(path, layer.blob().contents().to_bytes().unwrap()).unwrap();
}

#[test]
fn mutate_on_a_file_writes_the_config_and_a_history_row() {
    let dir = TempDir::new("cli-mutate");
    let tar = file(&dir, "a.tar", Format::OciArchive, Compression::Gzip);
    let out = dir.join("mutated");
    let printed = ok(&[
        "mutate",
        s(&tar),
        "--entrypoint",
        r#"["/app/run", "--serve"]"#,
        "--env",
        "PATH=/app:/bin",
        "-e",
        "LOG=debug",
        "--label",
        "org.example.tier=web",
        "--workdir",
        "/app",
        "--user",
        "nobody",
        "-t",
        &format!("oci:{}:m", s(&out)),
    ]);
    let mutated = Archive::open(&out).unwrap().image("m").unwrap();
    assert_eq!(printed.trim(), mutated.id().to_string());
    let config = mutated.config().container_config();
    assert_eq!(
        config.entrypoint.as_deref(),
        Some(&["/app/run".to_owned(), "--serve".to_owned()][..])
    );
    assert_eq!(config.cmd, None);
    assert_eq!(config.env, ["PATH=/app:/bin", "LOG=debug"]);
    assert_eq!(config.labels["org.example.tier"], "web");
    assert_eq!(config.working_dir.as_deref(), Some("/app"));
    assert_eq!(config.user.as_deref(), Some("nobody"));
    // The same layers; one more history row, empty, saying the change, made now.
    let base = image();
    assert_eq!(mutated.diff_ids(), base.diff_ids());
    let rows = mutated.history();
    assert_eq!(rows.len(), base.history().len() + 1);
    assert!(rows[0].empty_layer);
    assert_eq!(
        rows[0].created_by,
        r#"ENTRYPOINT ["/app/run","--serve"]; ENV PATH=/app:/bin LOG=debug; LABEL org.example.tier=web; WORKDIR /app; USER nobody"#
    );
    assert!(rows[0].created.starts_with("20"), "{:?}", rows[0]);
    assert!(mutated.inspect().created.starts_with("20"));
    // Words split at spaces; an inherited command replaced.
    let out = dir.join("cmd.tar");
    ok(&[
        "mutate",
        s(&tar),
        "--cmd",
        "/app/run --once",
        "-t",
        &format!("docker-archive:{}:peers/app:3", s(&out)),
    ]);
    let commanded = Archive::open(&out).unwrap().image("peers/app:3").unwrap();
    let cmd = commanded.config().container_config().cmd.clone().unwrap();
    assert_eq!(cmd, ["/app/run", "--once"]);
}

#[test]
fn append_on_a_file_adds_layers_with_history_rows() {
    let dir = TempDir::new("cli-append");
    let tar = file(&dir, "a.tar", Format::OciArchive, Compression::None);
    let plain = Layer::builder()
        .file("app/extra", "extra\n")
        .build()
        .unwrap();
    let zstd = Layer::builder()
        .whiteout("app/more")
        .file("etc/motd", "appended\n")
        .build()
        .unwrap()
        .compress(Compression::Zstd, 3)
        .unwrap();
    let (plain_tar, zstd_tar) = (dir.join("extra.tar"), dir.join("motd.tar.zst"));
    layer_file(&plain_tar, &plain);
    layer_file(&zstd_tar, &zstd);
    let out = dir.join("b.tar");
    let printed = ok(&[
        "append",
        &format!("oci-archive:{}", s(&tar)),
        s(&plain_tar),
        s(&zstd_tar),
        "-t",
        &format!("docker-archive:{}:peers/app:2", s(&out)),
    ]);
    let appended = Archive::open(&out).unwrap().image("peers/app:2").unwrap();
    assert_eq!(printed.trim(), appended.id().to_string());
    let mut want = image().diff_ids();
    want.extend([plain.diff_id(), zstd.diff_id()]);
    assert_eq!(appended.diff_ids(), want);
    let rows = appended.history();
    assert_eq!(rows.len(), image().history().len() + 2);
    for row in &rows[..2] {
        assert_eq!(row.created_by, "layercake append");
        assert!(!row.empty_layer);
        assert!(row.created.starts_with("20"), "{row:?}");
    }
    let tree = appended.tree().unwrap();
    assert_eq!(tree.read("app/extra").unwrap(), "extra\n");
    assert_eq!(tree.read("etc/motd").unwrap(), "appended\n");
    assert!(tree.lookup("app/more").unwrap().is_none(), "whited out");
    // The config is the base's.
    assert_eq!(
        appended.config().container_config(),
        image().config().container_config()
    );
}

#[test]
fn rebase_in_the_store_swaps_the_base_and_its_history() {
    let dir = TempDir::new("cli-rebase");
    let root = dir.join("root");
    let base = |version: &str| {
        Image::builder()
            .layer_with(
                Layer::builder()
                    .file("etc/os-release", format!("VERSION={version}\n"))
                    .build()
                    .unwrap(),
                History::new(format!("ADD rootfs-{version}.tar /")),
            )
            .empty_step(History::new("CMD [\"sh\"]"))
            .cmd(["sh"])
            .build()
            .unwrap()
    };
    let (v1, v2) = (base("1"), base("2"));
    let app = Image::builder()
        .base(&v1)
        .layer_with(
            Layer::builder()
                .file("app/run", "#!/bin/sh\n")
                .build()
                .unwrap(),
            History::new("COPY run /app/"),
        )
        .cmd(["/app/run"])
        .build()
        .unwrap();
    for (name, image, tag) in [
        ("v1", &v1, "peers/base:1"),
        ("v2", &v2, "peers/base:2"),
        ("app", &app, "peers/app:1"),
    ] {
        let path = dir.join(format!("{name}.tar"));
        Writer::new(Format::DockerArchive)
            .image(image, [tag])
            .write(std::fs::File::create(&path).unwrap())
            .unwrap();
        ok(&["--root", s(&root), "load", "-i", s(&path)]);
    }
    let printed = ok(&[
        "--root",
        s(&root),
        "rebase",
        "peers/app:1",
        "--old-base",
        "peers/base:1",
        "--new-base",
        "peers/base:2",
        "-t",
        "peers/app:2",
    ]);
    let store = Store::open(&root).unwrap();
    let rebased = store.image("peers/app:2").unwrap();
    assert_eq!(printed.trim(), rebased.id().to_string());
    assert_eq!(rebased.diff_ids(), [v2.diff_ids()[0], app.diff_ids()[1]]);
    let rows: Vec<String> = rebased
        .history()
        .into_iter()
        .map(|r| r.created_by)
        .collect();
    assert_eq!(
        rows,
        ["COPY run /app/", "CMD [\"sh\"]", "ADD rootfs-2.tar /"]
    );
    assert_eq!(
        rebased.config().container_config().cmd,
        Some(vec!["/app/run".to_owned()])
    );
    assert_eq!(
        rebased.tree().unwrap().read("etc/os-release").unwrap(),
        "VERSION=2\n"
    );
    // The library gives the same image.
    assert_eq!(rebased, app.rebase(&v1, &v2).unwrap());
    // An image not built on the old base is refused, and nothing is tagged.
    let err = fails(&[
        "--root",
        s(&root),
        "rebase",
        "peers/app:1",
        "--old-base",
        "peers/base:2",
        "--new-base",
        "peers/base:1",
        "-t",
        "peers/app:3",
    ]);
    assert!(
        err.contains("peers/app:1 is not built on peers/base:2"),
        "{err}"
    );
    assert!(Store::open(&root).unwrap().image("peers/app:3").is_err());
    // The result may go to a file too, and an edit may read one.
    let out = dir.join("rebased.tar");
    ok(&[
        "--root",
        s(&root),
        "mutate",
        "peers/app:2",
        "--user",
        "nobody",
        "-t",
        &format!("oci-archive:{}:2", s(&out)),
    ]);
    let mutated = Archive::open(&out).unwrap().image("2").unwrap();
    assert_eq!(mutated.diff_ids(), rebased.diff_ids());
}

#[test]
fn a_closed_port_is_an_error_naming_the_registry() {
    let dir = TempDir::new("cli-closed-port");
    let root = dir.join("root");
    // Nothing listens on port 1 of the loopback.
    for args in [
        vec!["inspect", "docker://127.0.0.1:1/peers/app:1"],
        vec!["--root", s(&root), "pull", "127.0.0.1:1/peers/app:1"],
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("127.0.0.1:1"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
