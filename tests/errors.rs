//! Errors that can be trusted: no message carries raw input bytes, an I/O error says why,
//! messages name the host file and the right thing, an archive of several images says how
//! to pick one, and error fields are typed. Each test is named after the point it proves;
//! the ones that run the command line need `--features cli`.

#[path = "hostile/cases.rs"]
mod cases;

use std::path::PathBuf;

use bytes::Bytes;
use cases::{Op, Source, Tar};
use layercake::archive::{Archive, Format, Writer};
use layercake::layer::{Duplicates, ReadOptions};
use layercake::{Container, Error, Image, Layer, Tree};

/// The control characters (C0, DEL, C1) and text-reordering characters in a message, if
/// any: what must never reach a terminal from an error.
fn unprintable(message: &str) -> Vec<char> {
    message
        .chars()
        .filter(|&c| {
            c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                    | '\u{2060}'..='\u{206f}' | '\u{feff}')
        })
        .collect()
}

/// Asserts that a message holds nothing a terminal would act on.
fn assert_printable(message: &str, what: &str) {
    let bad = unprintable(message);
    assert!(bad.is_empty(), "{what}: {bad:?} in {message:?}");
}

/// Asserts that an error's message, and the message of the `io::Error` made from it, hold
/// nothing a terminal would act on; returns the message.
fn checked(err: Error, what: &str) -> String {
    let message = err.to_string();
    assert_printable(&message, what);
    assert_printable(&std::io::Error::from(err).to_string(), what);
    message
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("layercake-errors-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tar whose first header's checksum field holds `ESC[31m` (the issue's example).
fn escape_in_checksum() -> Vec<u8> {
    let mut h = cases::header(b'0', b"manifest.json", 0o644, 2, b"");
    h[148..156].copy_from_slice(b"\x1b[31m\0  ");
    Tar::new().raw(h, b"{}").end().to_vec()
}

/// Deterministic noise (xorshift), so a failure can be reproduced.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn sample_image(name: &str) -> Image {
    let base = Layer::builder()
        .file("etc/os-release", "ID=test\n")
        .build()
        .unwrap();
    let top = Layer::builder()
        .file(format!("srv/{name}"), vec![7u8; 40 << 10])
        .build()
        .unwrap();
    Image::builder()
        .layer(base)
        .layer(top)
        .commit(layercake::Commit::new().created(1))
        .build()
        .unwrap()
}

fn docker_archive(images: &[(&Image, &str)]) -> Vec<u8> {
    let mut writer = Writer::new(Format::DockerArchive);
    for (image, name) in images {
        writer = writer.image(image, [*name]);
    }
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    out
}

// ---------------------------------------------------------------------------------------
// 1. No message ever carries raw input bytes

/// Every case of the hostile corpus that fails, fails with a message free of control bytes;
/// and so do the targeted cases where the input's bytes are quoted: a path holding ESC and
/// a byte that is not UTF-8, the checksum field holding `ESC[31m`, a `manifest.json` whose
/// text `serde_json` quotes, and an archive of random bytes.
#[test]
fn no_message_carries_raw_input_bytes() {
    let mut failed = 0;
    for case in cases::all() {
        let prepared = (case.build)();
        let ran = prepared.op.run();
        if let Ok(Err(err)) = ran.result {
            failed += 1;
            checked(err, &format!("{}/{}", case.category, case.name));
        }
    }
    assert!(failed >= 40, "only {failed} corpus cases failed");

    // A path with ESC, BEL, DEL, a C1 control and a byte that is not UTF-8, quoted back.
    let name = b"etc/\x1b[31mred\x07\x7f\xc2\x9b\xff";
    let tar = Tar::new()
        .record(b'0', name, 0o644, b"1", b"")
        .record(b'0', name, 0o644, b"2", b"")
        .end();
    let strict = ReadOptions::new().duplicates(Duplicates::Reject);
    let err = Layer::from_tar_with(tar, &strict).unwrap_err();
    assert!(matches!(&err, Error::DuplicateEntry { path } if path == &name[..]));
    let message = checked(err, "duplicate path");
    assert_eq!(
        message,
        r"duplicate entry `etc/\x1b[31mred\x07\x7f\x9b\xff` in one layer"
    );

    let tree = Tree::new();
    let message = checked(tree.read(&name[..]).unwrap_err(), "lookup");
    assert!(message.contains(r"\x1b[31m"), "{message}");

    // The checksum field holding an escape sequence, as a layer and as an image archive.
    let tar = escape_in_checksum();
    checked(
        Layer::from_tar(Bytes::from(tar.clone())).unwrap_err(),
        "checksum as a layer",
    );
    checked(
        Archive::from_bytes(tar).unwrap_err(),
        "checksum as an archive",
    );

    // `serde_json` quotes what it refuses; the message escapes it.
    let manifest =
        "[{\"Config\":\"c.json\",\"RepoTags\":[\"a\"],\"Layers\":[],\"\u{1b}[31m\":\"x\u{1b}[0m\"";
    let tar = Tar::new().file("manifest.json", manifest).end();
    let message = checked(Archive::from_bytes(tar).unwrap_err(), "manifest.json");
    assert!(message.contains("manifest.json"), "{message}");

    // Random bytes, as an archive and as a layer.
    for seed in 1..=20 {
        let bytes = noise(3000, seed);
        checked(
            Archive::from_bytes(bytes.clone()).unwrap_err(),
            "random archive",
        );
        checked(Layer::from_blob(bytes).unwrap_err(), "random blob");
    }
}

/// The command line on every hostile input of the corpus, and on the targeted cases: no
/// control byte reaches standard error, other than the newline that ends the one line.
#[cfg(feature = "cli")]
#[test]
fn no_message_carries_raw_input_bytes_through_the_cli() {
    let scratch = Scratch::new("cli-corpus");
    let refused = std::cell::Cell::new(0);
    let run = |args: &[&std::ffi::OsStr], what: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
            .args(args)
            .env("LAYERCAKE_ROOT", scratch.join("store"))
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr)
            .unwrap_or_else(|e| panic!("{what}: stderr is not UTF-8: {e}"));
        if !output.status.success() {
            refused.set(refused.get() + 1);
            let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
            assert_printable(line, what);
            assert!(line.starts_with("layercake: "), "{what}: {line:?}");
        }
        stderr
    };
    let input = scratch.join("input");
    let out = scratch.join("out.tar");
    for case in cases::all() {
        let prepared = (case.build)();
        let name = format!("{}/{}", case.category, case.name);
        let (path, command): (PathBuf, &str) = match prepared.op {
            Op::Archive {
                archive: Source::Bytes(bytes),
                ..
            } => {
                std::fs::write(&input, &bytes).unwrap();
                (input.clone(), "inspect")
            }
            Op::Archive {
                archive: Source::File(path),
                ..
            } => (path, "inspect"),
            Op::LayerTar { tar: bytes, .. } | Op::Blob { blob: bytes, .. } => {
                std::fs::write(&input, &bytes).unwrap();
                (input.clone(), "import")
            }
            Op::LayerFile { path, .. } => (path, "import"),
            _ => continue,
        };
        if command == "inspect" {
            run(&["inspect".as_ref(), path.as_os_str()], &name);
        } else {
            run(
                &[
                    "import".as_ref(),
                    path.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                ],
                &name,
            );
        }
    }
    let refused = refused.get();
    assert!(refused >= 40, "only {refused} corpus inputs were refused");

    // The checksum field holding `ESC[31m`.
    std::fs::write(&input, escape_in_checksum()).unwrap();
    for command in ["inspect", "ls"] {
        let stderr = run(&[command.as_ref(), input.as_os_str()], "checksum");
        assert!(stderr.contains("checksum"), "{stderr}");
    }

    // A path and a name holding ESC, quoted back by the messages.
    let image = scratch.join("image.tar");
    std::fs::write(&image, docker_archive(&[(&sample_image("a"), "app:1")])).unwrap();
    let stderr = run(
        &[
            "cat".as_ref(),
            image.as_os_str(),
            "/etc/\x1b[31mred".as_ref(),
        ],
        "cat",
    );
    assert!(stderr.contains(r"\x1b[31mred"), "{stderr}");
    let named = format!("docker-archive:{}:\x1b[31mapp:1", image.display());
    let stderr = run(&["inspect".as_ref(), named.as_ref()], "name");
    assert!(stderr.contains(r"\x1b"), "{stderr}");
}

