//! `layercake build` against Docker's classic builder (docker.io 20.10, `DOCKER_BUILDKIT=0`,
//! a private dockerd): the same Dockerfiles and contexts built by both on the same busybox
//! base, compared as normalised images: the config fields a Dockerfile sets, the author,
//! os and architecture, the history rows (`created_by`, `empty_layer`, `comment`), and every
//! layer's entries (path, type, mode, owner, size, contents, link target; mtimes only where
//! they come from the context, a tar or another stage).
//!
//! One test function, one dockerd: every case is built by both and every difference of
//! every case is reported at once. Needs root (dockerd, and `unshare` for the crate's RUN);
//! a missing tool fails the test with the package to install.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{cmd, sha256, tool, Dockerd, TempDir};
use layercake::archive::Archive;
use layercake::build::StepReport;
use layercake::build::{Build, Context, Keyword, ProcessExecutor};
use layercake::{Entry, EntryKind, Error, Image, ImageId, Layer, Store};

/// The mtime of every file of the contexts and of the base (a fixed second).
const MTIME: i64 = 1_650_000_000;

/// The busybox applets the Dockerfiles call, as relative symlinks to `busybox`.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "rm", "mkdir", "touch", "chown", "true", "ls", "ln",
];

/// One build: a Dockerfile and its context, built by both builders.
struct Case {
    /// The tag both builders give it (`lc/NAME:test`); a later case may build `FROM` it.
    name: &'static str,
    dockerfile: &'static str,
    /// Context files: path, contents, mode (parent directories are made 0755).
    files: &'static [(&'static str, &'static [u8], u32)],
    /// Context symlinks: path, target.
    links: &'static [(&'static str, &'static str)],
    /// Whether the context also holds `t.tar`, a tar with owned entries for ADD.
    tar: bool,
    args: &'static [(&'static str, &'static str)],
    target: Option<&'static str>,
}

/// What a case has unless it says otherwise: no context, no build args, the last stage.
const PLAIN: Case = Case {
    name: "",
    dockerfile: "",
    files: &[],
    links: &[],
    tar: false,
    args: &[],
    target: None,
};

const CASES: &[Case] = &[
    Case {
        name: "env-arg",
        dockerfile: r#"FROM busybox:test
ENV A=1 B="two words"
ENV C 3
ARG V
ARG W=dflt
RUN echo "$V $W $A" > /v.txt
ARG X
RUN echo "$V" > /only-v.txt
ENV D=$W
"#,
        args: &[("V", "1")],
        ..PLAIN
    },
    Case {
        name: "arg-one",
        dockerfile: r#"ARG BASE=busybox:test
FROM $BASE
ARG V
RUN echo $V > /v.txt
RUN ["/bin/sh", "-c", "echo $V > /exec.txt"]
"#,
        args: &[("V", "1")],
        ..PLAIN
    },
    Case {
        name: "config",
        dockerfile: r#"FROM busybox:test
MAINTAINER Jane Doe <jane@example.com>
LABEL a=1 "b c"="d e"
LABEL single value
EXPOSE 80 443/udp
USER app
WORKDIR /work
WORKDIR sub
WORKDIR /etc
VOLUME /data ["/logs"]
VOLUME /more
STOPSIGNAL SIGKILL
"#,
        ..PLAIN
    },
    Case {
        name: "shell-cmd",
        dockerfile: r#"FROM busybox:test
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=4 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
RUN echo shell > /s.txt
CMD echo hi
ENTRYPOINT ["/bin/echo"]
"#,
        ..PLAIN
    },
    Case {
        name: "parent",
        dockerfile: r#"FROM busybox:test
ONBUILD RUN echo built > /onbuild.txt
ONBUILD ENV FROM_PARENT=1
HEALTHCHECK --interval=5s CMD ["true"]
CMD ["/bin/sh"]
"#,
        ..PLAIN
    },
    Case {
        name: "child",
        dockerfile: r#"FROM lc/parent:test
HEALTHCHECK NONE
ENTRYPOINT /bin/echo
"#,
        ..PLAIN
    },
    Case {
        name: "copy",
        dockerfile: r#"FROM busybox:test
WORKDIR /app
COPY a.txt /srv/
COPY a.txt rel.txt
COPY d /dd
COPY a.txt b.sh /multi/
COPY *.txt /glob/
COPY --chown=app:staff b.sh /owned/
COPY . /all/
ADD t.tar /untar/
"#,
        files: &[
            ("a.txt", b"a\n", 0o644),
            ("b.sh", b"#!/bin/sh\necho b\n", 0o755),
            ("c.txt", b"c\n", 0o600),
            ("d/x", b"x\n", 0o640),
            ("d/e/y", b"y\n", 0o644),
        ],
        tar: true,
        ..PLAIN
    },
    Case {
        name: "one-dir",
        dockerfile: r#"FROM busybox:test
COPY d /dd
COPY --chown=1000:50 d /cd/
COPY --chown=app d/x /new/deep/
ADD --chown=1000 d/e /ae
COPY --from=busybox:test --chown=app:staff /srv /fromimg
COPY d/l /single-link
COPY d/l d/x /two/
"#,
        files: &[("d/x", b"x\n", 0o640), ("d/e/y", b"y\n", 0o644)],
        links: &[("d/l", "x")],
        ..PLAIN
    },
    Case {
        name: "stages",
        dockerfile: r#"FROM busybox:test AS build
RUN mkdir /out && echo made > /out/made.txt && chown 1000:1001 /out/made.txt && touch -d @1600000000 /out/made.txt
FROM busybox:test AS other
RUN echo other > /other.txt
FROM busybox:test
COPY --from=build /out/made.txt /made.txt
COPY --from=build /out /outdir
"#,
        ..PLAIN
    },
    Case {
        name: "target",
        dockerfile: r#"FROM busybox:test AS build
RUN echo one > /one.txt
FROM build AS other
RUN echo other > /other.txt
FROM busybox:test
RUN echo last > /last.txt
"#,
        target: Some("other"),
        ..PLAIN
    },
    Case {
        name: "user-run",
        dockerfile: r#"FROM busybox:test
ENV PATH=/opt/bin:$PATH
USER app:staff
RUN id > /tmp/id.txt && echo "$HOME $PATH" > /tmp/home.txt && mkdir /tmp/d
USER root
RUN echo "$HOME" > /roothome.txt
"#,
        ..PLAIN
    },
    Case {
        name: "run",
        dockerfile: r#"FROM busybox:test
RUN true
RUN rm /srv/old.txt
RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]
RUN ln /srv/keep.txt /srv/hard && echo n > /n1 && ln /n1 /n2 && chmod 600 /etc/group
RUN rm -r /root && mkdir -p /var/lib/x && chown 1000:50 /var/lib/x
"#,
        ..PLAIN
    },
];

