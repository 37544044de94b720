//! Criterion benches for the Dockerfile build engine: what `layercake build` spends its time
//! on before and around the RUN commands it does not control.
//!
//! - `parse`: `Dockerfile::parse` of a generated ~200-instruction, multi-stage Dockerfile
//!   (continuations, comments between continued lines, ENV/LABEL pairs, heredocs, exec and
//!   shell forms), in bytes: it is parsed once per build, so it should be far below a
//!   millisecond.
//! - `lexer`: `Lexer::process_word` over a batch of words with `$v`, `${v:-w}`, `${v%%p}`,
//!   quotes and escapes, in words: every expanding instruction goes through it.
//! - `build`: a ten-step build with five RUNs (an `InProcess` closure writing a file each) on
//!   a busybox-like base of a few hundred files, in memory (`Build::run`): the engine's own
//!   cost per step, commits included, with nothing run for real.
//! - `build_cache`: the same build with `Build::run_in`: a first run in a fresh in-memory
//!   store (`no_cache`), a rebuild in that store taken wholly from the cache, and a rebuild
//!   in a store on disk, opened each time as `layercake build` opens it. The cached rebuild is
//!   what an edit-build loop pays when nothing changed.
//! - `ignore`: `Ignore::excludes` of 10 000 generated paths against a 20-pattern
//!   `.dockerignore` (`**`, `!`, classes), in paths.
//! - `context`: `Context::from_dir` on a generated directory of ~2 000 small files, without a
//!   `.dockerignore` and with one that leaves most of it out (excluded directories are not
//!   walked).
//!
//! Run: `cargo bench --bench dockerfile` (add `-- build_cache` etc. to pick one group). The
//! temporary directories are made under `std::env::temp_dir()` and removed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use layercake::build::{Build, Context, Dockerfile, Ignore, InProcess, Lexer, RunStep};
use layercake::store::AddOptions;
use layercake::{Container, Entry, Image, Layer, Store};

/// A short measurement: the whole run should stay near two minutes on a busy machine.
fn quick<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