/// A file of random bytes given to `layercake inspect`: one short line, no binary.
#[cfg(feature = "cli")]
#[test]
fn a_file_of_random_bytes_given_to_inspect_prints_one_short_line() {
    let scratch = Scratch::new("random");
    let input = scratch.join("random.bin");
    for seed in 1..=10 {
        std::fs::write(&input, noise(3000, seed)).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
            .arg("inspect")
            .arg(&input)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8(output.stderr).unwrap();
        let line = stderr.strip_suffix('\n').unwrap();
        assert_printable(line, "random");
        assert!(line.len() < 200, "{line:?}");
        assert!(
            line.starts_with(&format!("layercake: {}: ", input.display())),
            "{line}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. `Display` of an I/O error includes its cause

#[test]
fn io_error_display_includes_its_cause() {
    let err = Layer::open("/nonexistent/layer.tar").unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    assert_eq!(
        err.to_string(),
        "i/o error while opening /nonexistent/layer.tar: No such file or directory (os error 2)"
    );
    let err = Archive::open("/nonexistent/image.tar").unwrap_err();
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}

/// The command line prints the cause once, not again as a source.
#[cfg(feature = "cli")]
#[test]
fn io_error_display_includes_its_cause_once_on_the_cli() {
    let scratch = Scratch::new("io");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
        .args(["import", "/nonexistent/rootfs.tar", "-o"])
        .arg(scratch.join("out.tar"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/rootfs.tar"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// 3. Messages name the host file and the right thing

/// An image file cut short inside a layer member: the message names the file and says it
/// is truncated, not that a layer tar is invalid.
#[test]
fn a_truncated_archive_names_the_file() {
    let scratch = Scratch::new("truncated");
    let full = docker_archive(&[(&sample_image("a"), "app:1")]);
    let path = scratch.join("app.tar");
    for cut in [full.len() / 2, full.len() - 1500, 700] {
        std::fs::write(&path, &full[..cut]).unwrap();
        let err = Archive::open(&path).unwrap_err();
        assert!(matches!(err, Error::InvalidArchive { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}: archive truncated", path.display())),
            "cut at {cut}: {message}"
        );
        assert!(!message.contains("invalid layer tar"), "{message}");
    }
}

#[cfg(feature = "cli")]
#[test]
fn a_truncated_archive_names_the_file_on_the_cli() {
    let scratch = Scratch::new("truncated-cli");
    let full = docker_archive(&[(&sample_image("a"), "app:1")]);
    let path = scratch.join("app.tar");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    for command in ["inspect", "ls"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
            .arg(command)
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("layercake: {}: archive truncated", path.display())),
            "{stderr}"
        );
    }
}

#[test]
fn a_directory_that_is_not_a_layout_says_so_with_its_path() {
    let scratch = Scratch::new("not-layout");
    let dir = scratch.join("empty");
    std::fs::create_dir(&dir).unwrap();
    let message = Archive::open(&dir).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: ", dir.display())),
        "{message}"
    );
    assert!(message.contains("not an OCI image layout"), "{message}");
}

#[test]
fn an_empty_path_says_path_is_empty() {
    for err in [
        Archive::open("").unwrap_err(),
        Layer::open("").err().unwrap(),
    ] {
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput)
        );
        assert!(err.to_string().ends_with("path is empty"), "{err}");
    }
}

#[cfg(feature = "cli")]
#[test]
fn an_empty_path_says_path_is_empty_on_the_cli() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
        .args(["inspect", ""])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("path is empty"), "{stderr}");
}

