//! The process executor: RUN steps run for real with `unshare` on a busybox root, and what
//! they change comes back into the container.
//!
//! Needs root and namespaces. Where `unshare` itself is refused (`Operation not permitted`),
//! each test says so on stderr and stops; anything else that goes wrong fails it.

use std::process::Command;
use std::sync::{Arc, Mutex};

use layercake::build::{Executor, Network, ProcessExecutor, RunStep};
use layercake::{CommitOptions, Container, Entry, Error, Image, Layer};

const MTIME: i64 = 1_600_000_000;

const APPLETS: [&str; 16] = [
    "sh", "echo", "rm", "chmod", "ln", "id", "pwd", "env", "mkdir", "touch", "cat", "true", "ls",
    "sort", "printf", "grep",
];

/// Whether namespaces can be made here. `false` (with a line on stderr) only when
/// `unshare` is refused for lack of permission.
fn namespaces() -> bool {
    let out = Command::new("unshare")
        .args([
            "--mount", "--pid", "--net", "--uts", "--ipc", "--fork", "true",
        ])
        .output()
        .expect("util-linux's `unshare` is installed");
    if out.status.success() {
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Operation not permitted"),
        "unshare failed for another reason than permissions: {stderr}"
    );
    eprintln!("SKIPPED: namespaces are unavailable here (unshare: {stderr})");
    false
}

/// A busybox root: `/bin/busybox` from busybox-static, relative symlinks for its applets,
/// a passwd and group file, and two files to change.
fn busybox() -> Image {
    let bytes = std::fs::read("/bin/busybox")
        .expect("/bin/busybox (apt-get install busybox-static) for a runnable root");
    let dir = |mode| Entry::dir().mode(mode).mtime(MTIME);
    let mut layer = Layer::builder()
        .entry("bin", dir(0o755))
        .entry("etc", dir(0o755))
        .entry("tmp", dir(0o1777))
        .entry("root", dir(0o700))
        .entry("bin/busybox", Entry::file(bytes).mode(0o755).mtime(MTIME))
        .entry(
            "etc/passwd",
            Entry::file("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n")
                .mtime(MTIME),
        )
        .entry(
            "etc/group",
            Entry::file("root:x:0:\napp:x:1001:\nstaff:x:50:app\n").mtime(MTIME),
        )
        .entry("etc/motd", Entry::file("welcome\n").mtime(MTIME))
        .entry("etc/keep", Entry::file("kept\n").mode(0o644).mtime(MTIME));
    for applet in APPLETS {
        layer = layer.entry(
            format!("bin/{applet}"),
            Entry::symlink("busybox").mtime(MTIME),
        );
    }
    Image::builder()
        .layer(layer.build().unwrap())
        .build()
        .unwrap()
}

fn sh(script: &str) -> RunStep {
    RunStep::new(["/bin/sh", "-c", script])
}

fn diff(container: &Container) -> Vec<String> {
    container
        .diff()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn a_run_step_writes_removes_chmods_and_links() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let mut c = Container::new(&image).unwrap();
    let script = "echo hi > /tmp/new && rm /etc/motd && chmod 600 /etc/keep \
                  && ln -s new /tmp/link && mkdir -p /var/lib/x && ln /tmp/new /tmp/hard";
    ProcessExecutor::new().run(&mut c, &sh(script)).unwrap();
    assert_eq!(
        diff(&c),
        [
            "C /etc",
            "C /etc/keep",
            "D /etc/motd",
            "C /tmp",
            "A /tmp/hard",
            "A /tmp/link",
            "A /tmp/new",
            "A /var",
            "A /var/lib",
            "A /var/lib/x",
        ]
    );
    assert_eq!(c.read("tmp/new").unwrap(), "hi\n");
    assert!(c
        .symlink_metadata("tmp/hard")
        .unwrap()
        .same_file(&c.symlink_metadata("tmp/new").unwrap()));
    assert_eq!(
        c.symlink_metadata("tmp/link")
            .unwrap()
            .link_target()
            .unwrap(),
        "new"
    );
    assert_eq!(c.metadata("etc/keep").unwrap().metadata().mode, 0o600);
    assert_eq!(c.read("etc/keep").unwrap(), "kept\n");
    assert!(!c.exists("etc/motd"));
    assert_eq!(c.metadata("tmp").unwrap().metadata().mode, 0o1777);

    // The builder's commit makes the layer: the new image's files are the container's.
    let committed = c.commit(&CommitOptions::new()).unwrap();
    assert_eq!(committed.layers().count(), 2);
    assert_eq!(committed.tree().unwrap(), *c.tree());
    assert_eq!(committed.tree().unwrap().read("tmp/new").unwrap(), "hi\n");
}