/// A multi-stage Dockerfile of about 200 instructions, shaped like real ones: a builder stage
/// per component, then a runtime stage copying from each.
fn large_dockerfile() -> String {
    let mut d = String::new();
    d.push_str("# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended\n\n");
    d.push_str(
        "# The base everything builds on.\nARG BASE=debian:bookworm-slim\nARG VERSION=1.4.2\n\n",
    );
    for stage in 0..6 {
        let _ = write!(
            d,
            "# --- component {stage} ---\n\
             FROM ${{BASE}} AS build{stage}\n\
             ARG VERSION\n\
             ARG TARGETARCH=amd64\n\
             ENV DEBIAN_FRONTEND=noninteractive \\\n    \
                 LANG=C.UTF-8 \\\n    \
                 PATH=\"/opt/c{stage}/bin:$PATH\" \\\n    \
                 COMPONENT_HOME=/opt/c{stage}\n\
             LABEL org.opencontainers.image.title=\"component {stage}\" \\\n      \
                   org.opencontainers.image.version=\"${{VERSION}}\" \\\n      \
                   org.opencontainers.image.source=https://example.invalid/c{stage}\n\
             WORKDIR /src/c{stage}\n\
             RUN apt-get update \\\n \
                 # the toolchain\n \
                 && apt-get install -y --no-install-recommends \\\n        \
                    build-essential ca-certificates curl git pkg-config \\\n \
                 && rm -rf /var/lib/apt/lists/*\n\
             COPY --chown=1000:1000 --chmod=0644 go.mod go.sum ./\n\
             RUN --mount=type=cache,target=/root/.cache go mod download\n\
             COPY <<EOF /etc/c{stage}.conf\n\
             listen = 0.0.0.0:80{stage:02}\n\
             workers = 4\n\
             log = /var/log/c{stage}.log\n\
             EOF\n\
             RUN <<-EOT bash\n\
             \tset -eux\n\
             \tmkdir -p /opt/c{stage}/bin\n\
             \techo built > /opt/c{stage}/STAMP\n\
             \tEOT\n"
        );
        for step in 0..18 {
            match step % 6 {
                0 => {
                    let _ = writeln!(
                        d,
                        "RUN [\"/bin/sh\", \"-c\", \"make -j$(nproc) target{step} V=${{VERSION%%.*}}\"]"
                    );
                }
                1 => {
                    let _ = writeln!(
                        d,
                        "RUN ./configure --prefix=/opt/c{stage} --enable-feature-{step} \\\n    \
                         && make install DESTDIR=/out/{stage}"
                    );
                }
                2 => {
                    let _ = writeln!(
                        d,
                        "ENV STEP_{step}=done CFLAGS=\"-O2 -g\" LDFLAGS='-Wl,-z,relro' NAME_{step}=c{stage}"
                    );
                }
                3 => {
                    let _ = writeln!(
                        d,
                        "# copy the sources for part {step}\nCOPY src/part{step}/ ./part{step}/"
                    );
                }
                4 => {
                    let _ = writeln!(
                        d,
                        "LABEL step.{step}=\"${{NAME_{}:-unnamed}}\" step.{step}.arch=${{TARGETARCH}}",
                        step - 2
                    );
                }
                _ => {
                    let _ = writeln!(
                        d,
                        "RUN test -f /opt/c{stage}/STAMP && echo \"part {step} ok\""
                    );
                }
            }
        }
        d.push('\n');
    }
    d.push_str(
        "FROM ${BASE} AS runtime\n\
         ARG VERSION\n\
         RUN groupadd -r app && useradd -r -g app app\n",
    );
    for stage in 0..6 {
        let _ = writeln!(
            d,
            "COPY --from=build{stage} --link /out/{stage}/ /\n\
             COPY --from=build{stage} /etc/c{stage}.conf /etc/"
        );
    }
    d.push_str(
        "USER app:app\n\
         WORKDIR /home/app\n\
         EXPOSE 8000/tcp 8001/tcp 8002/udp\n\
         VOLUME [\"/data\", \"/var/log\"]\n\
         STOPSIGNAL SIGTERM\n\
         HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -fsS http://localhost:8000/health || exit 1\n\
         SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n\
         ONBUILD RUN echo \"derived from ${VERSION}\"\n\
         ENTRYPOINT [\"/opt/c0/bin/run\", \"--config\", \"/etc/c0.conf\"]\n\
         CMD [\"serve\"]\n",
    );
    d
}

fn parse(c: &mut Criterion) {
    let text = large_dockerfile();
    let parsed = Dockerfile::parse(&text).expect("the generated Dockerfile parses");
    let count = parsed.instructions().len();
    assert!((180..=260).contains(&count), "{count} instructions");
    assert!(parsed
        .instructions()
        .iter()
        .any(|i| !i.heredocs().is_empty()));
    let mut group = quick(c, "parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(format!("{count}_instructions_{}_bytes", text.len()), |b| {
        b.iter(|| black_box(Dockerfile::parse(black_box(&text)).expect("parse")))
    });
    group.finish();
}

/// 1 000 words as ENV, LABEL, WORKDIR and COPY arguments write them.
fn words() -> Vec<String> {
    let forms = [
        "$HOME/.cache",
        "${PREFIX}/lib/${NAME}-${VERSION}.so",
        "${ARCH:-amd64}",
        "${MISSING:-/usr/local}/bin",
        "${VERSION%%.*}",
        "${VERSION%.*}",
        "${FILE##*/}",
        "${PATH//:/ }",
        "\"$NAME version $VERSION\"",
        "'literal $NAME'",
        r"my\ file\ \$NAME",
        "\"${CFLAGS} -DNDEBUG\"",
        "/opt/app-${VERSION:+v$VERSION}",
        "plain-word-without-anything",
        "${NAME}_${ARCH:-x86_64}.tar.gz",
        "\"${HOME}\"/'quoted part'/${NAME}",
    ];
    (0..1000)
        .map(|i| {
            format!(
                "{}{}",
                forms[i % forms.len()],
                if i % 3 == 0 { "/x" } else { "" }
            )
        })
        .collect()
}

