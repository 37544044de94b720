//! The build engine through the public API, with the in-process executor: stages, ARG
//! scope, every instruction's config and history row, COPY's rules.

use layercake::build::{Build, Context, InProcess, RunStep};
use layercake::{Container, Error, Image, Layer};

/// The PATH the classic builder gives a stage whose base sets none.
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn history(image: &Image) -> Vec<(String, bool)> {
    image
        .config()
        .file()
        .history
        .iter()
        .map(|h| (h.created_by.clone().unwrap_or_default(), h.empty_layer))
        .collect()
}

/// The image's `Env`.
fn env(image: &Image) -> &[String] {
    &image.config().container_config().env
}

fn last_row(image: &Image) -> (String, bool) {
    history(image).pop().unwrap()
}

fn build(text: &str) -> Image {
    Build::new(text).run().unwrap().image
}

fn busybox() -> Image {
    let layer = Layer::builder()
        .file("bin/sh", "ELF")
        .file(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nme:x:1000:1001::/home/me:/bin/sh\n",
        )
        .file("etc/group", "root:x:0:\nstaff:x:50:\nme:x:1001:\n")
        .build()
        .unwrap();
    Image::builder().layer(layer).cmd(["sh"]).build().unwrap()
}

fn with_busybox(text: &str) -> Build {
    Build::new(text).base_images(|name| match name {
        "busybox" => Ok(busybox()),
        other => Err(Error::Unsupported { what: other.into() }),
    })
}

/// An executor that writes `argv` joined and the env into `/out`.
fn recorder() -> InProcess<impl Fn(&mut Container, &RunStep) -> layercake::Result<()> + Send + Sync>
{
    InProcess::new(|c: &mut Container, step: &RunStep| {
        if step.argv.last().map(String::as_str) == Some("true") {
            return Ok(());
        }
        c.write(
            "out",
            format!("{}\n{}", step.argv.join(" "), step.env.join(",")),
        )
    })
}

#[test]
fn env_is_a_nop_row_with_two_spaces() {
    let image = build("FROM scratch\nENV A=b C=\"d e\"\n");
    assert_eq!(env(&image), [PATH, "A=b", "C=d e"]);
    assert_eq!(
        last_row(&image),
        ("/bin/sh -c #(nop)  ENV A=b C=d e".into(), true)
    );
}

#[test]
fn env_sees_the_old_values_throughout() {
    let image = build("FROM scratch\nENV a=1\nENV a=2 b=$a\n");
    assert_eq!(env(&image), [PATH, "a=2", "b=1"]);
}

#[test]
fn cmd_exec_and_shell_form() {
    let image = build("FROM scratch\nCMD [\"sh\"]\n");
    assert_eq!(
        image.config().container_config().cmd,
        Some(vec!["sh".to_string()])
    );
    assert_eq!(last_row(&image).0, "/bin/sh -c #(nop)  CMD [\"sh\"]");
    let image = build("FROM scratch\nCMD echo $HOME\n");
    let cmd = image.config().container_config().cmd.clone().unwrap();
    assert_eq!(cmd, ["/bin/sh", "-c", "echo $HOME"], "CMD never expands");
    assert_eq!(
        last_row(&image).0,
        "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"echo $HOME\"]"
    );
}

#[test]
fn entrypoint_clears_the_inherited_cmd_but_not_its_own() {
    let report = with_busybox("FROM busybox\nENTRYPOINT [\"a\"]\n")
        .run()
        .unwrap();
    let config = report.image.config().container_config().clone();
    assert_eq!(config.entrypoint, Some(vec!["a".to_string()]));
    assert_eq!(config.cmd, None);
    assert_eq!(
        last_row(&report.image),
        ("/bin/sh -c #(nop)  ENTRYPOINT [\"a\"]".into(), true)
    );
    let image = with_busybox("FROM busybox\nCMD [\"x\"]\nENTRYPOINT [\"a\"]\n")
        .run()
        .unwrap()
        .image;
    assert_eq!(
        image.config().container_config().cmd,
        Some(vec!["x".to_string()])
    );
}