#[test]
fn the_command_sees_the_steps_env_user_and_workdir() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let mut c = Container::new(&image).unwrap();
    let mut step = sh(
        "echo \"$GREETING $(id -u):$(id -g) $(pwd) $HOME\" > /tmp/seen; \
                       env | sort > /tmp/env; echo mine > here",
    );
    step.env = vec!["GREETING=hello".into()];
    step.user = "app:staff".into();
    step.workdir = "/work/dir".into();
    // The workdir is made (as root) before the command runs; the user may not write there.
    let err = ProcessExecutor::new().run(&mut c, &step).unwrap_err();
    assert!(err.to_string().contains("here"), "{err}");

    let mut c = Container::new(&image).unwrap();
    step.user = "app:staff".into();
    step.workdir = "/tmp".into();
    ProcessExecutor::new().run(&mut c, &step).unwrap();
    assert_eq!(
        c.read("tmp/seen").unwrap(),
        "hello 1000:50 /tmp /home/app\n"
    );
    let env = String::from_utf8(c.read("tmp/env").unwrap().to_vec()).unwrap();
    let names: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    // The host's environment is not passed on; PATH and HOME are given as Docker does.
    assert!(
        names
            .iter()
            .all(|n| ["GREETING", "HOME", "PATH", "PWD", "SHLVL"].contains(n)),
        "{env}"
    );
    let here = c.metadata("tmp/here").unwrap();
    assert_eq!((here.metadata().uid, here.metadata().gid), (1000, 50));

    // A workdir that is missing is created, owned by root.
    let mut c = Container::new(&image).unwrap();
    let mut step = sh("pwd > /tmp/pwd");
    step.workdir = "/work/dir".into();
    ProcessExecutor::new().run(&mut c, &step).unwrap();
    assert_eq!(c.read("tmp/pwd").unwrap(), "/work/dir\n");
    assert!(c.metadata("work/dir").unwrap().is_dir());

    // A user the image does not know is refused before anything runs or changes.
    let mut step = sh("true");
    step.user = "nobody".into();
    step.workdir = "/made/for/nobody".into();
    let mut c = Container::new(&image).unwrap();
    let err = ProcessExecutor::new().run(&mut c, &step).unwrap_err();
    assert!(
        err.to_string().contains("unable to find user nobody"),
        "{err}"
    );
    assert!(diff(&c).is_empty());
}

#[test]
fn a_failing_command_shows_its_output() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let mut c = Container::new(&image).unwrap();
    let err = ProcessExecutor::new()
        .run(
            &mut c,
            &sh("echo to stdout; echo to stderr >&2; touch /tmp/x; exit 3"),
        )
        .unwrap_err();
    match &err {
        Error::RunFailed {
            command,
            status,
            output,
        } => {
            assert_eq!(
                command,
                "/bin/sh -c echo to stdout; echo to stderr >&2; touch /tmp/x; exit 3"
            );
            assert_eq!(*status, 3);
            assert_eq!(output, "to stdout\nto stderr\n");
        }
        other => panic!("not RunFailed: {other}"),
    }
    assert!(
        err.to_string().contains("returned a non-zero code: 3"),
        "{err}"
    );
    assert!(diff(&c).is_empty(), "a failed step changes nothing");

    // A command that is not there fails the same way.
    let err = ProcessExecutor::new()
        .run(&mut c, &RunStep::new(["/bin/nonexistent"]))
        .unwrap_err();
    assert!(matches!(err, Error::RunFailed { .. }), "{err}");
}

