//! The store's command line, run as a program against a store in a temporary directory:
//! load, images, save, tag, rmi, prune, verify, df, and store names in the other commands.
#![cfg(feature = "cli")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TempDir;
use layercake::archive::{Format, Writer};
use layercake::{Image, Layer};

/// A store root, and the program run against it.
struct Cli {
    dir: TempDir,
}

impl Cli {
    fn new(label: &str) -> Cli {
        Cli {
            dir: TempDir::new(label),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_layercake"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .env_remove("LAYERCAKE_ROOT")
            .output()
            .expect("run layercake")
    }

    /// Runs, asserts success, returns standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "layercake {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Writes `image` as a docker-archive named `names`, returns the path.
    fn file(&self, name: &str, image: &Image, names: &[&str]) -> PathBuf {
        let path = self.dir.join(name);
        let mut tar = Vec::new();
        Writer::new(Format::DockerArchive)
            .image(image, names)
            .write(&mut tar)
            .unwrap();
        std::fs::write(&path, tar).unwrap();
        path
    }

    fn load(&self, file: &Path) -> String {
        self.ok(&["load", "-i", file.to_str().unwrap()])
    }
}

/// A base image and an app on it, made a day apart (the app newer).
fn base_and_app() -> (Image, Image) {
    let base = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/os-release", "ID=demo\n")
                .file("bin/sh", vec![7u8; 3000])
                .build()
                .unwrap(),
        )
        .commit(layercake::Commit::new().created(1_600_000_000))
        .build()
        .unwrap();
    let app = Image::builder()
        .base(&base)
        .layer(
            Layer::builder()
                .file("app/run", "#!/bin/sh\necho hi\n")
                .build()
                .unwrap(),
        )
        .cmd(["/app/run"])
        .commit(layercake::Commit::new().created(1_600_086_400))
        .build()
        .unwrap();
    (base, app)
}

fn short_diff_id(image: &Image, layer: usize) -> String {
    image.diff_ids()[layer].to_hex().to_string()[..12].to_owned()
}

fn short_id(image: &Image) -> String {
    image.id().to_hex().to_string()[..12].to_owned()
}

/// A store holding base and app, tagged `demo/base:1` and `demo/app:1`.
fn loaded(label: &str) -> (Cli, Image, Image) {
    let cli = Cli::new(label);
    let (base, app) = base_and_app();
    cli.load(&cli.file("base.tar", &base, &["demo/base:1"]));
    cli.load(&cli.file("app.tar", &app, &["demo/app:1"]));
    (cli, base, app)
}

#[test]
fn load_prints_a_line_per_layer_then_the_name() {
    let cli = Cli::new("cli-store-load");
    let (base, app) = base_and_app();
    let out = cli.load(&cli.file("base.tar", &base, &["demo/base:1"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "Loaded layer sha256:{} (",
            short_diff_id(&base, 0)
        )),
        "{out}"
    );
    assert!(lines[0].ends_with("kB)"), "a human size: {out}");
    assert_eq!(lines[1], "Loaded image: demo/base:1");

    let out = cli.load(&cli.file("app.tar", &app, &["demo/app:1", "demo/app:latest"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("Layer sha256:{} already exists", short_diff_id(&app, 0))
    );
    assert!(
        lines[1].starts_with(&format!("Loaded layer sha256:{} (", short_diff_id(&app, 1))),
        "{out}"
    );
    assert_eq!(
        &lines[2..],
        ["Loaded image: demo/app:1", "Loaded image: demo/app:latest"]
    );

    // Loading it again: every layer is there already.
    let again = cli.load(&cli.dir.join("app.tar"));
    assert_eq!(again.matches("already exists").count(), 2, "{again}");
    assert!(!again.contains("Loaded layer"), "{again}");

    // No name in the file: the id.
    let untagged = Image::builder().base(&base).cmd(["x"]).build().unwrap();
    let out = cli.load(&cli.file("untagged.tar", &untagged, &[]));
    assert!(
        out.ends_with(&format!("Loaded image ID: {}\n", untagged.id())),
        "{out}"
    );
}

#[test]
fn load_takes_every_image_of_a_file() {
    let cli = Cli::new("cli-store-load-two");
    let (base, app) = base_and_app();
    let path = cli.dir.join("both.tar");
    let mut tar = Vec::new();
    Writer::new(Format::DockerArchive)
        .image(&base, ["demo/base:1"])
        .image(&app, ["demo/app:1"])
        .write(&mut tar)
        .unwrap();
    std::fs::write(&path, tar).unwrap();
    let out = cli.load(&path);
    assert!(out.contains("Loaded image: demo/base:1"), "{out}");
    assert!(out.contains("Loaded image: demo/app:1"), "{out}");
    assert_eq!(out.matches("already exists").count(), 1, "{out}");
    let ids = cli.ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), 2, "{ids}");
}