fn lexer(c: &mut Criterion) {
    let env: BTreeMap<String, String> = [
        ("HOME", "/root"),
        ("PREFIX", "/usr/local"),
        ("NAME", "layercake"),
        ("VERSION", "1.24.3"),
        ("FILE", "/src/pkg/archive/tar/reader.go"),
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("CFLAGS", "-O2 -g -pipe"),
        ("LANG", "C.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let words = words();
    let lexer = Lexer::default();
    for w in &words {
        lexer.process_word(w, &env).expect("each word expands");
    }
    let mut group = quick(c, "lexer");
    group.throughput(Throughput::Elements(words.len() as u64));
    group.bench_function("process_word_1000_words", |b| {
        b.iter(|| {
            for w in &words {
                black_box(lexer.process_word(black_box(w), &env).expect("expand"));
            }
        })
    });
    group.finish();
}

/// A busybox-like image: one 1 MiB binary, ~300 applet symlinks to it, /etc files, and a few
/// dozen small files under /usr/share.
fn busybox() -> Image {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let binary: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut b = Layer::builder().entry("bin/busybox", Entry::file(binary).mode(0o755).mtime(1));
    for i in 0..300 {
        let dir = ["bin", "sbin", "usr/bin", "usr/sbin"][i % 4];
        b = b.entry(
            format!("{dir}/applet{i:03}"),
            Entry::symlink("/bin/busybox").mtime(1),
        );
    }
    for name in [
        "passwd",
        "group",
        "shadow",
        "hosts",
        "hostname",
        "resolv.conf",
        "profile",
    ] {
        b = b.entry(
            format!("etc/{name}"),
            Entry::file(format!("# {name}\nroot:x:0:0:root:/root:/bin/sh\n")).mtime(1),
        );
    }
    for i in 0..60 {
        b = b.entry(
            format!("usr/share/udhcpc/doc{i:02}.txt"),
            Entry::file(vec![b'd'; 200 + i * 10]).mtime(1),
        );
    }
    for dir in ["root", "tmp", "var/log", "var/run", "srv"] {
        b = b.entry(dir, Entry::dir().mode(0o755).mtime(1));
    }
    Image::builder()
        .layer(b.build().expect("busybox layer"))
        .cmd(["sh"])
        .build()
        .expect("busybox image")
}

/// Ten steps, five of them RUN.
const TEN_STEPS: &str = "FROM busybox\n\
    ENV PATH=/usr/local/bin:/usr/bin:/bin APP=/srv/app\n\
    WORKDIR /srv/app\n\
    RUN ./configure --prefix=$APP\n\
    COPY app.sh config.toml /srv/app/\n\
    RUN make -j4\n\
    RUN make install\n\
    RUN chmod +x /srv/app/app.sh\n\
    RUN rm -rf /tmp/*\n\
    CMD [\"/srv/app/app.sh\"]\n";

/// The build of [`TEN_STEPS`]: each RUN writes a 4 KiB file named after its command. FROM
/// resolves to `base` (for `Build::run`; `run_in` finds it in the store first).
fn ten_step_build(base: &Image) -> Build {
    let base = base.clone();
    let run = InProcess::new(|c: &mut Container, step: &RunStep| {
        let name: String = step
            .argv
            .last()
            .map(|a| a.chars().filter(char::is_ascii_alphanumeric).collect())
            .unwrap_or_default();
        c.write(format!("var/log/run-{name}"), vec![b'r'; 4096])
    });
    Build::new(TEN_STEPS)
        .context(
            Context::new()
                .file("app.sh", "#!/bin/sh\nexec /srv/app/bin/server \"$@\"\n")
                .file("config.toml", "[server]\nport = 8000\n"),
        )
        .executor(run)
        .base_images(move |name| match name {
            "busybox" => Ok(base.clone()),
            _ => Err(layercake::Error::ImageNotFound {
                reference: name.into(),
            }),
        })
        .clock(1_700_000_000)
}

fn build(c: &mut Criterion) {
    let base = busybox();
    let build = ten_step_build(&base);
    let report = build.run().expect("the ten-step build");
    assert_eq!(report.steps.len(), 10);
    assert_eq!(report.steps.iter().filter(|s| s.ran).count(), 5);
    let mut group = quick(c, "build");
    group.sample_size(30);
    group.bench_function("ten_steps_five_runs_in_memory", |b| {
        b.iter(|| black_box(build.run().expect("build")))
    });
    group.finish();
}

/// A store (in memory or on disk) holding the base as `busybox:latest`.
fn with_base(mut store: Store, base: &Image) -> Store {
    store
        .add_with(base, AddOptions::new().tag("busybox"))
        .expect("base stored");
    store
}

/// Every step after FROM came from the cache and nothing ran.
fn assert_all_cached(report: &layercake::build::BuildReport) {
    assert!(report.steps[1..].iter().all(|s| s.cached && !s.ran));
}

fn build_cache(c: &mut Criterion) {
    let base = busybox();
    let build = ten_step_build(&base);
    let mut group = quick(c, "build_cache");
    group.sample_size(30);

    let no_cache = build.clone().no_cache();
    group.bench_function("first_run_no_cache_memory_store", |b| {
        b.iter_batched(
            || with_base(Store::new(), &base),
            |mut store| {
                let report = no_cache.run_in(&mut store).expect("build");
                // Dropped outside the timing.
                (store, report)
            },
            BatchSize::SmallInput,
        )
    });

    let mut store = with_base(Store::new(), &base);
    build.run_in(&mut store).expect("first build");
    assert_all_cached(&build.run_in(&mut store).expect("rebuild"));
    group.bench_function("cached_rebuild_memory_store", |b| {
        b.iter(|| black_box(build.run_in(&mut store).expect("rebuild")))
    });
    drop(store);

    let dir = TempDir::new("store");
    drop(with_base(Store::open(dir.path()).expect("store"), &base));
    build
        .run_in(&mut Store::open(dir.path()).expect("store"))
        .expect("first build on disk");
    assert_all_cached(
        &build
            .run_in(&mut Store::open(dir.path()).expect("store"))
            .expect("rebuild on disk"),
    );
    group.bench_function("cached_rebuild_disk_store_opened", |b| {
        b.iter(|| {
            let mut store = Store::open(dir.path()).expect("store");
            black_box(build.run_in(&mut store).expect("rebuild"))
        })
    });
    let mut store = Store::open(dir.path()).expect("store");
    group.bench_function("cached_rebuild_disk_store_open", |b| {
        b.iter(|| black_box(build.run_in(&mut store).expect("rebuild")))
    });
    group.finish();
}

/// Twenty patterns of the kinds real `.dockerignore` files have.
const DOCKERIGNORE: &str = "# VCS and editors\n\
    .git\n\
    **/.DS_Store\n\
    **/*.sw[op]\n\
    **/[Tt]humbs.db\n\
    # Python\n\
    **/__pycache__\n\
    **/*.py[cod]\n\
    # JavaScript\n\
    node_modules\n\
    !node_modules/keep-me\n\
    dist/**\n\
    coverage\n\
    # Rust\n\
    target/\n\
    !target/release/app\n\
    # logs and secrets\n\
    *.log\n\
    !important.log\n\
    .env*\n\
    !.env.example\n\
    tmp?/\n\
    build/**/*.o\n\
    docs/**/*.[ch]\n\
    vendor/*/testdata\n";

/// `n` context paths: sources, dependencies, build output, VCS objects and the odd file the
/// patterns single out.
fn context_paths(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 10 {
            0 | 1 => format!("src/mod{:02}/file{i}.rs", i % 37),
            2 => format!("node_modules/pkg{:03}/lib/index{i}.js", i % 211),
            3 => format!("target/debug/deps/lib{i}.rlib"),
            4 => format!(".git/objects/{:02x}/{i:038x}", i % 256),
            5 => format!("app/pkg{:02}/__pycache__/m{i}.cpython-312.pyc", i % 13),
            6 => format!("docs/api/v{}/page{i}.md", i % 5),
            7 => format!("build/obj/{:02}/unit{i}.o", i % 17),
            8 => format!("vendor/lib{:02}/testdata/case{i}.json", i % 23),
            _ => [
                "README.md",
                "important.log",
                "debug.log",
                ".env",
                ".env.example",
                "tmp1/x",
            ][i % 6]
                .to_owned(),
        })
        .collect()
}

fn ignore(c: &mut Criterion) {
    let ignore = Ignore::parse(DOCKERIGNORE).expect("the patterns parse");
    let paths = context_paths(10_000);
    let excluded = paths.iter().filter(|p| ignore.excludes(p)).count();
    assert!(excluded > 1000 && excluded < 9000, "{excluded} excluded");
    let mut group = quick(c, "ignore");
    // About 0.2 s an iteration here: fewer samples, so the group stays near five seconds.
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(paths.len() as u64));
    group.bench_function("excludes_10000_paths_20_patterns", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter(|p| ignore.excludes(black_box(p)))
                .count()
        })
    });
    group.finish();
}

