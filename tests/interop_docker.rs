//! Interop with a real Docker engine (docker.io 20.10, a private dockerd on its own unix
//! socket, vfs storage, no networking): a busybox image that layercake builds and commits
//! entirely in memory loads with our ImageIds and RepoTags and runs; what `docker commit`
//! and `docker save` write after real changes in a container loads in layercake with
//! Docker's ids, and our image diff agrees with `docker diff`; our flattened tree agrees
//! with `docker export`; `docker import` and our import give the same DiffId; the CLI's
//! `inspect`, `history`, `diff`, `import` and `squash` agree with Docker.
//!
//! One test function shares one dockerd (started and stopped by PID here): a missing tool
//! or a daemon that will not start fails the test.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{assert_same_listing, cmd, sha256, tool, tree_listing, Dockerd, Listing, TempDir};
use layercake::archive::{self, Archive, Format, ImportOptions, Writer};
use layercake::config::{ContainerConfig, History};
use layercake::{CommitOptions, Container, Entry, Image, Layer};

const HELLO: &str = "hello from a layercake container, committed in memory\n";

/// The busybox applets the tests call, as symlinks to `/bin/busybox`.
const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "rm", "mkdir", "chmod", "ln", "stat", "sync",
];

/// A base image built in memory: the host's static busybox and its applet symlinks, a few
/// files (a hardlink, a long name, special bits), and `/bin/sh` as the command.
///
/// Its directories are written out, as in any real root filesystem tar: Docker 20.10
/// creates a parent that a layer leaves implied with mode 0600 (umoci, GNU tar and
/// layercake's R6 use 0755), so a layer that relies on implied parents flattens
/// differently in Docker.
fn busybox_base() -> Image {
    let busybox = std::fs::read(tool("/bin/busybox")).expect("read /bin/busybox");
    let mut layer = Layer::builder();
    for dir in ["bin", "etc", "srv", "srv/old", "usr", "usr/share", "var"] {
        layer = layer.entry(dir, Entry::dir().mtime(1_700_000_000));
    }
    let mut layer = layer
        .entry(
            "bin/busybox",
            Entry::file(busybox).mode(0o755).mtime(1_700_000_000),
        )
        .entry("etc/motd", Entry::file("base motd\n").mtime(1_700_000_000))
        .entry(
            "etc/issue",
            Entry::file("Cake Linux\n")
                .mode(0o640)
                .owner(42, 43)
                .mtime(1_700_000_000),
        )
        .entry("etc/group", Entry::file("root:x:0:\n").mtime(1_700_000_000))
        .hard_link("etc/issue", "etc/issue.net")
        .entry("srv/old/a", Entry::file("a\n").mtime(1_700_000_000))
        .entry("srv/old/b", Entry::file("b\n").mtime(1_700_000_000))
        .entry(
            format!("usr/share/{}", "n".repeat(150)),
            Entry::file("a long name\n").mtime(1_700_000_000),
        )
        .entry("tmp", Entry::dir().mode(0o1777))
        .dir("var/log");
    for applet in APPLETS {
        layer = layer.symlink("busybox", format!("bin/{applet}"));
    }
    Image::builder()
        .layer_with(
            layer.build().unwrap(),
            History::new("ADD busybox / # built in memory")
                .created(layercake::config::Timestamp::from_unix(1_700_000_000)),
        )
        .cmd(["/bin/sh"])
        .commit(layercake::Commit::new().created(1_700_000_000))
        .build()
        .unwrap()
}

/// The base plus a container commit that writes `/hello.txt` and makes it the command.
fn hello_on(base: &Image) -> Image {
    let mut c = Container::new(base).unwrap();
    c.set_clock(1_700_000_100);
    c.write("hello.txt", HELLO).unwrap();
    let mut config: ContainerConfig = base.config().container_config().clone();
    config.cmd = Some(vec!["/bin/cat".into(), "/hello.txt".into()]);
    c.commit(
        &CommitOptions::new()
            .commit(
                layercake::Commit::new()
                    .author("layercake")
                    .message("say hello"),
            )
            .created_by("layercake commit")
            .commit(
                layercake::Commit::new()
                    .created(1_700_000_200)
                    .config(config),
            ),
    )
    .unwrap()
}