#[test]
fn label_expose_user_volume_stopsignal_maintainer() {
    let image = build(
        "FROM scratch\nENV P=80 U=me\nLABEL k=v\nEXPOSE $P 53/udp\nUSER $U\nVOLUME /data\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane\n",
    );
    let c = image.config().container_config();
    assert_eq!(c.labels["k"], "v");
    assert!(c.exposed_ports.contains("80/tcp") && c.exposed_ports.contains("53/udp"));
    assert_eq!(c.user.as_deref(), Some("me"));
    assert!(c.volumes.contains("/data"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(image.config().file().author.as_deref(), Some("Jane"));
    let rows: Vec<String> = history(&image).into_iter().map(|r| r.0).collect();
    assert_eq!(
        rows[1..],
        [
            "/bin/sh -c #(nop)  LABEL k=v",
            "/bin/sh -c #(nop)  EXPOSE 53/udp 80",
            "/bin/sh -c #(nop)  USER me",
            "/bin/sh -c #(nop)  VOLUME [/data]",
            "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
            "/bin/sh -c #(nop)  MAINTAINER Jane",
        ]
    );
}

#[test]
fn workdir_creates_the_directory_and_is_relative_to_the_last() {
    let image = build("FROM scratch\nWORKDIR /app\nWORKDIR sub\n");
    assert_eq!(
        image.config().container_config().working_dir.as_deref(),
        Some("/app/sub")
    );
    let tree = image.tree().unwrap();
    let node = tree.lookup("app/sub").unwrap().unwrap();
    assert!(node.is_dir());
    assert_eq!(node.metadata().mode & 0o7777, 0o755);
    assert_eq!(
        last_row(&image),
        ("/bin/sh -c #(nop) WORKDIR /app/sub".into(), false)
    );
    let again = build("FROM scratch\nWORKDIR /app\nWORKDIR /app\n");
    assert_eq!(
        last_row(&again),
        ("/bin/sh -c #(nop) WORKDIR /app".into(), true),
        "nothing created"
    );
}

#[test]
fn shell_changes_run_and_the_nop_prefix() {
    let image = with_busybox("FROM busybox\nSHELL [\"/bin/bash\", \"-c\"]\nRUN make\nENV A=1\n")
        .executor(recorder())
        .run()
        .unwrap()
        .image;
    let rows = history(&image);
    let n = rows.len();
    assert_eq!(
        rows[n - 3].0,
        "/bin/bash -c #(nop)  SHELL [/bin/bash -c]",
        "classic commits SHELL with the new shell"
    );
    assert_eq!(rows[n - 2], ("/bin/bash -c make".into(), false));
    assert_eq!(rows[n - 1].0, "/bin/bash -c #(nop)  ENV A=1");
    assert!(image
        .tree()
        .unwrap()
        .read("out")
        .unwrap()
        .starts_with(b"/bin/bash -c make"));
}

#[test]
fn run_exec_form_and_empty_run() {
    let report = with_busybox("FROM busybox\nRUN [\"echo\", \"$HOME\"]\nRUN true\n")
        .executor(recorder())
        .run()
        .unwrap();
    let rows = history(&report.image);
    let n = rows.len();
    assert_eq!(rows[n - 2], ("echo $HOME".into(), false));
    assert_eq!(
        rows[n - 1],
        ("/bin/sh -c true".into(), true),
        "nothing changed"
    );
    assert!(report.steps[1].ran && report.steps[1].layer.is_some());
    assert!(report.steps[2].ran && report.steps[2].layer.is_none());
    assert_eq!(report.steps[2].instruction, "Step 3/3 : RUN true");
}

#[test]
fn run_without_executor_is_unsupported() {
    let err = Build::new("FROM scratch\nRUN make\n").run().unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
}

#[test]
fn run_with_args_in_scope_is_prefixed() {
    let image = Build::new("FROM scratch\nARG VER=1.0\nARG B\nENV B=env\nRUN make\n")
        .build_arg("B", "arg")
        .executor(recorder())
        .run()
        .unwrap()
        .image;
    let rows = history(&image);
    assert_eq!(rows[0], ("/bin/sh -c #(nop)  ARG VER=1.0".into(), true));
    assert_eq!(
        rows.last().unwrap().0,
        "|1 VER=1.0 /bin/sh -c make",
        "ENV overrides ARG"
    );
    let out = image.tree().unwrap().read("out").unwrap();
    assert!(String::from_utf8_lossy(&out).contains("VER=1.0"));
}

#[test]
fn build_args_only_for_declared_args() {
    let image = Build::new("FROM scratch\nARG A\nENV X=$A Y=${B:-unset}\n")
        .build_arg("A", "a")
        .build_arg("B", "b")
        .run()
        .unwrap()
        .image;
    assert_eq!(env(&image), [PATH, "X=a", "Y=unset"]);
}

#[test]
fn global_args_in_from_and_redeclared() {
    let text = "ARG BASE=busybox\nARG V=1\nFROM $BASE\nENV A=${V:-none}\nARG V\nENV B=$V\n";
    let image = with_busybox(text).run().unwrap().image;
    assert_eq!(env(&image), [PATH, "A=none", "B=1"]);
    let image = with_busybox(text).build_arg("V", "2").run().unwrap().image;
    assert_eq!(env(&image), [PATH, "A=none", "B=2"]);
}

#[test]
fn stages_target_and_copy_from() {
    let text = "FROM scratch AS one\nCOPY a /a\nFROM scratch AS two\nCOPY --from=one /a /b\nFROM scratch\nCOPY --from=1 /b /c\n";
    let ctx = Context::new().file("a", "hi");
    let image = Build::new(text).context(ctx.clone()).run().unwrap().image;
    assert_eq!(image.tree().unwrap().read("c").unwrap(), "hi");
    let two = Build::new(text)
        .context(ctx.clone())
        .target("two")
        .run()
        .unwrap();
    assert_eq!(two.image.tree().unwrap().read("b").unwrap(), "hi");
    assert_eq!(two.steps.len(), 4, "stops after the target");
    assert!(Build::new(text).context(ctx).target("nope").run().is_err());
}

#[test]
fn copy_a_file_history_and_mode() {
    let image = Build::new("FROM scratch\nCOPY a /dst\n")
        .context(Context::new().file("a", "hi"))
        .run()
        .unwrap()
        .image;
    let hash = "abd0d027c6af188e7413ffa1b6850732ae79b65c974550cdde5009055129eabc";
    assert_eq!(
        last_row(&image),
        (
            format!("/bin/sh -c #(nop) COPY file:{hash} in /dst "),
            false
        )
    );
    let tree = image.tree().unwrap();
    let node = tree.lookup("dst").unwrap().unwrap();
    assert_eq!((node.metadata().uid, node.metadata().gid), (0, 0));
}

#[test]
fn copy_trailing_slash_and_workdir_relative() {
    let ctx = Context::new().file("a", "1");
    let image = Build::new("FROM scratch\nWORKDIR /w\nCOPY a sub/\nCOPY a f\n")
        .context(ctx)
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("w/sub/a").unwrap(), "1");
    assert_eq!(tree.read("w/f").unwrap(), "1");
    assert_eq!(
        tree.lookup("w/sub").unwrap().unwrap().metadata().mode & 0o7777,
        0o755
    );
}

#[test]
fn copy_a_directory_merges_its_contents() {
    let ctx = Context::new().file("d/x", "x").file("d/e/y", "y");
    let image = Build::new("FROM scratch\nCOPY z /t/z\nCOPY d /t\n")
        .context(ctx.file("z", "z"))
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("t/x").unwrap(), "x");
    assert_eq!(tree.read("t/e/y").unwrap(), "y");
    assert_eq!(tree.read("t/z").unwrap(), "z", "merged, not replaced");
    assert!(last_row(&image).0.contains("COPY dir:"));
}