#[test]
fn images_lists_newest_first_with_tags() {
    let (cli, base, app) = loaded("cli-store-images");
    let out = cli.ok(&["images"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        rows[0],
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{out}"
    );
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(
        rows[1][..3],
        ["demo/app", "1", short_id(&app).as_str()],
        "{out}"
    );
    assert_eq!(
        rows[2][..3],
        ["demo/base", "1", short_id(&base).as_str()],
        "{out}"
    );
    assert!(rows[1][3].ends_with("years ago"), "{out}");
    assert!(rows[1][4].ends_with("kB"), "{out}");

    let quiet = cli.ok(&["images", "-q"]);
    assert_eq!(quiet, format!("{}\n{}\n", short_id(&app), short_id(&base)));

    let full = cli.ok(&["images", "--no-trunc"]);
    assert!(full.contains(&app.id().to_string()), "{full}");
    let full_quiet = cli.ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(full_quiet, format!("{}\n{}\n", app.id(), base.id()));

    let digests = cli.ok(&["images", "--digests"]);
    let header = digests.lines().next().unwrap();
    // Docker's tabwriter: columns at least ten wide (`TAG       `).
    assert!(
        header.starts_with("REPOSITORY   TAG       DIGEST"),
        "{digests}"
    );
    let row = digests.lines().nth(1).unwrap();
    let digest = row.split_whitespace().nth(2).unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digests}"
    );
    // The digest names the image.
    let inspect = cli.ok(&["inspect", &format!("demo/app@{digest}")]);
    assert!(inspect.contains(&app.id().to_string()), "{inspect}");
}

#[test]
fn untagged_images_show_none() {
    let cli = Cli::new("cli-store-none");
    let (base, _) = base_and_app();
    cli.load(&cli.file("base.tar", &base, &[]));
    let out = cli.ok(&["images"]);
    let row = out.lines().nth(1).expect("a row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..3],
        ["<none>", "<none>", short_id(&base).as_str()],
        "{out}"
    );
}