fn ids(image: &Image) -> Vec<String> {
    image.diff_ids().iter().map(|d| d.to_string()).collect()
}

/// `docker image inspect` of one image, as JSON.
fn inspect(docker: &Dockerd, reference: &str) -> serde_json::Value {
    let out = docker.docker().args(["image", "inspect", reference]).run();
    let mut all: Vec<serde_json::Value> = serde_json::from_slice(&out).expect("inspect JSON");
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn layers_of(inspect: &serde_json::Value) -> Vec<String> {
    inspect["RootFS"]["Layers"]
        .as_array()
        .expect("RootFS.Layers")
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that our `inspect` (library or CLI, as JSON) says what `docker image inspect`
/// says, field by field.
#[track_caller]
fn assert_inspect_agrees(ours: &serde_json::Value, docker: &serde_json::Value, what: &str) {
    for key in [
        "Id",
        "Comment",
        "Created",
        "DockerVersion",
        "Author",
        "Architecture",
        "Os",
        "RootFS",
    ] {
        assert_eq!(ours[key], docker[key], "{what}: {key}");
    }
    for key in ["Cmd", "Env", "Entrypoint", "WorkingDir", "User"] {
        let (a, b) = (&ours["Config"][key], &docker["Config"][key]);
        let empty = |v: &serde_json::Value| {
            v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(|a| a.is_empty())
        };
        if !(empty(a) && empty(b)) {
            assert_eq!(a, b, "{what}: Config.{key}");
        }
    }
}

/// The raw mode fields of a tar's headers, read by hand (octal, bytes 100..108).
fn raw_modes(tar: &[u8]) -> Vec<u32> {
    let octal = |field: &[u8]| {
        let text = String::from_utf8_lossy(field);
        let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
        u64::from_str_radix(text, 8).unwrap_or(0)
    };
    let mut modes = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let header = &tar[at..at + 512];
        modes.push(octal(&header[100..108]) as u32);
        let size = octal(&header[124..136]) as usize;
        at += 512 + size.div_ceil(512) * 512;
    }
    modes
}

fn write_archive(path: &Path, images: &[(&Image, &[String])]) {
    let mut writer = Writer::new(Format::DockerArchive);
    for (image, names) in images {
        writer = writer.image(image, names.iter());
    }
    writer.write(std::fs::File::create(path).unwrap()).unwrap();
}

/// A listing with Docker's runtime paths (mount points and the files it bind-mounts, from
/// the container's init layer) left out.
fn without_runtime_paths(listing: &Listing) -> Listing {
    let runtime = [
        ".dockerenv",
        "dev",
        "proc",
        "sys",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    listing
        .iter()
        .filter(|(path, _)| {
            !runtime.iter().any(|r| {
                let r = r.as_bytes();
                path.as_slice() == r || (path.starts_with(r) && path.get(r.len()) == Some(&b'/'))
            })
        })
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect()
}

#[test]
fn docker_engine_loads_runs_commits_and_saves_what_layercake_reads_and_writes() {
    let docker = Dockerd::start();
    let tmp = TempDir::new("docker");

    // 1. Our in-memory images load into Docker with our ImageIds, RepoTags and DiffIds.
    let base = busybox_base();
    let hello = hello_on(&base);
    let base_tags = ["lc/busybox:base".to_string()];
    let hello_tags = ["lc/busybox:hello".to_string(), "lc/hello:1".to_string()];
    let ours = tmp.join("ours.tar");
    write_archive(&ours, &[(&base, &base_tags[..]), (&hello, &hello_tags[..])]);
    let loaded = docker.docker().arg("load").arg("-i").arg(&ours).run_text();
    for tag in base_tags.iter().chain(&hello_tags) {
        assert!(
            loaded.contains(&format!("Loaded image: {tag}")),
            "docker load: {loaded}"
        );
    }
    for (image, tags) in [(&base, &base_tags[..]), (&hello, &hello_tags[..])] {
        let seen = inspect(&docker, &tags[0]);
        assert_eq!(
            seen["Id"],
            image.id().to_string(),
            "docker's id of {}",
            tags[0]
        );
        let mut repo_tags: Vec<String> = serde_json::from_value(seen["RepoTags"].clone()).unwrap();
        repo_tags.sort();
        let mut want = tags.to_vec();
        want.sort();
        assert_eq!(repo_tags, want);
        assert_eq!(layers_of(&seen), ids(image));
        let ours = serde_json::to_value(image.inspect()).unwrap();
        assert_inspect_agrees(&ours, &seen, &tags[0]);
    }

    // 2. It runs: the default command prints the file the in-memory container wrote.
    let out = docker
        .docker()
        .args(["run", "--rm", "--network", "none", "lc/busybox:hello"])
        .run_text();
    assert_eq!(out, HELLO);
    let out = docker
        .docker()
        .args(["run", "--rm", "--network", "none", "lc/busybox:hello"])
        .args([
            "/bin/sh",
            "-c",
            "cat /etc/motd; stat -c '%i %a %u:%g %Y' /etc/issue /etc/issue.net",
        ])
        .run_text();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "base motd");
    assert_eq!(
        lines[1], lines[2],
        "a hardlink in our layer is one inode in Docker"
    );
    // ... with the target's mode, owner and mtime, which our tree gives both names.
    let issue = hello
        .tree()
        .unwrap()
        .lookup("etc/issue.net")
        .unwrap()
        .unwrap();
    let m = issue.metadata();
    assert_eq!(
        lines[2].split_once(' ').unwrap().1,
        format!("{:o} {}:{} {}", m.mode, m.uid, m.gid, m.mtime)
    );

    // `docker history` shows our history rows.
    let rows = docker
        .docker()
        .args([
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        ])
        .arg("lc/busybox:hello")
        .run_text();
    let theirs: Vec<String> = rows.lines().map(str::to_owned).collect();
    let ours_rows: Vec<String> = hello
        .history()
        .iter()
        .map(|r| {
            let id = r.id.map_or("<missing>".to_string(), |id| id.to_string());
            format!("{id}|{}|{}", r.created_by, r.comment)
        })
        .collect();
    assert_eq!(ours_rows, theirs, "docker history");

    // 3. Real changes in a real container, `docker diff`, `docker commit`, `docker save`.
    let script = "set -e
        echo added > /added.txt
        echo more >> /etc/motd
        rm /etc/issue
        rm -r /srv/old
        mkdir -p /var/log/app
        echo log > /var/log/app/x.log
        chmod 600 /etc/group
        ln -s /etc/motd /motd-link
        echo new > /tmp/new";
    docker
        .docker()
        .args([
            "run",
            "--name",
            "work",
            "--network",
            "none",
            "lc/busybox:base",
        ])
        .args(["/bin/sh", "-c", script])
        .run();
    let docker_diff: BTreeSet<String> = docker
        .docker()
        .args(["diff", "work"])
        .run_text()
        .lines()
        .map(str::to_owned)
        .collect();
    let committed_id = docker
        .docker()
        .args([
            "commit",
            "-m",
            "changed in docker",
            "work",
            "lc/committed:1",
        ])
        .run_text()
        .trim()
        .to_owned();
    let committed_inspect = inspect(&docker, "lc/committed:1");
    assert_eq!(committed_inspect["Id"], committed_id);
    let saved = tmp.join("saved.tar");
    docker
        .docker()
        .args(["save", "-o"])
        .arg(&saved)
        .args(["lc/committed:1", "lc/busybox:base"])
        .run();

    // The fixture is what PEERS.md says `docker save` and `docker commit` write: a layer
    // shared by the two images is a `layer.tar` symlink, and the commit layer's mode
    // fields carry file-type bits (`100644`), which we mask.
    let members = cmd("tar").arg("tvf").arg(&saved).run_text();
    assert!(
        members
            .lines()
            .any(|l| l.starts_with('l') && l.contains("/layer.tar -> ")),
        "{members}"
    );
    let archive = Archive::open(&saved).expect("layercake reads docker save");
    let committed = archive.image("lc/committed:1").unwrap();
    assert!(
        archive
            .images()
            .iter()
            .all(|i| i.image().layers().all(|l| !l.is_read())),
        "opening docker save output read a layer"
    );
    assert_eq!(
        committed.id().to_string(),
        committed_id,
        "ImageId = docker's Id"
    );
    assert_eq!(
        ids(&committed),
        layers_of(&committed_inspect),
        "DiffIds = RootFS.Layers"
    );
    let top = committed.layers().last().unwrap();
    let top_modes = raw_modes(&top.tar().unwrap().to_bytes().unwrap());
    assert!(
        top_modes.iter().any(|&m| m > 0o7777),
        "docker commit wrote no file-type bits in a mode field: {top_modes:?}"
    );
    let ours = serde_json::to_value(committed.inspect()).unwrap();
    assert_inspect_agrees(&ours, &committed_inspect, "docker commit");
    let saved_base = archive.image("lc/busybox:base").unwrap();
    assert_eq!(
        saved_base.id(),
        base.id(),
        "docker save keeps our config bytes"
    );
    assert_eq!(
        committed.layers().next().unwrap().tar().unwrap(),
        base.layers().next().unwrap().tar().unwrap(),
        "docker save gives back our layer tar byte for byte"
    );
    // The base layer is one layer of the file, shared by both images, however `docker
    // save` linked it: read for one image, it is read for the other.
    assert!(saved_base.layers().next().unwrap().is_read());
    // ... and read in place: file contents are ranges of the saved file.
    let motd = committed
        .tree()
        .unwrap()
        .lookup("etc/motd")
        .unwrap()
        .unwrap();
    assert!(motd.contents().unwrap().as_bytes().is_none());

    // Our diff of base vs committed is `docker diff` of the container.
    let our_diff: BTreeSet<String> = saved_base
        .diff(&committed)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(our_diff, docker_diff, "Image::diff vs docker diff");
    for expected in [
        "A /added.txt",
        "D /etc/issue",
        "C /etc/motd",
        "D /srv/old",
        "C /etc/group",
    ] {
        assert!(our_diff.contains(expected), "{expected} in {our_diff:?}");
    }

    // `docker export` of the container is our committed tree (less Docker's runtime files).
    let exported = docker.docker().args(["export", "work"]).run();
    let flat = Layer::from_tar(exported).expect("layercake reads docker export");
    let docker_tree = layercake::Tree::new().apply(&flat).unwrap();
    assert_same_listing(
        &without_runtime_paths(&tree_listing(&committed.tree().unwrap())),
        &without_runtime_paths(&tree_listing(&docker_tree)),
        "committed image vs docker export",
    );

    // 4. `docker import` and our import of the same rootfs tar give the same DiffId.
    let rootfs = tmp.join("rootfs.tar");
    let mut file = std::fs::File::create(&rootfs).unwrap();
    archive::export(&hello.tree().unwrap(), &mut file).unwrap();
    drop(file);
    docker
        .docker()
        .arg("import")
        .arg(&rootfs)
        .arg("lc/imported:docker")
        .run();
    let imported =
        archive::import(std::fs::read(&rootfs).unwrap(), &ImportOptions::default()).unwrap();
    let seen = inspect(&docker, "lc/imported:docker");
    assert_eq!(layers_of(&seen), ids(&imported));
    assert_eq!(
        seen["Comment"],
        imported.inspect().comment,
        "import's comment"
    );
    assert_eq!(ids(&imported), [sha256(&std::fs::read(&rootfs).unwrap())]);
    let out = docker
        .docker()
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "lc/imported:docker",
            "/bin/cat",
            "/hello.txt",
        ])
        .run_text();
    assert_eq!(out, HELLO, "the exported rootfs runs in Docker");

    #[cfg(feature = "cli")]
    cli::steps(&docker, &tmp, &saved, &docker_diff, &committed_inspect);

    docker.docker().args(["rm", "work"]).run();
}

