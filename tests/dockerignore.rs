//! `.dockerignore` as Docker reads it: the pattern rules of [`Ignore`] one behaviour a test,
//! `Context::from_dir` on real directories (what is left out, what is never read), and one
//! build against a real dockerd 20.10 classic builder whose `COPY . /ctx/` must see the same
//! paths as ours.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Dockerd, TempDir};
use layercake::build::{Build, Context, Ignore, IgnoreError, IgnoreErrorKind};

fn ignore(text: &str) -> Ignore {
    Ignore::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Asserts which of `paths` the patterns exclude (`true`) and keep (`false`).
fn check(text: &str, cases: &[(&str, bool)]) {
    let ignore = ignore(text);
    for &(path, excluded) in cases {
        assert_eq!(
            ignore.excludes(path),
            excluded,
            "patterns {text:?} on {path:?}: expected excluded={excluded}"
        );
    }
}

fn parse_error(text: &str) -> IgnoreError {
    match Ignore::parse(text) {
        Ok(i) => panic!("{text:?} parsed as {i:?}; Docker refuses it"),
        Err(e) => e,
    }
}

#[test]
fn patterns_are_anchored_at_the_context_root() {
    check(
        "foo\n",
        &[
            ("foo", true),
            ("foo/bar", true),
            ("a/foo", false),
            ("foobar", false),
        ],
    );
}

#[test]
fn star_matches_within_one_component_only() {
    check(
        "*.txt\nd/*\n",
        &[
            ("a.txt", true),
            (".txt", true),
            ("sub/a.txt", false),
            ("d/x", true),
            ("d/x/y", true), // through its parent d/x
            ("d", false),
        ],
    );
}

#[test]
fn double_star_at_the_start_matches_any_depth_including_none() {
    check(
        "**/*.log\n",
        &[
            ("a.log", true),
            ("x/a.log", true),
            ("x/y/z/a.log", true),
            ("a.logs", false),
        ],
    );
}

#[test]
fn double_star_in_the_middle_matches_zero_or_more_directories() {
    check(
        "a/**/b\n",
        &[
            ("a/b", true),
            ("a/x/b", true),
            ("a/x/y/b", true),
            ("a/xb", false),
            ("c/a/x/b", false),
        ],
    );
}

#[test]
fn double_star_at_the_end_matches_everything_below_but_not_the_directory() {
    check("a/**\n**\n", &[("x", true), ("x/y/z", true)]);
    check(
        "a/**\n",
        &[
            ("a", false),
            ("a/x", true),
            ("a/x/y", true),
            ("ab/x", false),
        ],
    );
}

#[test]
fn question_mark_is_one_character_but_not_a_slash() {
    check(
        "?.md\na?b\n",
        &[
            ("a.md", true),
            ("ab.md", false),
            (".md", false),
            ("axb", true),
            ("a/b", false),
        ],
    );
}

#[test]
fn character_classes_ranges_and_negation() {
    check(
        "[a-c].txt\nn[^0-9]\ne[\\-\\]]\n",
        &[
            ("a.txt", true),
            ("c.txt", true),
            ("d.txt", false),
            ("nx", true),
            ("n5", false),
            ("e-", true),
            ("e]", true),
            ("ex", false),
        ],
    );
}

#[test]
fn backslash_makes_the_next_character_literal() {
    check(
        "\\*.txt\na\\?\nb\\[1\\]\n",
        &[
            ("*.txt", true),
            ("x.txt", false),
            ("a?", true),
            ("ab", false),
            ("b[1]", true),
            ("b1", false),
        ],
    );
}

#[test]
fn exclamation_re_includes() {
    check(
        "*.md\n!README.md\n",
        &[
            ("CHANGES.md", true),
            ("README.md", false),
            ("main.rs", false),
        ],
    );
}

#[test]
fn the_last_matching_pattern_wins() {
    check("!a.txt\na.txt\n", &[("a.txt", true)]);
    check("a.txt\n!a.txt\n", &[("a.txt", false)]);
    check("a.txt\n!a.txt\na.txt\n", &[("a.txt", true)]);
    check(
        "*\n!keep\n!*.md\nsecret.md\n",
        &[
            ("keep", false),
            ("x.md", false),
            ("secret.md", true),
            ("other", true),
        ],
    );
}

#[test]
fn an_excluded_directory_excludes_everything_below_it() {
    check(
        "build\n**/node_modules\n",
        &[
            ("build", true),
            ("build/x/y/z", true),
            ("a/b/node_modules", true),
            ("a/b/node_modules/c/d", true),
            ("a/b/node_module/c", false),
        ],
    );
}

#[test]
fn a_re_include_inside_an_excluded_directory() {
    let rules = "target\n!target/keep\n";
    check(
        rules,
        &[
            ("target", true),
            ("target/other", true),
            ("target/keep", false),
            ("target/keep/inner", false),
        ],
    );
    let i = ignore(rules);
    assert!(i.descends_into("target"));
    assert!(!i.descends_into("target/other"));
    assert!(!i.descends_into("targ"));
    // Docker's walk looks inside an excluded directory only for a `!` pattern that names a
    // path below it, textually: a wildcard re-include does not make it look.
    let wild = ignore("target\n!**/keep\n");
    assert!(!wild.excludes("target/keep"));
    assert!(!wild.descends_into("target"));
    // Without any `!`, nothing excluded is looked into.
    assert!(!ignore("target\n").descends_into("target"));
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let text = "\u{feff}# a comment\n\n   spaced.txt   \n\t\n #not-a-comment\r\nwin.txt\r\n";
    check(
        text,
        &[
            ("spaced.txt", true),
            ("# a comment", false),
            ("#not-a-comment", true), // a `#` after spaces starts a pattern
            ("win.txt", true),        // `\r` is trimmed
        ],
    );
    assert!(ignore("# only\n\n   \n").is_empty());
    assert!(!ignore("# only\n\n   \n").excludes("anything"));
}

#[test]
fn dot_slash_and_slash_prefixed_patterns_are_cleaned() {
    check(
        "./a\n/b\nc/\nd//e\nf/../g\n/./h/\n! /b/keep\n",
        &[
            ("a", true),
            ("b", true),
            ("b/x", true),
            ("b/keep", false),
            ("c/x", true),
            ("d/e", true),
            ("g", true),
            ("f", false),
            ("h", true),
        ],
    );
}

#[test]
fn the_root_is_never_excluded() {
    let i = ignore("*\n**\n.\n");
    assert!(!i.excludes(""));
    assert!(!i.excludes("."));
    assert!(i.excludes("x"));
}

#[test]
fn invalid_patterns_are_errors_naming_the_line() {
    for (text, line, kind) in [
        ("!\n", 1, IgnoreErrorKind::LoneExclamation),
        ("ok\n!   \n", 2, IgnoreErrorKind::LoneExclamation),
        ("# c\n[\n", 2, IgnoreErrorKind::BadClass),
        ("a[]\n", 1, IgnoreErrorKind::BadClass),
        ("a[b-\n", 1, IgnoreErrorKind::BadClass),
        ("a[z-a]\n", 1, IgnoreErrorKind::BadClass),
        ("a[-z]\n", 1, IgnoreErrorKind::BadClass),
        ("x\ny\nend\\\n", 3, IgnoreErrorKind::TrailingBackslash),
    ] {
        let err = parse_error(text);
        assert_eq!((err.line(), err.kind()), (line, &kind), "{text:?}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!(".dockerignore line {line}: ")),
            "{err}"
        );
    }
    assert_eq!(parse_error("  a[  \n").pattern(), "a[");
}

// ---------------------------------------------------------------------------------------
// Context::from_dir on real directories

/// The paths (and kinds: `d`, `f`, `l`) that `COPY . /ctx/` copies from `context`.
fn copied(context: Context) -> BTreeMap<String, char> {
    let image = Build::new("FROM scratch\nCOPY . /ctx/\n")
        .context(context)
        .run()
        .unwrap()
        .image;
    let tree = image.tree().unwrap();
    tree.walk_under("ctx")
        .map(|(p, n)| {
            let p = p.to_string();
            let rel = p.strip_prefix("ctx/").unwrap_or(&p).to_owned();
            (rel, n.file_type().as_char())
        })
        .collect()
}

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

#[test]
fn from_dir_leaves_out_what_dockerignore_excludes() {
    let dir = TempDir::new("dockerignore-from-dir");
    let root = dir.path();
    for p in [
        "keep.txt",
        "a.log",
        "logs/x.log",
        "logs/important.log",
        "src/main.rs",
    ] {
        write(root, p, p);
    }
    write(root, ".dockerignore", "*.log\nlogs\n!logs/important.log\n");
    let paths = copied(Context::from_dir(root).unwrap());
    let names: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            ".dockerignore",
            "keep.txt",
            "logs",
            "logs/important.log",
            "src",
            "src/main.rs"
        ]
    );
}