#[test]
fn runtime_paths_never_reach_the_container() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let mut c = Container::new(&image).unwrap();
    let script = "echo 10.0.0.1 box >> /etc/hosts && echo box > /etc/hostname \
                  && echo nameserver 1.1.1.1 > /etc/resolv.conf && echo x > /dev/null \
                  && ls /proc/self > /tmp/proc && cat /dev/zero | true && mkdir -p /sys/x";
    ProcessExecutor::new().run(&mut c, &sh(script)).unwrap();
    assert_eq!(diff(&c), ["C /tmp", "A /tmp/proc"]);
    assert!(!c.read("tmp/proc").unwrap().is_empty(), "/proc was mounted");
    for path in [
        "dev",
        "proc",
        "sys",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
    ] {
        assert!(!c.exists(path), "{path}");
    }

    // An image that has some of them keeps them as they were.
    let layer = Layer::builder()
        .entry("etc/hosts", Entry::file("127.0.0.1 image\n").mtime(MTIME))
        .entry("dev", Entry::dir().mtime(MTIME))
        .build()
        .unwrap();
    let image = Image::builder()
        .layer(busybox().layers().next().unwrap().clone())
        .layer(layer)
        .build()
        .unwrap();
    let mut c = Container::new(&image).unwrap();
    ProcessExecutor::new()
        .run(&mut c, &sh("echo changed > /etc/hosts && touch /dev/made"))
        .unwrap();
    assert!(diff(&c).is_empty(), "{:?}", diff(&c));
    assert_eq!(c.read("etc/hosts").unwrap(), "127.0.0.1 image\n");
}

#[test]
fn an_unchanged_run_changes_nothing() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let mut c = Container::new(&image).unwrap();
    ProcessExecutor::new()
        .run(
            &mut c,
            &sh("cat /etc/motd /etc/keep > /dev/null && ls -la / > /dev/null"),
        )
        .unwrap();
    assert!(diff(&c).is_empty(), "{:?}", diff(&c));
    assert_eq!(*c.tree(), image.tree().unwrap());

    // A file rewritten with the same bytes and mtime is no change either; one touched is.
    ProcessExecutor::new()
        .run(&mut c, &sh("touch /etc/keep"))
        .unwrap();
    assert_eq!(diff(&c), ["C /etc", "C /etc/keep"]);
}

#[test]
fn types_change_and_hardlinks_stay_shared() {
    if !namespaces() {
        return;
    }
    let base = busybox();
    let links = Layer::builder()
        .entry("srv", Entry::dir().mtime(MTIME))
        .entry("srv/a", Entry::file("one\n").mtime(MTIME))
        .hard_link("srv/a", "srv/b")
        .build()
        .unwrap();
    let image = Image::builder()
        .layer(base.layers().next().unwrap().clone())
        .layer(links)
        .build()
        .unwrap();
    let mut c = Container::new(&image).unwrap();
    let script = "rm /etc/keep && mkdir /etc/keep && echo in > /etc/keep/f \
                  && rmdir /root && ln -s tmp /root && echo two >> /srv/a";
    ProcessExecutor::new().run(&mut c, &sh(script)).unwrap();
    assert_eq!(
        diff(&c),
        [
            "C /etc",
            "C /etc/keep",
            "A /etc/keep/f",
            "C /root",
            "C /srv",
            "C /srv/a",
            "C /srv/b",
        ]
    );
    assert_eq!(c.read("etc/keep/f").unwrap(), "in\n");
    assert_eq!(
        c.symlink_metadata("root").unwrap().link_target().unwrap(),
        "tmp"
    );
    // Written through one name, seen through both: still one file.
    assert_eq!(c.read("srv/b").unwrap(), "one\ntwo\n");
    assert!(c
        .symlink_metadata("srv/a")
        .unwrap()
        .same_file(&c.symlink_metadata("srv/b").unwrap()));
}

#[test]
fn the_network_is_off_unless_asked() {
    if !namespaces() {
        return;
    }
    let image = busybox();
    let interfaces = |c: &Container| -> Vec<String> {
        let text = String::from_utf8(c.read("tmp/net").unwrap().to_vec()).unwrap();
        text.lines()
            .skip(2)
            .map(|l| l.split(':').next().unwrap().trim().to_owned())
            .collect()
    };
    let step = sh("cat /proc/net/dev > /tmp/net && cat /etc/resolv.conf > /tmp/resolv");
    let mut c = Container::new(&image).unwrap();
    ProcessExecutor::new().run(&mut c, &step).unwrap();
    assert_eq!(interfaces(&c), ["lo"]);
    assert_eq!(c.read("tmp/resolv").unwrap(), "");

    let mut host = step.clone();
    host.network = Network::Host;
    let mut c = Container::new(&image).unwrap();
    ProcessExecutor::new().run(&mut c, &host).unwrap();
    let on_host = std::fs::read_to_string("/proc/net/dev").unwrap();
    assert_eq!(interfaces(&c).len(), on_host.lines().count() - 2);
    assert_eq!(
        c.read("tmp/resolv").unwrap(),
        std::fs::read("/etc/resolv.conf").unwrap_or_default()
    );
    // The executor's option gives every step the host's network.
    let mut c = Container::new(&image).unwrap();
    ProcessExecutor::new()
        .network(Network::Host)
        .run(&mut c, &step)
        .unwrap();
    assert_eq!(interfaces(&c).len(), on_host.lines().count() - 2);
}