/// A blob refused for its decompression ratio: the message names the blob, the limit, and
/// how to raise it.
#[test]
fn a_refused_ratio_names_the_blob_and_how_to_raise_it() {
    let case = cases::all()
        .into_iter()
        .find(|c| c.name == "zstd_bomb_vs_ratio")
        .expect("the corpus has the zstd bomb");
    let prepared = (case.build)();
    let Op::Blob { blob, options } = &prepared.op else {
        panic!("the bomb is a blob");
    };
    let digest = layercake::Digest::sha256(blob);
    let err = Layer::from_blob_with(blob.clone(), options).unwrap_err();
    match &err {
        Error::RatioExceeded {
            blob, value, max, ..
        } => {
            assert_eq!(*blob, Some(digest));
            assert!(value > max);
            assert_eq!(*max, layercake::Limits::default().ratio_in_force());
        }
        other => panic!("expected RatioExceeded, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("layer blob {digest}: ")),
        "{message}"
    );
    assert!(message.contains("decompression ratio"), "{message}");
    assert!(message.contains("Limits::ratio"), "{message}");
    assert!(message.contains("zero-filled"), "{message}");
}

// ---------------------------------------------------------------------------------------
// 4. `AmbiguousReference`: several images and no name asked

#[test]
fn ambiguous_reference_lists_the_names_and_how_to_pick_one() {
    let file = docker_archive(&[
        (&sample_image("a"), "app:1"),
        (&sample_image("b"), "peers/tool:2"),
    ]);
    let archive = Archive::from_bytes(file).unwrap();
    let err = archive.only_image().unwrap_err();
    match &err {
        Error::AmbiguousReference {
            reference,
            candidates,
        } => {
            assert_eq!(reference, "");
            assert_eq!(candidates, &["app:1", "peers/tool:2"]);
        }
        other => panic!("expected AmbiguousReference, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "several images and no name to pick one: app:1, peers/tool:2; name one of them"
    );
}

#[cfg(feature = "cli")]
#[test]
fn ambiguous_reference_lists_the_names_and_how_to_pick_one_on_the_cli() {
    let scratch = Scratch::new("ambiguous");
    let path = scratch.join("two.tar");
    let file = docker_archive(&[
        (&sample_image("a"), "app:1"),
        (&sample_image("b"), "peers/tool:2"),
    ]);
    std::fs::write(&path, file).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
        .arg("inspect")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("app:1, peers/tool:2"), "{stderr}");
    let hint = format!("docker-archive:{}:app:1", path.display());
    assert!(stderr.contains(&hint), "{stderr}");
    // And the hint works.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_layercake"))
        .args(["inspect", &hint])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

// ---------------------------------------------------------------------------------------
// 5. Typed error fields

/// A blob shorter than its descriptor says: `SizeMismatch` with sizes as numbers.
#[test]
fn typed_error_fields_size_mismatch_is_its_own_variant() {
    let scratch = Scratch::new("size");
    let layout = scratch.join("layout");
    let image = sample_image("a");
    Writer::new(Format::OciLayout)
        .image(&image, ["app:1"])
        .write_dir(&layout)
        .unwrap();
    let config = image.id();
    let blob = layout.join("blobs/sha256").join(&config.to_string()[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let size = bytes.len() as u64;
    bytes.push(b' ');
    std::fs::write(&blob, &bytes).unwrap();
    let err = Archive::open(&layout).unwrap_err();
    match &err {
        Error::SizeMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!((*expected, *actual), (size, size + 1));
            assert!(what.contains(&config.to_string()), "{what}");
        }
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
    assert!(
        err.to_string().ends_with(&format!(
            "size mismatch, expected {size} bytes, got {}",
            size + 1
        )),
        "{err}"
    );
}

/// Digests in errors are `Digest`s: the mismatch of a layer's DiffId compares as values.
#[test]
fn typed_error_fields_digests_are_digests() {
    let image = sample_image("a");
    let other = Layer::builder().file("x", "y").build().unwrap();
    let layers: Vec<Layer> = image.layers().cloned().collect();
    let err = Image::from_parts(
        image.config().as_bytes().clone(),
        vec![layers[0].clone(), other.clone()],
    )
    .unwrap_err();
    match err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            let expected: layercake::Digest = expected;
            assert_eq!(expected, layers[1].diff_id().digest());
            assert_eq!(actual, other.diff_id().digest());
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

/// A mode with bits outside 0o7777 is `InvalidMode`, not `InvalidPath`.
#[test]
fn typed_error_fields_a_bad_mode_is_its_own_variant() {
    let image = Image::builder()
        .layer(Layer::builder().file("etc/motd", "hi").build().unwrap())
        .build()
        .unwrap();
    let mut container = Container::new(&image).unwrap();
    let err = container
        .set_permissions("etc/motd", 0o17_7777)
        .unwrap_err();
    match &err {
        Error::InvalidMode { path, mode } => {
            assert_eq!(path, "etc/motd");
            assert_eq!(*mode, 0o17_7777);
        }
        other => panic!("expected InvalidMode, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "invalid mode 0o177777 for `etc/motd`: bits outside 0o7777"
    );
}

/// Paths inside an image are kept as their bytes: a name that is not UTF-8 comes back
/// exactly, and its message shows the byte escaped.
#[test]
fn typed_error_fields_paths_are_bytes() {
    let tree = Tree::new();
    let err = tree.read(&b"data/latin1-caf\xe9.txt"[..]).unwrap_err();
    match &err {
        Error::NotFound { path } => assert_eq!(&path[..], b"data/latin1-caf\xe9.txt"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r"no such file or directory `data/latin1-caf\xe9.txt`"
    );
}

/// A blob that does not decompress names its digest as a `Digest`.
#[test]
fn typed_error_fields_an_invalid_blob_names_its_digest() {
    let layer = Layer::builder().file("a", "data").build().unwrap();
    let packed = layer
        .compress(
            layercake::Compression::Gzip,
            layercake::Compression::Gzip.default_level(),
        )
        .unwrap();
    let blob = packed.blob().contents().to_bytes().unwrap();
    let cut = Bytes::copy_from_slice(&blob[..blob.len() - 8]);
    let digest = layercake::Digest::sha256(&cut);
    let err = Layer::from_blob(cut).unwrap_err();
    match &err {
        Error::InvalidBlob {
            digest: Some(d), ..
        } => assert_eq!(*d, digest),
        other => panic!("expected InvalidBlob with a digest, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!("blob {digest}: ")),
        "{err}"
    );
}