#[test]
fn copy_globs_and_several_sources() {
    let ctx = Context::new()
        .file("a.txt", "a")
        .file("b.txt", "b")
        .file("c.md", "c");
    let image = Build::new("FROM scratch\nCOPY *.txt /t/\n")
        .context(ctx.clone())
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("t/a.txt").unwrap(), "a");
    assert_eq!(tree.read("t/b.txt").unwrap(), "b");
    assert!(tree.lookup("t/c.md").unwrap().is_none());
    assert!(last_row(&image).0.contains("COPY multi:"));
    assert!(Build::new("FROM scratch\nCOPY *.rs /t/\n")
        .context(ctx)
        .run()
        .is_err());
}

#[test]
fn copy_chown_names_and_chmod() {
    let image = with_busybox("FROM busybox\nCOPY --chown=me:staff --chmod=600 a /a\nCOPY --chown=me a /b\nCOPY --chown=7 a /c\n")
        .context(Context::new().file("a", "1"))
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    let meta = |p: &str| tree.lookup(p).unwrap().unwrap().metadata().clone();
    assert_eq!(
        (meta("a").uid, meta("a").gid, meta("a").mode & 0o7777),
        (1000, 50, 0o600)
    );
    assert_eq!((meta("b").uid, meta("b").gid), (1000, 1001));
    assert_eq!((meta("c").uid, meta("c").gid), (7, 7));
}

#[test]
fn copy_expands_variables() {
    let image = Build::new("FROM scratch\nENV D=/opt\nCOPY a $D/\n")
        .context(Context::new().file("a", "1"))
        .run()
        .unwrap()
        .image;
    assert_eq!(image.tree().unwrap().read("opt/a").unwrap(), "1");
}

