//! The command line against a private Docker engine: `layercake inspect` prints what
//! `docker image inspect` prints, and `layercake history` what `docker history` prints, for
//! the same image file (an image built by Docker's classic builder on a base layercake
//! made, saved, and loaded back so that the daemon holds no build-local parent).
//!
//! One dockerd for the test function, started and stopped by PID (see tests/common).
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{tool, Dockerd, TempDir};
use layercake::archive::{Format, Writer};
use layercake::config::History;
use layercake::{Commit, Entry, Image, Layer};

fn layercake<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_layercake"));
    command.args(args).env("TZ", "UTC");
    let out = command.output().expect("run layercake");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// A busybox base: the host's static busybox, applet symlinks, a hardlink, explicit
/// directories (Docker 20.10 gives implied ones mode 0600).
fn base() -> Image {
    let busybox = std::fs::read(tool("/bin/busybox")).expect("read /bin/busybox");
    let mut layer = Layer::builder();
    for dir in ["bin", "etc", "tmp"] {
        layer = layer.entry(dir, Entry::dir().mtime(1_700_000_000));
    }
    let mut layer = layer
        .entry(
            "bin/busybox",
            Entry::file(busybox).mode(0o755).mtime(1_700_000_000),
        )
        .entry("etc/motd", Entry::file("motd\n").mtime(1_700_000_000))
        .hard_link("etc/motd", "etc/motd.link");
    for applet in ["sh", "cat", "echo", "mkdir"] {
        layer = layer.symlink("busybox", format!("bin/{applet}"));
    }
    Image::builder()
        .layer_with(
            layer.build().unwrap(),
            History::new("ADD busybox / # built in memory")
                .created("2023-11-14T22:13:20Z".parse().unwrap()),
        )
        .cmd(["/bin/sh"])
        .env("PATH=/bin")
        .commit(Commit::new().created(1_700_000_000))
        .build()
        .unwrap()
}

/// Docker's output with the daemon's storage fields (`GraphDriver`, `Metadata`) taken out:
/// each is one key of the image object, at eight spaces.
fn without_daemon_fields(docker: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in docker.lines() {
        if line == "        \"GraphDriver\": {" || line == "        \"Metadata\": {" {
            skipping = true;
            continue;
        }
        if skipping {
            if line == "        }," || line == "        }" {
                skipping = false;
            }
            continue;
        }
        out.push(line);
    }
    // `Metadata` was the last key: the one before it loses its comma.
    let mut text = out.join("\n");
    text = text.replace("},\n    }\n]", "}\n    }\n]");
    text + "\n"
}

fn docker_build(docker: &Dockerd, dir: &Path, dockerfile: &str, tag: &str) {
    let context = dir.join(format!("ctx-{}", tag.replace([':', '/'], "-")));
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(context.join("app.txt"), "app <&> data\n").unwrap();
    docker
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(&context)
        .run();
}

#[test]
fn inspect_and_history_print_what_docker_prints() {
    let docker = Dockerd::start();
    let tmp = TempDir::new("cli-docker");

    // A base written by layercake under a fully qualified name, loaded into Docker.
    let base_tar = tmp.join("base.tar");
    Writer::new(Format::DockerArchive)
        .image(&base(), ["docker.io/peers/base:1"])
        .write(std::fs::File::create(&base_tar).unwrap())
        .unwrap();
    docker.docker().arg("load").arg("-i").arg(&base_tar).run();

    // An app built on it by Docker's classic builder: a RUN layer, a COPY, a committed
    // config with labels, ports, volumes, a workdir, an entrypoint and HTML-ish text.
    let dockerfile = "FROM peers/base:1
RUN echo built > /built.txt && mkdir -p /srv
COPY app.txt /srv/app.txt
ENV GREETING=\"a <b> & c\"
LABEL org.example.name=app
EXPOSE 8080/tcp
VOLUME /data
WORKDIR /srv
ENTRYPOINT [\"/bin/sh\", \"-c\"]
CMD [\"cat /srv/app.txt\"]
";
    docker_build(&docker, tmp.path(), dockerfile, "peers/app:1");
    let app_tar = tmp.join("app.tar");
    docker
        .docker()
        .args(["save", "-o"])
        .arg(&app_tar)
        .arg("peers/app:1")
        .run();
    // Loaded back, the image has no parent in the daemon: what an image file says is all.
    docker.docker().args(["rmi", "peers/app:1"]).run();
    docker.docker().arg("load").arg("-i").arg(&app_tar).run();

    for (file, name) in [(&base_tar, "peers/base:1"), (&app_tar, "peers/app:1")] {
        let theirs = docker.docker().args(["image", "inspect", name]).run_text();
        let ours = layercake(&["inspect".as_ref(), file.as_os_str()]);
        assert_eq!(
            ours,
            without_daemon_fields(&theirs),
            "layercake inspect {name} vs docker image inspect (less GraphDriver, Metadata)"
        );
        // The same, parsed: so a failure above is easier to read field by field.
        let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
        let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
        for (key, value) in theirs[0].as_object().unwrap() {
            if key != "GraphDriver" && key != "Metadata" {
                assert_eq!(&ours[0][key], value, "{name}: {key}");
            }
        }
        assert!(ours[0].get("GraphDriver").is_none());

        // history, RFC 3339 and plain sizes: Docker's table, character for character.
        let theirs = docker
            .docker()
            .env("TZ", "UTC")
            .args(["history", "--human=false", name])
            .run_text();
        let ours = layercake(&[
            "history".as_ref(),
            "--human=false".as_ref(),
            file.as_os_str(),
        ]);
        assert_eq!(ours, theirs, "layercake history --human=false {name}");
        let theirs = docker
            .docker()
            .env("TZ", "UTC")
            .args(["history", "--human=false", "--no-trunc", name])
            .run_text();
        let ours = layercake(&[
            "history".as_ref(),
            "--human=false".as_ref(),
            "--no-trunc".as_ref(),
            file.as_os_str(),
        ]);
        assert_eq!(
            ours, theirs,
            "layercake history --human=false --no-trunc {name}"
        );
        // Human times: the same columns but CREATED, which moves with the clock.
        let theirs = docker.docker().args(["history", name]).run_text();
        let ours = layercake(&["history".as_ref(), file.as_os_str()]);
        assert_eq!(theirs.lines().next(), ours.lines().next(), "header");
        let column = |text: &str| -> Vec<String> {
            text.lines()
                .skip(1)
                .map(|l| {
                    let mut cells = l.split("   ").map(str::trim).filter(|c| !c.is_empty());
                    cells.nth(1).unwrap_or_default().to_owned()
                })
                .collect()
        };
        let (created, ours_created) = (column(&theirs), column(&ours));
        assert_eq!(ours_created.len(), created.len());
        for (o, t) in ours_created.iter().zip(&created) {
            // A step of this test's build is seconds old and its age moves while the two
            // commands run; the base is years old and does not.
            assert!(o.ends_with(" ago"), "{o:?} in\n{ours}");
            if t.ends_with("years ago") {
                assert_eq!(o, t, "CREATED (human) of {name}");
            }
        }
    }
}
