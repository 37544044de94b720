//! `layercake build` end to end: a context directory, a Dockerfile with COPY, ENV and a RUN
//! that really runs (util-linux `unshare`, as root), the image in the store under its tag.
#![cfg(feature = "cli")]

mod common;

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
fn build_refuses_a_dockerignore_it_would_not_honour() {
    let dir = TempDir::new("cli-build-ignore");
    let context = dir.join("context");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    std::fs::write(context.join(".dockerignore"), "secret\n").unwrap();
    let out = cmd(env!("CARGO_BIN_EXE_layercake"))
        .args(["--root", &dir.arg("store"), "build"])
        .arg(&context)
        .output();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".dockerignore is not supported yet"),
        "{stderr}"
    );
}