#[test]
fn from_dir_removes_the_dockerfile_and_dockerignore_only_when_excluded() {
    let dir = TempDir::new("dockerignore-build-files");
    let root = dir.path();
    write(root, "Dockerfile", "FROM scratch\n");
    write(root, "app", "x");
    write(root, ".dockerignore", "Dockerfile\n.dockerignore\n");
    let paths = copied(Context::from_dir(root).unwrap());
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["app"]);

    write(root, ".dockerignore", "app\n");
    let paths = copied(Context::from_dir(root).unwrap());
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        [".dockerignore", "Dockerfile"]
    );
}

#[test]
fn a_dockerfile_in_an_excluded_directory_leaves_that_directory_empty() {
    let dir = TempDir::new("dockerignore-dockerfile-dir");
    let root = dir.path();
    write(root, "docker/Dockerfile", "FROM scratch\n");
    write(root, "docker/other", "");
    write(root, "top", "");
    let rules = ignore("docker\n.dockerignore\n");
    let paths = copied(Context::from_dir_with(root, &rules, "docker/Dockerfile").unwrap());
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        [("docker".to_owned(), 'd'), ("top".to_owned(), '-')]
    );
    // Named as the root's Dockerfile (or one outside the context), nothing of `docker` stays.
    for name in ["Dockerfile", "../Dockerfile"] {
        let paths = copied(Context::from_dir_with(root, &rules, name).unwrap());
        assert_eq!(paths.keys().collect::<Vec<_>>(), ["top"], "{name}");
    }
    // Not excluded, the Dockerfile is copied like any file.
    let paths =
        copied(Context::from_dir_with(root, &ignore("docker/other"), "docker/Dockerfile").unwrap());
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        ["docker", "docker/Dockerfile", "top"]
    );
}