/// A temporary directory under `std::env::temp_dir()`, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "layercake-bench-dockerfile-{what}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes about 2 000 small files (100 to 600 bytes) as a project checkout has them: most of
/// them under `node_modules`, `target` and `.git`.
fn write_context(root: &Path) -> usize {
    let layout: [(&str, usize, usize); 5] = [
        ("src", 10, 30),
        ("node_modules", 40, 25),
        ("target/debug/deps", 10, 30),
        (".git/objects", 20, 15),
        ("docs", 5, 20),
    ];
    let mut files = 0;
    for (top, dirs, per_dir) in layout {
        for d in 0..dirs {
            let dir = root.join(top).join(format!("d{d:02}"));
            std::fs::create_dir_all(&dir).expect("context dir");
            for f in 0..per_dir {
                let body = vec![b'a' + (f % 26) as u8; 100 + (files * 37) % 500];
                std::fs::write(dir.join(format!("f{f:03}.txt")), body).expect("context file");
                files += 1;
            }
        }
    }
    std::fs::write(root.join("Dockerfile"), TEN_STEPS).expect("Dockerfile");
    files + 1
}

fn context(c: &mut Criterion) {
    let dir = TempDir::new("context");
    let files = write_context(dir.path());
    let mut group = quick(c, "context");
    group.sample_size(30);
    group.throughput(Throughput::Elements(files as u64));
    group.bench_function(format!("from_dir_{files}_files"), |b| {
        b.iter(|| black_box(Context::from_dir(dir.path()).expect("context")))
    });
    // Leaves out node_modules, target and .git: about 1 700 of the files.
    std::fs::write(
        dir.path().join(".dockerignore"),
        "node_modules\ntarget/\n.git\n**/*.swp\n!target/debug/deps/d00/f000.txt\n",
    )
    .expect(".dockerignore");
    group.bench_function(format!("from_dir_{files}_files_most_ignored"), |b| {
        b.iter(|| black_box(Context::from_dir(dir.path()).expect("context")))
    });
    group.finish();
}

criterion_group!(benches, parse, lexer, build, build_cache, ignore, context);
criterion_main!(benches);