#[test]
fn classic_builder_and_layercake_build_the_same_images() {
    tool("unshare");
    let docker = Dockerd::start();
    let tmp = TempDir::new("build-docker");

    // The base: one layer made here, imported by Docker, saved, and loaded by layercake, so
    // both builders start from the same image id.
    let rootfs = tmp.join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs().tar().unwrap().to_bytes().unwrap()).unwrap();
    docker
        .docker()
        .arg("import")
        .arg(&rootfs)
        .arg("busybox:test")
        .run();
    let base = saved(&docker, &tmp, "busybox:test");
    let docker_base_id = docker
        .docker()
        .args(["image", "inspect", "--format", "{{.Id}}", "busybox:test"])
        .run_text();
    assert_eq!(
        base.id().to_string(),
        docker_base_id.trim(),
        "the base image id"
    );

    let ours: Arc<Mutex<BTreeMap<String, Image>>> = Arc::default();
    ours.lock()
        .unwrap()
        .insert("busybox:test".into(), base.clone());

    let mut failures = String::new();
    for case in CASES {
        let dir = tmp.join(case.name);
        let context = dir.join("context");
        write_context(case, &context);
        let dockerfile = dir.join("Dockerfile");
        std::fs::write(&dockerfile, case.dockerfile).unwrap();
        let tag = format!("lc/{}:test", case.name);

        // Docker's classic builder. The Dockerfile sits outside the context, so the daemon
        // sees exactly the context's files (the client sends it under a random name and
        // removes it again).
        let mut build = docker
            .docker()
            .env("DOCKER_BUILDKIT", "0")
            .args([
                "build",
                "--no-cache",
                "--network",
                "none",
                "-q",
                "-t",
                &tag,
                "-f",
            ])
            .arg(&dockerfile);
        for (k, v) in case.args {
            build = build.arg("--build-arg").arg(format!("{k}={v}"));
        }
        if let Some(t) = case.target {
            build = build.args(["--target", t]);
        }
        build.arg(&context).run();
        let theirs = saved(&docker, &tmp, &tag);

        // layercake, with RUN through `unshare`.
        let lookup = ours.clone();
        let mut build = Build::new(case.dockerfile)
            .context(Context::from_dir(&context).unwrap())
            .executor(ProcessExecutor::new())
            .base_images(move |name| {
                lookup
                    .lock()
                    .unwrap()
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::Unsupported {
                        what: format!("no base image `{name}` in the test"),
                    })
            });
        for (k, v) in case.args {
            build = build.build_arg(*k, *v);
        }
        if let Some(t) = case.target {
            build = build.target(t);
        }
        // In a store, to read every step's image back.
        let mut store = Store::new();
        let (image, our_steps) = match build.run_in(&mut store) {
            Ok(report) => {
                let chain = step_chain(&report.steps, report.image.id());
                let steps: Vec<Vec<String>> = chain
                    .iter()
                    .map(|(id, parent)| {
                        let step = store.image(&id.to_hex().to_string()).unwrap();
                        let file = step.config().file();
                        let ran = file.extra.get("container_config").cloned();
                        let container = file.extra.get("container").and_then(|c| c.as_str());
                        container_lines(
                            &ran.unwrap_or_default(),
                            container.unwrap_or(""),
                            &parent.to_string(),
                        )
                    })
                    .collect();
                (report.image, steps)
            }
            Err(e) => {
                let _ = writeln!(failures, "== {}: layercake build failed: {e}", case.name);
                continue;
            }
        };
        ours.lock().unwrap().insert(tag.clone(), image.clone());

        // Docker's step images, newest first, as many as layercake's chain has.
        let their_steps: Vec<Vec<String>> = docker
            .docker()
            .args(["history", "-q", "--no-trunc", &tag])
            .run_text()
            .lines()
            .take(our_steps.len())
            .map(|id| {
                let format = "{{json .ContainerConfig}}\n{{.Container}}\n{{.Parent}}";
                let text = docker
                    .docker()
                    .args(["image", "inspect", "--format", format, id])
                    .run_text();
                let mut parts = text.lines();
                let ran: serde_json::Value =
                    serde_json::from_str(parts.next().unwrap_or("null")).unwrap();
                let container = parts.next().unwrap_or("").trim();
                let parent = parts.next().unwrap_or("").trim();
                container_lines(&ran, container, parent)
            })
            .collect();
        let (mut want, mut got) = (normalise(&theirs), normalise(&image));
        for (steps, lines) in [(&their_steps, &mut want), (&our_steps, &mut got)] {
            lines.push(format!("steps: {}", steps.len()));
            for (i, step) in steps.iter().enumerate() {
                lines.extend(step.iter().map(|l| format!("step -{i}: {l}")));
            }
        }
        let mut diff = line_diff(&want, &got);
        for (name, line, _why) in KNOWN {
            if *name == case.name {
                let before = diff.len();
                diff.retain(|l| l != line);
                if diff.len() == before {
                    diff.push(format!("  a known difference is gone (remove it): {line}"));
                }
            }
        }
        if !diff.is_empty() {
            let _ = writeln!(failures, "== {} (- docker, + layercake)", case.name);
            for l in diff {
                let _ = writeln!(failures, "{l}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "layercake build differs from Docker's classic builder:\n{failures}"
    );
}

/// The base root filesystem: busybox-static with relative applet links, users and groups
/// for `--chown` and `USER`, and a file for a RUN to delete. Every directory is explicit
/// (Docker 20.10 makes implied parents 0600).
fn busybox_rootfs() -> Layer {
    let busybox = std::fs::read(tool("/bin/busybox")).expect("read /bin/busybox");
    let dir = |mode| Entry::dir().mode(mode).mtime(MTIME);
    let file = |text: &'static str| Entry::file(text).mtime(MTIME);
    let mut layer = Layer::builder()
        .entry("bin", dir(0o755))
        .entry("etc", dir(0o755))
        .entry("root", dir(0o700))
        .entry("srv", dir(0o755))
        .entry("tmp", dir(0o1777))
        .entry("bin/busybox", Entry::file(busybox).mode(0o755).mtime(MTIME))
        .entry(
            "etc/passwd",
            file("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"),
        )
        .entry(
            "etc/group",
            file("root:x:0:\napp:x:1001:\nstaff:x:50:app\n"),
        )
        .entry("srv/old.txt", file("old\n"))
        .entry("srv/keep.txt", file("keep\n"));
    for applet in APPLETS {
        layer = layer.entry(
            format!("bin/{applet}"),
            Entry::symlink("busybox").mtime(MTIME),
        );
    }
    layer.build().unwrap()
}

/// A tar for ADD: entries owned by others, a symlink, a fixed mtime.
fn owned_tar() -> Vec<u8> {
    let layer = Layer::builder()
        .entry(
            "pkg",
            Entry::dir().mode(0o750).owner(1000, 1001).mtime(MTIME),
        )
        .entry(
            "pkg/tool",
            Entry::file("tool\n")
                .mode(0o755)
                .owner(1000, 1001)
                .mtime(MTIME),
        )
        .entry(
            "pkg/data",
            Entry::file("data\n").mode(0o600).owner(50, 50).mtime(MTIME),
        )
        .entry(
            "pkg/link",
            Entry::symlink("tool").owner(1000, 1001).mtime(MTIME),
        )
        .build()
        .unwrap();
    layer.tar().unwrap().to_bytes().unwrap().to_vec()
}

/// Writes a case's context: its files with their modes, every mtime `MTIME`.
fn write_context(case: &Case, root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root).unwrap();
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(MTIME as u64);
    let mut files: Vec<(String, Vec<u8>, u32)> = case
        .files
        .iter()
        .map(|(p, c, m)| ((*p).to_owned(), c.to_vec(), *m))
        .collect();
    if case.tar {
        files.push(("t.tar".into(), owned_tar(), 0o644));
    }
    for (path, contents, mode) in &files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(time).unwrap();
    }
    for (path, target) in case.links {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &path).unwrap();
        cmd("touch")
            .args(["-h", "-d", &format!("@{MTIME}")])
            .arg(&path)
            .run();
    }
}

