//! `layercake build` end to end: a context directory, a Dockerfile with COPY, ENV and a RUN
//! that really runs (util-linux `unshare`, as root), the image in the store under its tag.
#![cfg(feature = "cli")]

mod common;

use common::registry::{busybox_image, write_oci_layout, Registry, Setup};
use common::{cmd, tool, TempDir};

#[test]
fn build_runs_the_steps_and_tags_the_image_in_the_store() {
    let dir = TempDir::new("cli-build");
    let context = dir.join("context");
    std::fs::create_dir_all(context.join("bin")).unwrap();
    std::fs::copy(tool("busybox"), context.join("bin/busybox")).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY bin/ /bin/\nENV GREETING=hi\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /greeting\"]\n",
    )
    .unwrap();
    let store = dir.arg("store");
    let out = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "build", "-t", "app:1"])
        .arg(&context)
        .run_text();
    for line in [
        "Step 1/4 : FROM scratch",
        "Step 4/4 : RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /greeting\"]",
        "Successfully tagged app:1",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in:\n{out}");
    }
    assert!(out.contains("Successfully built "), "{out}");
    let greeting = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "cat", "app:1", "/greeting"])
        .run_text();
    assert_eq!(greeting, "hi\n");
    let history = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "history", "--no-trunc", "app:1"])
        .run_text();
    assert!(history.contains("ENV GREETING=hi"), "{history}");
}

#[test]
fn build_honours_the_dockerignore() {
    let dir = TempDir::new("cli-build-ignore");
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(context.join(".dockerignore"), "secret\nDockerfile\n").unwrap();
    std::fs::write(context.join("secret"), "s3cret").unwrap();
    std::fs::write(context.join("public"), "hello").unwrap();
    let store = dir.arg("store");
    cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "build", "-t", "ignored:1"])
        .arg(&context)
        .run();
    let public = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "cat", "ignored:1", "/public"])
        .run_text();
    assert_eq!(public, "hello");
    for gone in ["/secret", "/Dockerfile"] {
        let out = cmd(env!("CARGO_BIN_EXE_layercake"))
            .args(["--root", &store, "cat", "ignored:1", gone])
            .output();
        assert!(!out.status.success(), "{gone} was copied");
    }
}

#[test]
fn a_rebuild_uses_the_cache_and_prints_as_docker() {
    let dir = TempDir::new("cli-build-cache");
    let context = dir.join("context");
    std::fs::create_dir_all(context.join("bin")).unwrap();
    std::fs::copy(tool("busybox"), context.join("bin/busybox")).unwrap();
    std::fs::write(context.join("note.txt"), "one\n").unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY bin/ /bin/\nRUN [\"/bin/busybox\", \"echo\", \"said hello\"]\n\
         COPY note.txt /\nRUN [\"/bin/busybox\", \"cp\", \"/note.txt\", \"/copy.txt\"]\n",
    )
    .unwrap();
    let store = dir.arg("store");
    let build = |extra: &[&str]| {
        cmd(env!("CARGO_BIN_EXE_layercake"))
            .args(["--root", &store, "build", "-t", "app:1"])
            .args(extra)
            .arg(&context)
            .run_text()
    };
    let first = build(&[]);
    // The command's output comes between its Running and Removing lines.
    let lines: Vec<&str> = first.lines().collect();
    let running = lines
        .iter()
        .position(|l| l.starts_with(" ---> Running in "))
        .unwrap_or_else(|| panic!("no Running line in:\n{first}"));
    let name = lines[running].trim_start_matches(" ---> Running in ");
    assert_eq!(name.len(), 12, "{first}");
    assert_eq!(lines[running + 1], "said hello", "{first}");
    assert_eq!(
        lines[running + 2],
        format!("Removing intermediate container {name}"),
        "{first}"
    );
    assert!(!first.contains("Using cache"), "{first}");
    // FROM scratch has no image to show, as with Docker.
    assert_eq!(lines[..2], ["Step 1/5 : FROM scratch", " ---> "], "{first}");

    let again = build(&[]);
    assert_eq!(again.matches(" ---> Using cache").count(), 4, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    let id = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("Successfully built ").map(str::to_owned))
            .unwrap()
    };
    assert_eq!(id(&again), id(&first));

    // One changed file: the steps from its COPY on run again.
    std::fs::write(context.join("note.txt"), "two\n").unwrap();
    let changed = build(&[]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 2, "{changed}");
    assert_eq!(changed.matches(" ---> Running in ").count(), 1, "{changed}");
    let copy = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "cat", "app:1", "/copy.txt"])
        .run_text();
    assert_eq!(copy, "two\n");

    let fresh = build(&["--no-cache"]);
    assert!(!fresh.contains("Using cache"), "{fresh}");
    assert_eq!(fresh.matches(" ---> Running in ").count(), 2, "{fresh}");

    // The steps' images are kept, and hidden from `images` as Docker hides them; the image
    // that had the tag before is listed as `<none>`, as Docker lists it.
    let images = |extra: &[&str]| {
        cmd(env!("CARGO_BIN_EXE_layercake"))
            .args(["--root", &store, "images", "-q"])
            .args(extra)
            .run_text()
    };
    let steps: Vec<&str> = fresh
        .lines()
        .filter_map(|l| l.strip_prefix(" ---> "))
        .filter(|l| !l.starts_with("Running in"))
        .collect();
    let (last, below) = steps.split_last().unwrap();
    assert_eq!(*last, id(&fresh));
    let (shown, all) = (images(&[]), images(&["-a"]));
    assert!(shown.lines().any(|l| l == *last), "{shown}");
    assert!(shown.lines().any(|l| l == id(&first)), "{shown}");
    for step in &below[1..] {
        assert!(!shown.lines().any(|l| l == *step), "{step} in {shown}");
        assert!(all.lines().any(|l| l == *step), "{step} not in {all}");
    }
}

#[test]
fn from_pulls_an_image_the_store_lacks() {
    let registry = Registry::start(Setup::Plain);
    let dir = TempDir::new("cli-build-pull");
    let layout = dir.join("layout");
    write_oci_layout(&layout, &[(&busybox_image(), "bb")]);
    let base = registry.reference("tools/busybox:1");
    registry.skopeo_copy(
        &format!("oci:{}:bb", layout.display()),
        &format!("docker://{base}"),
        &[],
    );
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nRUN [\"/bin/busybox\", \"touch\", \"/made\"]\n"),
    )
    .unwrap();
    let store = dir.arg("store");
    let build = || {
        cmd(env!("CARGO_BIN_EXE_layercake"))
            .args(["--root", &store, "build", "-t", "app:1"])
            .arg(&context)
            .run_text()
    };
    let first = build();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], format!("Step 1/2 : FROM {base}"), "{first}");
    assert_eq!(lines[1], "1: Pulling from tools/busybox", "{first}");
    assert!(
        lines.contains(&format!("Status: Downloaded newer image for {base}").as_str()),
        "{first}"
    );
    let made = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &store, "ls", "app:1", "/"])
        .run_text();
    assert!(made.lines().any(|l| l.ends_with("made")), "{made}");
    // The base is in the store now: nothing is pulled again, and the RUN is cached.
    let mark = registry.log_mark();
    let again = build();
    assert!(!again.contains("Pulling from"), "{again}");
    assert!(again.contains(" ---> Using cache"), "{again}");
    assert!(registry.accesses_since(mark).is_empty(), "{again}");
}