#[cfg(feature = "cli")]
mod cli {
    //! The `layercake` binary against the same Docker engine.

    use super::*;
    use std::process::Command;

    fn layercake<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<u8> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_layercake"));
        command.args(args);
        let out = command.output().expect("run layercake");
        assert!(
            out.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub(super) fn steps(
        docker: &Dockerd,
        tmp: &TempDir,
        saved: &Path,
        docker_diff: &BTreeSet<String>,
        committed_inspect: &serde_json::Value,
    ) {
        let committed_ref = format!("docker-archive:{}:lc/committed:1", saved.display());
        let base_ref = format!("docker-archive:{}:lc/busybox:base", saved.display());

        // inspect: Docker's Id, RepoTags and RootFS of `docker save` output.
        let ours: serde_json::Value =
            serde_json::from_slice(&layercake(&["inspect", &committed_ref])).unwrap();
        assert_inspect_agrees(&ours[0], committed_inspect, "layercake inspect");
        assert_eq!(ours[0]["RepoTags"], committed_inspect["RepoTags"]);

        // history: the image ids and commands `docker history` shows.
        let history =
            String::from_utf8(layercake(&["history", "--no-trunc", &committed_ref])).unwrap();
        let id = committed_inspect["Id"].as_str().unwrap();
        let first_row = history.lines().nth(1).expect("a row below the header");
        assert!(first_row.starts_with(id), "{history}");
        let theirs = docker
            .docker()
            .args([
                "history",
                "--no-trunc",
                "--format",
                "{{.CreatedBy}}",
                "lc/committed:1",
            ])
            .run_text();
        for created_by in theirs.lines().filter(|l| !l.is_empty()) {
            assert!(history.contains(created_by), "{created_by:?} in\n{history}");
        }
        assert_eq!(history.lines().count() - 1, theirs.lines().count());

        // diff: `docker diff` of the container, line for line.
        let diff = String::from_utf8(layercake(&["diff", &base_ref, &committed_ref])).unwrap();
        let diff: BTreeSet<String> = diff.lines().map(str::to_owned).collect();
        assert_eq!(&diff, docker_diff);

        // import: the same DiffId as `docker import` of the same gzip tar, and it loads.
        let rootfs = tmp.join("cli-rootfs.tar");
        layercake(&[
            "export".as_ref(),
            committed_ref.as_ref(),
            "-o".as_ref(),
            rootfs.as_os_str(),
        ]);
        cmd("gzip").arg("-k").arg(&rootfs).run();
        let gz = tmp.join("cli-rootfs.tar.gz");
        docker
            .docker()
            .arg("import")
            .arg(&gz)
            .arg("lc/cli-import:docker")
            .run();
        let docker_layers = layers_of(&inspect(docker, "lc/cli-import:docker"));
        let out_tar = tmp.join("cli-imported.tar");
        let printed = layercake(&[
            "import".as_ref(),
            gz.as_os_str(),
            "-o".as_ref(),
            out_tar.as_os_str(),
            "--tag".as_ref(),
            "lc/cli-import:ours".as_ref(),
        ]);
        let id = String::from_utf8(printed).unwrap().trim().to_owned();
        docker.docker().arg("load").arg("-i").arg(&out_tar).run();
        let seen = inspect(docker, "lc/cli-import:ours");
        assert_eq!(seen["Id"], id, "the id layercake import printed");
        assert_eq!(
            layers_of(&seen),
            docker_layers,
            "DiffId of layercake import = of docker import"
        );
        let out = docker
            .docker()
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "lc/cli-import:ours",
                "/bin/cat",
                "/added.txt",
            ])
            .run_text();
        assert_eq!(out, "added\n");

        // squash: one layer, loads, runs, and Docker agrees on its id and DiffId.
        let squashed = tmp.join("squashed.tar");
        let printed = layercake(&[
            "squash".as_ref(),
            committed_ref.as_ref(),
            "-o".as_ref(),
            squashed.as_os_str(),
            "--tag".as_ref(),
            "lc/squashed:1".as_ref(),
        ]);
        let id = String::from_utf8(printed).unwrap().trim().to_owned();
        docker.docker().arg("load").arg("-i").arg(&squashed).run();
        let seen = inspect(docker, "lc/squashed:1");
        assert_eq!(seen["Id"], id);
        let flat = Archive::open(&squashed).unwrap().only_image().unwrap();
        assert_eq!(layers_of(&seen), ids(&flat));
        assert_eq!(flat.layers().count(), 1);
        let out = docker
            .docker()
            .args(["run", "--rm", "--network", "none", "lc/squashed:1"])
            .args([
                "/bin/sh",
                "-c",
                "cat /added.txt /etc/motd; ls /srv; test ! -e /etc/issue",
            ])
            .run_text();
        assert_eq!(out, "added\nbase motd\nmore\n");
    }
}