/// `docker save` of one image, read back with layercake.
fn saved(docker: &Dockerd, tmp: &TempDir, reference: &str) -> Image {
    let path = tmp.join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    docker
        .docker()
        .args(["save", "-o"])
        .arg(&path)
        .arg(reference)
        .run();
    let image = Archive::open(&path).unwrap().only_image().unwrap();
    image.read_layers().unwrap();
    image
}

/// The config fields a Dockerfile sets (`config.*`), with their JSON values; a missing
/// field reads as `null`.
const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
    "ArgsEscaped",
];

/// The images of the steps that made `last`, newest first, each with its parent (the step
/// before it in its stage, or the stage's FROM image), down to a step whose parent is a FROM
/// of an image that is not a stage.
fn step_chain(steps: &[StepReport], last: ImageId) -> Vec<(ImageId, ImageId)> {
    let mut chain = Vec::new();
    let mut current = last;
    while let Some(i) = steps
        .iter()
        .position(|s| s.image == Some(current) && s.keyword != Keyword::From)
    {
        let Some(parent) = steps[..i].last().and_then(|s| s.image) else {
            break;
        };
        chain.push((current, parent));
        current = parent;
    }
    chain
}

/// An image as text lines, one fact a line, in an order both builders share.
///
/// Each step's `container_config` and `container` are compared apart, by
/// [`container_lines`], for every step image of the chain.
///
/// Left out, because they name the run rather than the result: `created` (of the image
/// and of each history row), `docker_version`, `config.Hostname` and `config.Image`
/// (Docker's ids of its build containers and parent), and layer digests
/// (a RUN layer's bytes hold the moment it ran). Entries leave out uname and gname (Docker
/// looks names up in the daemon host's files) and the mtimes of directories and of what a
/// RUN wrote (both are the moment of the build).
fn normalise(image: &Image) -> Vec<String> {
    let config: serde_json::Value = serde_json::from_slice(image.config().as_bytes()).unwrap();
    let mut lines = Vec::new();
    for field in CONFIG_FIELDS {
        lines.push(format!("config.{field}: {}", config["config"][field]));
    }
    for field in ["author", "os", "architecture"] {
        lines.push(format!("{field}: {}", config[field]));
    }
    let history = config["history"].as_array().cloned().unwrap_or_default();
    let mut layer_steps = Vec::new();
    for row in &history {
        let created_by = row["created_by"].as_str().unwrap_or("");
        let empty = row["empty_layer"].as_bool().unwrap_or(false);
        lines.push(format!(
            "history: {created_by:?} empty_layer={empty} comment={}",
            row["comment"]
        ));
        if !empty {
            layer_steps.push(created_by.to_owned());
        }
    }
    lines.push(format!("layers: {}", image.layers().count()));
    for (i, layer) in image.layers().enumerate() {
        let step = layer_steps.get(i).map(String::as_str).unwrap_or("");
        // Files a COPY or ADD wrote keep their source's mtime in both builders.
        let copied = step.contains("#(nop) COPY") || step.contains("#(nop) ADD");
        let changes = layer.changeset().unwrap();
        for (path, entry) in changes.entries() {
            lines.push(format!(
                "layer {i}: {}",
                entry_line(&path.to_string(), entry, copied)
            ));
        }
        for path in changes.whiteouts() {
            lines.push(format!("layer {i}: {path} whiteout"));
        }
        for path in changes.opaque_dirs() {
            lines.push(format!("layer {i}: {path} opaque"));
        }
    }
    lines
}