#[test]
fn other_commands_read_stored_images() {
    let (cli, _base, app) = loaded("cli-store-names");
    let inspect: serde_json::Value =
        serde_json::from_str(&cli.ok(&["inspect", "demo/app:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], app.id().to_string());
    assert_eq!(inspect[0]["RepoTags"], serde_json::json!(["demo/app:1"]));

    // By a unique id prefix, with every tag it has.
    cli.ok(&["tag", "demo/app:1", "demo/app:2"]);
    let by_id: serde_json::Value =
        serde_json::from_str(&cli.ok(&["inspect", &short_id(&app)[..8]])).unwrap();
    assert_eq!(
        by_id[0]["RepoTags"],
        serde_json::json!(["demo/app:1", "demo/app:2"])
    );

    let history = cli.ok(&["history", "demo/app:1"]);
    assert!(history.starts_with("IMAGE"), "{history}");
    assert!(history.contains(&short_id(&app)), "{history}");

    let ls = cli.ok(&["ls", "demo/app:1", "/"]);
    assert_eq!(ls, "/app\n/bin\n/etc\n", "absolute, as ls -R prints them");
    assert_eq!(
        cli.ok(&["cat", "demo/app:1", "/etc/os-release"]),
        "ID=demo\n"
    );
    assert!(cli.ok(&["layers", "demo/app:1"]).contains("layer 1"));

    let rootfs = cli.dir.join("rootfs.tar");
    cli.ok(&["export", "demo/app:1", "-o", rootfs.to_str().unwrap()]);
    let layer = Layer::open(&rootfs).unwrap();
    let changes = layer.changeset().unwrap();
    let paths: Vec<String> = changes.entries().map(|(p, _)| p.to_string()).collect();
    assert!(paths.iter().any(|p| p == "app/run"), "{paths:?}");

    // Neither a file nor an image in the store.
    let missing = cli.run(&["inspect", "demo/nothing:1"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no such image in the store"), "{err}");
}

#[test]
fn tag_rmi_and_prune_change_the_listing() {
    let (cli, base, app) = loaded("cli-store-rmi");
    cli.ok(&["tag", "demo/app:1", "demo/app:2"]);
    let out = cli.ok(&["images"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(3)
            .eq(["demo/app", "2", &short_id(&app)])),
        "{out}"
    );

    let out = cli.ok(&["rmi", "demo/app:2"]);
    assert_eq!(out, "Untagged: demo/app:2\n");
    let out = cli.ok(&["rmi", "demo/app:1"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Untagged: demo/app:1");
    assert_eq!(lines[1], format!("Deleted: {}", app.id()));
    assert_eq!(lines[2], format!("Deleted: {}", app.diff_ids()[1]));
    assert_eq!(lines.len(), 3, "the base layer stays: {out}");
    assert_eq!(cli.ok(&["images", "-q"]), format!("{}\n", short_id(&base)));

    let failed = cli.run(&["rmi", "demo/app:1"]);
    assert_eq!(failed.status.code(), Some(1));

    // An untagged image goes with prune, and only it.
    let dangling = Image::builder()
        .base(&base)
        .layer(
            Layer::builder()
                .file("tmp/x", vec![1u8; 5000])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cli.load(&cli.file("dangling.tar", &dangling, &[]));
    assert!(cli.ok(&["images"]).contains("<none>"));
    let out = cli.ok(&["prune"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(
        out.contains(&format!("deleted: {}", dangling.id())),
        "{out}"
    );
    let reclaimed = out.lines().last().unwrap();
    assert!(reclaimed.starts_with("Total reclaimed space: "), "{out}");
    assert_ne!(reclaimed, "Total reclaimed space: 0B", "{out}");
    assert!(!cli.ok(&["images"]).contains("<none>"));
    assert_eq!(cli.ok(&["prune"]), "Total reclaimed space: 0B\n");
}

#[test]
fn verify_names_a_corrupt_blob() {
    let (cli, _, _) = loaded("cli-store-verify");
    let out = cli.ok(&["verify"]);
    assert!(out.starts_with("checked "), "{out}");
    assert!(out.ends_with("no problems found\n"), "{out}");

    let blobs = cli.root().join("blobs/sha256");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let victim = &names[0];
    std::fs::write(victim, b"not what it was").unwrap();
    let failed = cli.run(&["verify"]);
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout);
    let hex = victim.file_name().unwrap().to_str().unwrap();
    let problem = out
        .lines()
        .find(|l| l.contains(hex))
        .unwrap_or_else(|| panic!("{hex} not named: {out}"));
    assert!(problem.contains("blobs/sha256/"), "{out}");
}

#[test]
fn save_then_load_elsewhere_gives_the_same_image() {
    let (cli, base, app) = loaded("cli-store-save");
    let saved = cli.dir.join("saved.tar");
    cli.ok(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "demo/app:1",
        "demo/base:1",
    ]);
    let archive = layercake::archive::Archive::open(&saved).unwrap();
    let names: Vec<&[String]> = archive.images().iter().map(|i| i.names()).collect();
    assert_eq!(names, [["demo/app:1"], ["demo/base:1"]]);

    let other = Cli::new("cli-store-save-other");
    let out = other.load(&saved);
    assert!(out.contains("Loaded image: demo/app:1"), "{out}");
    assert_eq!(
        other.ok(&["images", "-q", "--no-trunc"]),
        format!("{}\n{}\n", app.id(), base.id())
    );

    // As an oci-archive, by id: the image keeps its tags.
    let oci = cli.dir.join("saved-oci.tar");
    cli.ok(&[
        "save",
        "-o",
        oci.to_str().unwrap(),
        &short_id(&app),
        "--format",
        "oci-archive",
    ]);
    let third = Cli::new("cli-store-save-third");
    let out = third.load(&oci);
    assert!(out.contains("Loaded image: demo/app:1"), "{out}");
    let inspect: serde_json::Value =
        serde_json::from_str(&third.ok(&["inspect", "demo/app:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], app.id().to_string());
}

#[test]
fn df_prints_bytes_held_and_shared() {
    let (cli, _, _) = loaded("cli-store-df");
    let out = cli.ok(&["df"]);
    let images: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("Images"))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(images[1], "2", "{out}");
    assert_ne!(images[2], "0B", "{out}");
    assert_ne!(images[3], "0B", "the base is shared: {out}");
    let layers = out.lines().find(|l| l.starts_with("Layers")).unwrap();
    assert_eq!(layers.split_whitespace().nth(1), Some("2"), "{out}");
}

#[test]
fn a_missing_root_is_not_created_by_reading() {
    let cli = Cli::new("cli-store-missing");
    assert_eq!(cli.ok(&["images", "-q"]), "");
    assert!(!cli.root().exists());
    let out = cli.run(&["inspect", "busybox"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image store"));
    assert!(!cli.root().exists());
}

#[test]
fn the_root_comes_from_the_environment_without_root() {
    let cli = Cli::new("cli-store-env");
    let (base, _) = base_and_app();
    let file = cli.file("base.tar", &base, &["demo/base:1"]);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_layercake"))
            .args(args)
            .env("LAYERCAKE_ROOT", cli.root())
            .output()
            .unwrap()
    };
    assert!(run(&["load", "-i", file.to_str().unwrap()])
        .status
        .success());
    assert!(
        cli.root().join("index.json").is_file(),
        "loaded into LAYERCAKE_ROOT"
    );
    let out = run(&["images", "-q"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", short_id(&base))
    );
    // --root wins over the environment.
    let elsewhere = cli.dir.join("elsewhere");
    let out = run(&["--root", elsewhere.to_str().unwrap(), "images", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn save_as_an_oci_layout_and_diff_stored_images() {
    let (cli, _base, app) = loaded("cli-store-oci");
    let layout = cli.dir.join("layout");
    cli.ok(&[
        "save",
        "-o",
        layout.to_str().unwrap(),
        "--format",
        "oci",
        "demo/app:1",
    ]);
    assert!(layout.join("index.json").is_file());
    let other = Cli::new("cli-store-oci-other");
    let out = other.ok(&["load", "--input", layout.to_str().unwrap()]);
    assert!(out.ends_with("Loaded image: demo/app:1\n"), "{out}");
    assert_eq!(
        other.ok(&["images", "-q", "--no-trunc"]),
        format!("{}\n", app.id())
    );

    let diff = cli.ok(&["diff", "demo/base:1", "demo/app:1"]);
    assert!(diff.lines().any(|l| l == "A /app/run"), "{diff}");
}

#[test]
fn bare_oci_ref_names_do_not_become_tags() {
    let cli = Cli::new("cli-store-refname");
    let (base, _) = base_and_app();
    let path = cli.dir.join("refname.tar");
    let mut tar = Vec::new();
    Writer::new(Format::OciArchive)
        .image_ref(&base, "v1.0")
        .write(&mut tar)
        .unwrap();
    std::fs::write(&path, tar).unwrap();
    let out = cli.load(&path);
    assert!(
        out.ends_with(&format!("Loaded image ID: {}\n", base.id())),
        "{out}"
    );
}