/// Makes `root/<under>/d…d/d…d/…` nested so deep (30 components of 200 bytes) that its
/// full path is longer than PATH_MAX (4096): any path-based `stat` or `opendir` of the
/// innermost levels fails with ENAMETOOLONG, even as root (permissions do not stop root,
/// which is why `chmod 000` would prove nothing, and a FIFO or a symlink loop is never
/// opened by a walk that keeps symlinks as links and skips special files). Built one level
/// at a time relative to an open directory (`mkdirat`, `openat`).
fn too_deep(root: &Path, under: &str) {
    use rustix::fs::{mkdirat, open, openat, Mode, OFlags};
    std::fs::create_dir_all(root.join(under)).unwrap();
    let name = "d".repeat(200);
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut dir = open(root.join(under), flags, Mode::empty()).unwrap();
    for _ in 0..30 {
        mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
        dir = openat(&dir, name.as_str(), flags, Mode::empty()).unwrap();
    }
}

#[test]
fn from_dir_never_reads_below_an_excluded_directory() {
    let dir = TempDir::new("dockerignore-deep");
    let root = dir.path();
    write(root, "src/main.rs", "fn main() {}");
    write(root, "target/keep.txt", "kept");
    too_deep(root, "target/huge");
    // The proof that a walk below `target/huge` fails: without a .dockerignore it does.
    let err = Context::from_dir(root).expect_err("reading the too-deep tree must fail");
    assert!(err.to_string().contains("target/huge"), "{err}");

    write(root, ".dockerignore", "target\n.dockerignore\n");
    let paths = copied(Context::from_dir(root).unwrap());
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["src", "src/main.rs"]);

    // A `!` below `target` makes the walk look inside `target`, but still not inside
    // `target/huge`, which nothing can re-include.
    write(
        root,
        ".dockerignore",
        "target\n.dockerignore\n!target/keep.txt\n",
    );
    let paths = copied(Context::from_dir(root).unwrap());
    assert_eq!(
        paths.keys().collect::<Vec<_>>(),
        ["src", "src/main.rs", "target", "target/keep.txt"]
    );
}

#[test]
fn from_dir_with_takes_its_patterns_from_the_caller() {
    let dir = TempDir::new("dockerignore-with");
    let root = dir.path();
    write(root, "a.pyc", "");
    write(root, "a.py", "");
    write(root, ".dockerignore", "a.py\n");
    let paths = copied(Context::from_dir_with(root, &ignore("*.pyc"), "Dockerfile").unwrap());
    assert_eq!(paths.keys().collect::<Vec<_>>(), [".dockerignore", "a.py"]);
    let all = copied(Context::from_dir_with(root, &Ignore::default(), "Dockerfile").unwrap());
    assert_eq!(all.len(), 3);
}

#[test]
fn from_dir_refuses_a_bad_dockerignore_naming_the_line() {
    let dir = TempDir::new("dockerignore-bad");
    let root = dir.path();
    write(root, ".dockerignore", "ok\n# fine\nbad[\n");
    let err = Context::from_dir(root).unwrap_err();
    let layercake::Error::Dockerignore { path, source } = &err else {
        panic!("expected Error::Dockerignore, got {err:?}");
    };
    assert!(path.ends_with("/.dockerignore"), "{path}");
    assert_eq!(
        (source.line(), source.kind()),
        (3, &IgnoreErrorKind::BadClass)
    );
    let typed = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<IgnoreError>());
    assert_eq!(typed, Some(source), "the IgnoreError is the error's source");
    assert!(
        err.to_string()
            .contains(".dockerignore: .dockerignore line 3"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Against Docker 20.10's classic builder

/// Paths (with kinds) under `ctx/` in a container filesystem tar from `docker export`.
fn exported(tar_bytes: &[u8]) -> BTreeMap<String, char> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut paths = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_end_matches('/');
        let Some(rel) = path.strip_prefix("ctx/") else {
            continue;
        };
        let kind = match entry.header().entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Regular => '-',
            other => panic!("{rel}: unexpected {other:?}"),
        };
        paths.insert(rel.to_owned(), kind);
    }
    paths
}