/// A step's `container_config` (the run config of the container it ran in) and `container`
/// as lines: the config fields as [`normalise`] has them, with `Cmd`; `Image`, `Hostname`
/// and `container` name the run, so the lines say what they are: `Image` the id of that
/// side's parent image (`parent`), `Hostname` empty or the first 12 digits of `container`,
/// `container` a 64-hex id or none. An empty `Labels` map reads as `null`: dockerd's create
/// makes one where the config had none, layercake's `ContainerConfig` writes no empty map.
fn container_lines(ran: &serde_json::Value, container: &str, parent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for field in CONFIG_FIELDS {
        let value = match &ran[field] {
            serde_json::Value::Object(map) if map.is_empty() => serde_json::Value::Null,
            v => v.clone(),
        };
        lines.push(format!("container_config.{field}: {value}"));
    }
    let image_line = match ran["Image"].as_str().unwrap_or("") {
        i if !i.is_empty() && i == parent => "the parent step's image".to_owned(),
        i => format!("{i:?}, not the parent step's image {parent:?}"),
    };
    lines.push(format!("container_config.Image: {image_line}"));
    let hostname = match ran["Hostname"].as_str().unwrap_or("") {
        "" => "empty".to_owned(),
        h if container.len() == 64 && container.starts_with(h) && h.len() == 12 => {
            "the container's short id".to_owned()
        }
        h => format!("{h:?}"),
    };
    lines.push(format!("container_config.Hostname: {hostname}"));
    let is_id = container.len() == 64 && container.bytes().all(|b| b.is_ascii_hexdigit());
    lines.push(match (container, is_id) {
        ("", _) => "container: none".to_owned(),
        (_, true) => "container: a 64-hex id".to_owned(),
        (c, false) => format!("container: {c:?}"),
    });
    lines
}

