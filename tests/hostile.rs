//! The hostile-input corpus (`tests/hostile/cases.rs`): every case must end in exactly the
//! outcome its row names, without a panic, and an unpack must change nothing outside its
//! directory. Prints nothing unless a case fails.
//!
//! The full-size resource cases (8 GiB bombs, a million entries, 10 000 layers:
//! `cases::large`) run in the bench, `cargo bench --bench hostile`; the corpus holds each of
//! them scaled down. To check them here too:
//! `HOSTILE_LARGE=1 cargo test --release --test hostile`.
//!
//! `cargo test --test hostile -- --ignored write_fuzz_seeds` writes the corpus's inputs as
//! seeds for the fuzz targets in `fuzz/`.

#[path = "hostile/cases.rs"]
mod cases;

use std::collections::BTreeMap;

use cases::{Expect, Op, Source};

#[test]
fn every_hostile_case_has_its_exact_outcome() {
    let mut all = cases::all();
    if std::env::var_os("HOSTILE_LARGE").is_some() {
        all.extend(cases::large());
    }
    // `HOSTILE_CASE=name` runs only the cases whose name contains it, and shows their outcomes
    // and times, input built (with `--nocapture`).
    let only = std::env::var("HOSTILE_CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &all {
        if let Some(only) = &only {
            if !case.name.contains(only.as_str()) {
                continue;
            }
        }
        ran += 1;
        let started = std::time::Instant::now();
        match case.run() {
            Ok(outcome) if only.is_some() => eprintln!(
                "{}/{} ({:.0} ms): {outcome}",
                case.category,
                case.name,
                started.elapsed().as_secs_f64() * 1e3
            ),
            Ok(_) => {}
            Err(why) => failures.push(format!("{}/{}: {why}", case.category, case.name)),
        }
    }
    assert!(ran > 0, "no case matches HOSTILE_CASE={only:?}");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_corpus_is_large_and_covers_every_category() {
    let all = cases::all();
    assert!(all.len() >= 60, "only {} cases", all.len());
    let mut by_category: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &all {
        *by_category.entry(case.category).or_default() += 1;
    }
    for category in [
        "digest",
        "compression",
        "tar header",
        "names",
        "symlinks",
        "hardlinks",
        "whiteouts",
        "archive",
        "exhaustion",
        "unpack",
    ] {
        assert!(
            by_category.get(category).copied().unwrap_or(0) >= 3,
            "category {category}: {by_category:?}"
        );
    }
    let large = cases::large();
    assert!(large.len() >= 6, "only {} large cases", large.len());
    let mut names: Vec<&str> = all.iter().chain(&large).map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        all.len() + large.len(),
        "case names are unique"
    );
}

/// Writes the corpus's inputs as seeds for the fuzz targets in `fuzz/`:
/// `fuzz/corpus/<target>/<case name>`, replacing what those directories held. Each target
/// gets at most 40 KiB of seeds: inputs that read successfully first (they reach the most
/// code), then the rest, smallest first; duplicates are written once. Run with `--ignored`.
#[test]
#[ignore = "writes files into fuzz/corpus/"]
fn write_fuzz_seeds() {
    const BUDGET: usize = 40 << 10;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    // (target, succeeds, case name, bytes)
    let mut seeds: Vec<(&str, bool, &str, Vec<u8>)> = Vec::new();
    for case in cases::all() {
        let prepared = (case.build)();
        let succeeds = matches!(
            prepared.expect,
            Expect::Tree(_) | Expect::Resolved(_) | Expect::Unpacked(_) | Expect::Check(_)
        );
        let mut add = |target, bytes: Vec<u8>| seeds.push((target, succeeds, case.name, bytes));
        match prepared.op {
            Op::LayerTar { tar, .. } => add("layer_tar", tar.to_vec()),
            Op::Blob { blob, .. } => add("blob", blob.to_vec()),
            // Inputs on disk are large by design; they would not fit the seed budget.
            Op::LayerFile { .. }
            | Op::Archive {
                archive: Source::File(_),
                ..
            } => {}
            Op::Archive {
                archive: Source::Bytes(bytes),
                ..
            } => {
                let target = if has_member(&bytes, "manifest.json") {
                    "docker_archive"
                } else {
                    "oci_archive"
                };
                add(target, bytes.to_vec());
            }
            Op::Apply { tars, .. } | Op::Resolve { tars, .. } | Op::Unpack { tars, .. } => {
                add("apply", join_layers(&tars));
                for tar in &tars {
                    add("layer_tar", tar.to_vec());
                }
            }
        }
    }
    seeds.sort_by(|a, b| (a.0, !a.1, a.3.len()).cmp(&(b.0, !b.1, b.3.len())));
    seeds.dedup_by(|a, b| a.0 == b.0 && a.3 == b.3);
    let mut used: BTreeMap<&str, usize> = BTreeMap::new();
    for (target, _, name, bytes) in &seeds {
        let used = used.entry(target).or_insert_with(|| {
            let _ = std::fs::remove_dir_all(root.join(target));
            std::fs::create_dir_all(root.join(target)).unwrap();
            0
        });
        if *used + bytes.len() > BUDGET {
            continue;
        }
        *used += bytes.len();
        let mut file = root.join(target).join(name);
        let mut n = 1;
        while file.exists() {
            n += 1;
            file = root.join(target).join(format!("{name}-{n}"));
        }
        std::fs::write(file, bytes).unwrap();
    }
    let total: usize = used.values().sum();
    assert_eq!(used.len(), 5, "seeds for every fuzz target: {used:?}");
    assert!(total <= 5 * BUDGET, "{total} bytes of seeds");
}