#[test]
fn the_output_goes_where_asked() {
    if !namespaces() {
        return;
    }
    let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
    let executor = ProcessExecutor::new().output(shown.clone());
    let mut c = Container::new(&busybox()).unwrap();
    executor.run(&mut c, &sh("echo one; echo two >&2")).unwrap();
    executor.run(&mut c, &sh("echo three; exit 1")).unwrap_err();
    assert_eq!(*shown.lock().unwrap(), b"one\ntwo\nthree\n");
}

#[test]
fn the_executor_is_send_and_sync() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<ProcessExecutor>();
    let executor = ProcessExecutor::new().output(Arc::new(Mutex::new(Vec::<u8>::new())));
    assert!(format!("{executor:?}").contains("ProcessExecutor"));
}

/// The mounts under `dir` (a scratch directory of one test: others mount theirs meanwhile).
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let dir = format!(" {}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_owned)
        .collect()
}

#[test]
fn overlay_and_whole_unpack_agree_over_layers_with_whiteouts() {
    if !namespaces() {
        return;
    }
    // A stack with a whiteout, an opaque directory, a directory only implied by a later
    // layer, and a hardlink: what overlayfs's lower directories must render as the tree does.
    let base = busybox();
    let second = Layer::builder()
        .whiteout("etc/motd")
        .entry("srv", Entry::dir().mode(0o750).mtime(MTIME))
        .entry("srv/old/gone", Entry::file("x").mtime(MTIME))
        .entry("srv/a", Entry::file("one\n").mtime(MTIME))
        .hard_link("srv/a", "srv/b")
        .build()
        .unwrap();
    let third = Layer::builder()
        .opaque("srv/old")
        .entry("srv/old/new", Entry::file("y").mtime(MTIME))
        .entry("var/lib/implied/f", Entry::file("z").mtime(MTIME))
        .build()
        .unwrap();
    let image = Image::builder()
        .layer(base.layers().next().unwrap().clone())
        .layer(second)
        .layer(third)
        .build()
        .unwrap();
    let script = "test -e /etc/motd || echo absent > /motd; ls /srv/old > /srv/listing; \
                  echo two >> /srv/a && cat /srv/b > /srv/seen && rm /etc/keep && mkdir -p /work \
                  && echo w > /work/f; if grep -q ' - overlay ' /proc/self/mountinfo; then echo > /ov; fi";
    let scratch = std::env::temp_dir().join(format!(
        "layercake-overlay-test-{}-{}",
        std::process::id(),
        MTIME
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let executor = ProcessExecutor::new().scratch_dir(&scratch);
    let mut results = Vec::new();
    for overlay in [true, false] {
        let mut c = Container::new(&image).unwrap();
        c.create_dir_all("made/before").unwrap();
        executor
            .clone()
            .overlay(overlay)
            .run(&mut c, &sh(script))
            .unwrap();
        assert!(
            mounts_under(&scratch).is_empty(),
            "left mounted: {:?}",
            mounts_under(&scratch)
        );
        assert_eq!(c.read("motd").unwrap(), "absent\n", "the whiteout hides it");
        assert_eq!(
            c.tree().lookup("ov").unwrap().is_some(),
            overlay,
            "the root was an overlay"
        );
        c.remove_file("ov").ok();
        assert_eq!(c.read("srv/listing").unwrap(), "new\n");
        assert_eq!(
            c.read("srv/seen").unwrap(),
            "one\ntwo\n",
            "the hardlink stays shared"
        );
        results.push((diff(&c), c.tree().clone()));
    }
    assert_eq!(
        results[0].0, results[1].0,
        "overlay vs whole unpack: the changes"
    );
    assert!(
        results[0].1 == results[1].1,
        "overlay vs whole unpack: the trees"
    );
    // A second step on the same executor reuses the layers it unpacked.
    let mut c = Container::new(&image).unwrap();
    executor.run(&mut c, &sh("echo again > /again")).unwrap();
    assert_eq!(diff(&c), ["A /again"]);
    // The executor's unpacked layers go with it.
    drop(executor);
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
    std::fs::remove_dir(&scratch).unwrap();
}