fn entry_line(path: &str, entry: &Entry, copied: bool) -> String {
    let m = entry.metadata();
    let mut line = format!(
        "{path} {} {:o} {}:{}",
        entry.file_type().as_char(),
        m.mode & 0o7777,
        m.uid,
        m.gid
    );
    match entry.kind() {
        EntryKind::File(c) => {
            let _ = write!(
                line,
                " size {} {}",
                c.len(),
                &sha256(&c.to_bytes().unwrap())[..19]
            );
        }
        EntryKind::Symlink(t) => {
            let _ = write!(line, " -> {}", String::from_utf8_lossy(t));
        }
        EntryKind::Hardlink(t) => {
            let _ = write!(line, " link to {t}");
        }
        EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
            let _ = write!(line, " dev {major},{minor}");
        }
        EntryKind::Directory | EntryKind::Fifo => {}
    }
    for (k, v) in &m.xattrs {
        let _ = write!(
            line,
            " xattr {}={}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    }
    if copied && !entry.is_dir() {
        let _ = write!(line, " mtime {}", m.mtime);
    }
    line
}

/// The lines only one side has, marked `-` (Docker) and `+` (layercake); if both have the
/// same lines in another order, the first pair that differs.
fn line_diff(want: &[String], got: &[String]) -> Vec<String> {
    let mut out: Vec<String> = want
        .iter()
        .filter(|w| !got.contains(w))
        .map(|w| format!("  - {w}"))
        .chain(
            got.iter()
                .filter(|g| !want.contains(g))
                .map(|g| format!("  + {g}")),
        )
        .collect();
    if out.is_empty() && want != got {
        out.push("  (the same lines in another order)".into());
        if let Some((w, g)) = want.iter().zip(got).find(|(w, g)| w != g) {
            out.push(format!("  - {w}"));
            out.push(format!("  + {g}"));
        }
    }
    out
}

/// Differences seen and understood but not fixed: case, diff line, why. Each must still
/// show up (the test says when one is gone), so none can hide a new difference.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "user-run",
        "  - layer 1: tmp/id.txt - 644 1000:50 size 45 sha256:7497db8853aa",
        "Docker's RUN gets the user's supplementary groups from /etc/group (`id` prints \
         groups=50(staff)); the process executor runs with none (`unshare --setgid` clears \
         them; documented on ProcessExecutor)",
    ),
    (
        "user-run",
        "  + layer 1: tmp/id.txt - 644 1000:50 size 28 sha256:9a076e794215",
        "the same file from layercake's RUN: `uid=1000(app) gid=50(staff)`",
    ),
];