#[test]
fn add_of_a_url_is_unsupported() {
    let err = Build::new("FROM scratch\nADD https://example.com/x /x\n")
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }));
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let parent = Build::new("FROM scratch\nONBUILD ENV X=1\n")
        .run()
        .unwrap()
        .image;
    assert_eq!(last_row(&parent).0, "/bin/sh -c #(nop)  ONBUILD ENV X=1");
    let child = Build::new("FROM parent\nLABEL a=b\n")
        .base_images(move |_| Ok(parent.clone()))
        .run()
        .unwrap()
        .image;
    let c = child.config().container_config();
    assert_eq!(c.env, [PATH, "X=1"]);
    assert!(
        !c.extra.contains_key("OnBuild"),
        "triggers are not inherited"
    );
}

#[test]
fn healthcheck_and_arg_rows() {
    let image = build("FROM scratch\nARG X\nHEALTHCHECK CMD curl -f\n");
    let rows = history(&image);
    assert_eq!(rows[0].0, "/bin/sh -c #(nop)  ARG X");
    assert_eq!(
        rows[1].0,
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD-SHELL\" \"curl -f\"] \"0s\" \"0s\" \"0s\" '\\x00'}"
    );
    let hc = image
        .config()
        .container_config()
        .healthcheck
        .clone()
        .unwrap();
    assert_eq!(hc["Test"][0], "CMD-SHELL");
}

#[test]
fn word_errors_name_the_line() {
    let err = Build::new("FROM scratch\nENV A=${B\n").run().unwrap_err();
    assert!(matches!(err, Error::Dockerfile { line: 2, .. }), "{err:?}");
}

#[test]
fn add_of_a_local_tar_is_extracted_with_its_owners() {
    let entry = layercake::Entry::file("hi").mode(0o640).owner(5, 6);
    let tar = Layer::builder()
        .entry("x/y", entry)
        .build()
        .unwrap()
        .tar()
        .unwrap()
        .to_bytes()
        .unwrap();
    let image = Build::new("FROM scratch\nADD t.tar /dst/\nCOPY t.tar /copied\n")
        .context(Context::new().file("t.tar", tar))
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("dst/x/y").unwrap(), "hi");
    let meta = tree.lookup("dst/x/y").unwrap().unwrap().metadata().clone();
    assert_eq!((meta.uid, meta.gid, meta.mode & 0o7777), (5, 6, 0o640));
    assert!(
        tree.lookup("copied").unwrap().unwrap().contents().is_some(),
        "COPY does not extract"
    );
}

#[test]
fn copy_from_keeps_owners_unless_chown() {
    let text = "FROM scratch AS a\nCOPY --chown=7:8 f /f\nFROM scratch\nCOPY --from=a /f /kept\nCOPY --from=0 --chown=9:9 /f /set\nCOPY f /root\n";
    let image = Build::new(text)
        .context(Context::new().file("f", "1"))
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    let owner = |p: &str| {
        let m = tree.lookup(p).unwrap().unwrap().metadata().clone();
        (m.uid, m.gid)
    };
    assert_eq!(owner("kept"), (7, 8));
    assert_eq!(owner("set"), (9, 9));
    assert_eq!(owner("root"), (0, 0));
}

#[test]
fn copy_from_an_image() {
    let image = with_busybox("FROM scratch\nCOPY --from=busybox /etc/group /g\n")
        .run()
        .unwrap()
        .image;
    assert!(image
        .tree()
        .unwrap()
        .read("g")
        .unwrap()
        .starts_with(b"root:x:0:"));
}

#[test]
fn env_overrides_arg_in_expansion() {
    let image = Build::new("FROM scratch\nARG V=arg\nENV V=env\nLABEL v=$V\n")
        .run()
        .unwrap()
        .image;
    assert_eq!(image.config().container_config().labels["v"], "env");
}

#[test]
fn a_host_directory_context() {
    let dir = std::env::temp_dir().join(format!("layercake-build-ctx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/run.sh"), "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("d/run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("run.sh", dir.join("d/link")).unwrap();
    let context = Context::from_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let image = Build::new("FROM scratch\nCOPY d /app/\n")
        .context(context)
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("app/run.sh").unwrap(), "#!/bin/sh\n");
    assert_eq!(
        tree.lookup("app/run.sh").unwrap().unwrap().metadata().mode & 0o7777,
        0o750
    );
    let link = tree.lookup("app/link").unwrap().unwrap();
    assert_eq!(link.link_target().unwrap(), "run.sh");
}

#[test]
fn from_platform_names_the_scratch_image() {
    let image = build("FROM --platform=linux/arm64 scratch\nENV A=1\n");
    assert_eq!(image.inspect().architecture, "arm64");
    assert_eq!(image.inspect().os, "linux");
}