#[test]
fn docker_classic_builder_copies_the_same_paths() {
    let dir = TempDir::new("dockerignore-docker");
    let root = dir.join("context");
    let files = [
        "Dockerfile",
        "README.md",
        "NOTES.md",
        "app/main.go",
        "app/main_test.go",
        "app/vendor/lib/lib_test.go",
        "docs/guide.md",
        "docs/README.md",
        "docs/img/a.png",
        "target/debug/app",
        "target/keep.txt",
        "node_modules/pkg/index.js",
        "logs/a.log",
        "logs/sub/b.log",
        "src/notes.log",
        "src/lib.rs",
        "src/x/y/deep/file",
        "src/x/y/deep/keep/k",
        "weird[1].txt",
        "q1.txt",
        "q12.txt",
        "#hash",
    ];
    for f in files {
        write(&root, f, f);
    }
    write(&root, "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    std::os::unix::fs::symlink("README.md", root.join("link")).unwrap();
    std::os::unix::fs::symlink("gone", root.join("dangling.md")).unwrap();
    write(
        &root,
        ".dockerignore",
        "# build files\n\
         .dockerignore\n\
         Dockerfile\n\
         *.md\n\
         !README.md\n\
         \x20 target  \n\
         !target/keep.txt\n\
         node_modules/\n\
         **/*.log\n\
         !logs/sub/b.log\n\
         app/**/*_test.go\n\
         /docs\n\
         !./docs/README.md\n\
         **/deep\n\
         !src/x/y/deep/keep\n\
         weird\\[1\\].txt\n\
         q?.txt\n\
         \x20#hash\n",
    );

    let ours = copied(Context::from_dir(&root).unwrap());

    let docker = Dockerd::start();
    let theirs = docker_copies(&docker, &root, &[]);

    assert!(theirs.contains_key("README.md") && !theirs.contains_key("NOTES.md"));
    // The one known difference, pinned so that it stays visible: the 20.10 CLI matches a
    // pattern against only one parent of a path, the one with as many components as the
    // pattern (moby's since-deprecated `Matches`). `**/deep` has two, so for
    // `src/x/y/deep/file` (in a directory walked for `!src/x/y/deep/keep`) it tries `src/x`
    // only, and sends the file. Later Docker (`MatchesOrParentMatches`, BuildKit) tries
    // every parent and leaves it out, as layercake does.
    let mut theirs = theirs;
    assert_eq!(theirs.remove("src/x/y/deep/file"), Some('-'));
    assert_eq!(
        ours, theirs,
        "layercake (left) and docker build (right) disagree on what COPY . /ctx/ copies"
    );

    // `-f docker/Dockerfile` in an excluded `docker/`: the daemon keeps the directory.
    let root = dir.join("dockerfile-dir");
    write(&root, "docker/Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    write(&root, "docker/other", "");
    write(&root, "t/u/v", "");
    write(&root, "top", "");
    write(&root, ".dockerignore", "docker\n.dockerignore\nt\n!t/u/v\n");
    let rules = Ignore::from_dir(&root).unwrap();
    let ours = copied(Context::from_dir_with(&root, &rules, "docker/Dockerfile").unwrap());
    let theirs = docker_copies(
        &docker,
        &root,
        &["-f", &format!("{}/docker/Dockerfile", root.display())],
    );
    assert_eq!(ours, theirs, "with -f docker/Dockerfile");
}

/// Builds `context` with the classic builder and lists what its `COPY . /ctx/` copied.
fn docker_copies(docker: &Dockerd, context: &Path, flags: &[&str]) -> BTreeMap<String, char> {
    docker
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--no-cache", "-q", "-t", "lc/ignore:1"])
        .args(flags)
        .arg(context)
        .run();
    let id = docker
        .docker()
        .args(["create", "lc/ignore:1", "/none"])
        .run_text();
    exported(&docker.docker().args(["export", id.trim()]).run())
}

#[test]
fn a_dockerignore_past_the_limit_is_refused_not_read_whole() {
    let dir = TempDir::new("dockerignore-limit");
    let line = "node_modules/**/*.map\n";
    let big = line.repeat((5 << 20) / line.len());
    std::fs::write(dir.join(".dockerignore"), big).unwrap();
    match Ignore::from_dir(dir.path()) {
        Err(layercake::Error::LimitExceeded { limit, max, .. }) => {
            assert_eq!((limit, max), (".dockerignore size", 4 << 20));
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}