/// The layer separator of the `apply` fuzz target (see `fuzz/fuzz_targets/apply.rs`).
const SEPARATOR: &[u8] = b"\n--layercake-next-layer--\n";

fn join_layers(tars: &[bytes::Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, tar) in tars.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEPARATOR);
        }
        out.extend_from_slice(tar);
    }
    out
}

fn has_member(tar: &[u8], name: &str) -> bool {
    let mut archive = tar::Archive::new(tar);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries
        .flatten()
        .any(|e| e.path_bytes().as_ref() == name.as_bytes())
}

/// The command line on every hostile archive, blob and layer tar of the corpus: it never
/// panics, and when it refuses an input it exits 1 with exactly one `layercake: ` line on
/// standard error. (The CLI runs with the default limits, so some inputs a case refuses
/// under tight limits are accepted here: then it must exit 0.)
#[cfg(feature = "cli")]
#[test]
fn the_cli_fails_cleanly_on_every_hostile_input() {
    use std::path::PathBuf;
    use std::process::Command;

    let dir = std::env::temp_dir().join(format!("layercake-hostile-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = env!("CARGO_BIN_EXE_layercake");
    let mut ran = 0;
    let mut refused = 0;
    let mut problems = Vec::new();
    for case in cases::all() {
        let prepared = (case.build)();
        let input = dir.join("input");
        let write = |bytes: &[u8]| {
            std::fs::write(&input, bytes).unwrap();
            input.clone()
        };
        let (input, args): (PathBuf, &[&str]) = match prepared.op {
            Op::Archive {
                archive: Source::Bytes(bytes),
                ..
            } => (write(&bytes), &["inspect"]),
            Op::Archive {
                archive: Source::File(path),
                ..
            } => (path, &["inspect"]),
            Op::LayerTar { tar, .. } => (write(&tar), &["import"]),
            Op::Blob { blob, .. } => (write(&blob), &["import"]),
            Op::LayerFile { path, .. } => (path, &["import"]),
            _ => continue,
        };
        let mut command = Command::new(exe);
        command.args(args).arg(&input);
        if args == ["import"] {
            command.arg("-o").arg(dir.join("out.tar"));
        }
        let output = command.output().unwrap();
        ran += 1;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let name = format!("{}/{}", case.category, case.name);
        match output.status.code() {
            Some(0) => {}
            Some(1) => {
                refused += 1;
                let lines: Vec<&str> = stderr.lines().collect();
                if lines.len() != 1 || !lines[0].starts_with("layercake: ") {
                    problems.push(format!("{name}: stderr is not one error line: {stderr:?}"));
                }
            }
            other => problems.push(format!("{name}: exit {other:?}, stderr {stderr:?}")),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(ran >= 60, "only {ran} inputs went through the CLI");
    assert!(refused >= 40, "only {refused} of {ran} inputs were refused");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