#[test]
fn from_an_earlier_stage_by_name_and_index_keeps_its_config() {
    let text = "FROM scratch AS base\nENV A=1\nFROM base\nENV B=2\nFROM 1\nENV C=3\n";
    let image = build(text);
    assert_eq!(env(&image), [PATH, "A=1", "B=2", "C=3"]);
}

#[test]
fn healthcheck_flags() {
    let image = build(
        "FROM scratch\nHEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD [\"check\"]\n",
    );
    let hc = image
        .config()
        .container_config()
        .healthcheck
        .clone()
        .unwrap();
    assert_eq!(hc["Test"], serde_json::json!(["CMD", "check"]));
    assert_eq!(hc["Interval"], 30_000_000_000u64);
    assert_eq!(hc["Timeout"], 3_000_000_000u64);
    assert_eq!(hc["Retries"], 3);
    assert_eq!(
        last_row(&image).0,
        "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD\" \"check\"] \"30s\" \"3s\" \"0s\" '\\x03'}"
    );
}

#[test]
fn a_context_directory_gives_small_and_large_files_as_they_are() {
    let dir = std::env::temp_dir().join(format!("layercake-build-large-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let large: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("data/large.bin"), &large).unwrap();
    std::fs::write(dir.join("data/small.txt"), "small\n").unwrap();
    let context = Context::from_dir(&dir).unwrap();
    let image = Build::new("FROM scratch\nCOPY data /srv/\n")
        .context(context)
        .run()
        .unwrap()
        .image;
    std::fs::remove_dir_all(&dir).unwrap();
    let tree = image.tree().unwrap();
    assert_eq!(tree.read("srv/large.bin").unwrap(), large);
    assert_eq!(tree.read("srv/small.txt").unwrap(), "small\n");
}

/// Each step's image records the container it ran in as the classic builder does: the run
/// config with `Cmd` the step's command, `Image` the parent step's image; a container id
/// for a config step (with `Hostname` its first 12 digits) and for RUN, none for COPY. The
/// ids come from the step, so a rebuild makes the same image.
#[test]
fn each_step_records_its_container_config() {
    let lines = [
        "FROM busybox",
        "ENV A=1",
        "ARG V",
        "RUN echo $V",
        "SHELL [\"/bin/sh\", \"-ec\"]",
        "COPY a.txt /dst/",
    ];
    // (Cmd, whether there is a container, whether Hostname is the container's short id)
    let want: [(&[&str], bool, bool); 5] = [
        (&["/bin/sh", "-c", "#(nop) ", "ENV A=1"], true, true),
        (&["/bin/sh", "-c", "#(nop) ", "ARG V"], true, true),
        (&["|1", "V=1", "/bin/sh", "-c", "echo $V"], true, false),
        (
            &["/bin/sh", "-ec", "#(nop) ", "SHELL [/bin/sh -ec]"],
            true,
            true,
        ),
        (&["/bin/sh", "-ec"], false, false),
    ];
    for (n, (cmd, has_container, short_host)) in want.iter().enumerate() {
        let text = lines[..n + 2].join("\n");
        let run = || {
            with_busybox(&text)
                .build_arg("V", "1")
                .executor(recorder())
                .context(Context::new().file("a.txt", "a\n"))
                .run()
                .unwrap()
        };
        let report = run();
        assert_eq!(report.image.id(), run().image.id(), "{text}: a rebuild");
        let file = report.image.config().file();
        let ran = &file.extra["container_config"];
        let got: Vec<&str> = ran["Cmd"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if n == 4 {
            assert_eq!(got[..2], cmd[..], "{text}");
            assert!(got[2].starts_with("#(nop) COPY file:"), "{text}: {got:?}");
            assert!(got[2].ends_with(" in /dst/ "), "{text}: {got:?}");
        } else {
            assert_eq!(got, cmd[..], "{text}");
        }
        let parent = report.steps[report.steps.len() - 2].image.unwrap();
        assert_eq!(ran["Image"], parent.to_string().as_str(), "{text}");
        let container = file.extra.get("container").and_then(|c| c.as_str());
        assert_eq!(container.is_some(), *has_container, "{text}");
        if let Some(c) = container {
            assert!(
                c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()),
                "{c}"
            );
        }
        let hostname = ran.get("Hostname").and_then(|h| h.as_str());
        match container.filter(|_| *short_host) {
            Some(c) => assert_eq!(hostname, Some(&c[..12]), "{text}"),
            None => assert_eq!(hostname, None, "{text}"),
        }
        // The runtime config is the step's config, its Cmd untouched.
        assert_eq!(file.config.cmd, Some(vec!["sh".to_owned()]), "{text}");
    }
}
