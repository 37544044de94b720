//! The build cache: `Build::run_in` keeps each step's image in the store under the step's
//! key and reuses it (the classic builder's rules), `no_cache` turns reuse off, the cache
//! outlives the process in a store on disk, and `prune` clears it.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use layercake::build::{Build, BuildEvent, Context, Executor, InProcess, RunStep};
use layercake::store::AddOptions;
use layercake::{Container, Image, Layer, Store};

use common::TempDir;

const DOCKERFILE: &str = "FROM base\n\
    ARG V=1\n\
    ENV A=1\n\
    RUN make one\n\
    COPY app.txt /app/\n\
    RUN make two\n\
    WORKDIR /w\n\
    CMD [\"run\"]\n";

/// A store with `base:latest`, a busybox-like image.
fn store_with_base(store: &mut Store) {
    let layer = Layer::builder()
        .file("bin/sh", "ELF")
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        .build()
        .unwrap();
    let base = Image::builder().layer(layer).cmd(["sh"]).build().unwrap();
    store
        .add_with(&base, AddOptions::new().tag("base"))
        .unwrap();
}

/// An executor that counts its runs and writes a file named after the command's last word.
fn counting(runs: Arc<AtomicUsize>) -> Arc<dyn Executor> {
    Arc::new(InProcess::new(move |c: &mut Container, step: &RunStep| {
        runs.fetch_add(1, Ordering::SeqCst);
        let name = step.argv.last().unwrap().replace(' ', "-");
        c.write(format!("ran-{name}"), step.env.join(","))
    }))
}

fn build(context: &str, runs: &Arc<AtomicUsize>) -> Build {
    Build::new(DOCKERFILE)
        .context(Context::new().file("app.txt", context.to_owned()))
        .shared_executor(counting(runs.clone()))
        .clock(1_700_000_000)
}

fn cached(report: &layercake::build::BuildReport) -> Vec<bool> {
    report.steps.iter().map(|s| s.cached).collect()
}

#[test]
fn a_rebuild_runs_nothing_and_gives_the_same_image() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    let first = build("v1", &runs).run_in(&mut store).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(cached(&first).iter().all(|c| !c));
    let images = store.images().count();

    let again = build("v1", &runs).run_in(&mut store).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "no command ran");
    assert_eq!(
        cached(&again),
        [false, true, true, true, true, true, true, true],
        "every step after FROM came from the cache"
    );
    assert!(again.steps.iter().all(|s| !s.ran));
    assert_eq!(again.image.id(), first.image.id());
    assert_eq!(store.images().count(), images, "nothing new stored");
    // Each step's report names the same image and layer as the first time.
    for (a, b) in first.steps.iter().zip(&again.steps) {
        assert_eq!((a.image, a.layer), (b.image, b.layer), "{}", a.instruction);
    }
}

#[test]
fn a_changed_context_file_reruns_from_its_copy_on() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    let first = build("v1", &runs).run_in(&mut store).unwrap();
    let changed = build("v2", &runs).run_in(&mut store).unwrap();
    assert_eq!(
        cached(&changed),
        [false, true, true, true, false, false, false, false]
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "only the RUN after the COPY ran again"
    );
    assert_eq!(changed.steps[3].image, first.steps[3].image);
    assert_ne!(changed.image.id(), first.image.id());
    assert_eq!(
        changed.image.tree().unwrap().read("app/app.txt").unwrap(),
        "v2"
    );
    // Back to the first content: every step is found again.
    let back = build("v1", &runs).run_in(&mut store).unwrap();
    assert_eq!(back.image.id(), first.image.id());
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[test]
fn a_build_arg_reruns_the_steps_that_see_it() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    build("v1", &runs).run_in(&mut store).unwrap();
    let other = build("v1", &runs)
        .build_arg("V", "2")
        .run_in(&mut store)
        .unwrap();
    // ARG and ENV rows do not change; the RUNs' rows do (`|1 V=2 /bin/sh -c make one`).
    assert_eq!(
        cached(&other),
        [false, true, true, false, false, false, false, false]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    let out = other.image.tree().unwrap().read("ran-make-one").unwrap();
    assert!(out.ends_with(b",A=1,V=2"), "{out:?}");
}

#[test]
fn no_cache_runs_every_step_and_still_stores_them() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    build("v1", &runs).run_in(&mut store).unwrap();
    let fresh = build("v1", &runs)
        .no_cache()
        .clock(1_800_000_000)
        .run_in(&mut store)
        .unwrap();
    assert!(cached(&fresh).iter().all(|c| !c));
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    // The new steps (a later clock) replace the old ones in the cache.
    let again = build("v1", &runs).run_in(&mut store).unwrap();
    assert_eq!(again.image.id(), fresh.image.id());
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

/// Every file under `dir` with its size and modification time.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in std::fs::read_dir(&d).unwrap() {
            let path = item.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((path, meta.len(), meta.modified().unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn the_cache_outlives_the_process_and_prune_clears_it() {
    let dir = TempDir::new("build-cache-disk");
    let runs = Arc::new(AtomicUsize::new(0));
    let first = {
        let mut store = Store::open(dir.path()).unwrap();
        store_with_base(&mut store);
        let report = build("v1", &runs).run_in(&mut store).unwrap();
        store.tag(&report.image.id().to_string(), "app:1").unwrap();
        report
    };
    let mut store = Store::open(dir.path()).unwrap();
    // The steps below the result are intermediate images, hidden as Docker hides them.
    let intermediates = store.intermediates();
    for step in &first.steps[1..7] {
        assert!(
            intermediates.contains(&step.image.unwrap()),
            "{}",
            step.instruction
        );
    }
    assert!(!intermediates.contains(&first.image.id()));
    let before = files(dir.path());
    let again = build("v1", &runs).run_in(&mut store).unwrap();
    assert!(again.steps[1..].iter().all(|s| s.cached));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // The index written again (a tag read back from disk is written from what it names):
    // the tagged image keeps its step's key.
    store.tag(&again.image.id().to_string(), "app:1").unwrap();
    assert_eq!(
        files(dir.path()),
        before,
        "a rebuild from the cache, tagged as before, writes nothing"
    );
    let mut store = Store::open(dir.path()).unwrap();
    let third = build("v1", &runs).run_in(&mut store).unwrap();
    assert!(
        third.steps[1..].iter().all(|s| s.cached),
        "{:?}",
        cached(&third)
    );

    let removed = store.prune().unwrap();
    assert_eq!(removed.images.len(), 6, "the untagged step images");
    let rebuilt = build("v1", &runs).run_in(&mut store).unwrap();
    // The tagged final image is still there: the last step (CMD on WORKDIR's image) is
    // not, its parent being gone, so every step runs again and makes the same image.
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(rebuilt.image.id(), first.image.id());
}

#[test]
fn a_failed_build_keeps_the_steps_before_the_failure() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    let count = runs.clone();
    let failing = InProcess::new(move |c: &mut Container, step: &RunStep| {
        count.fetch_add(1, Ordering::SeqCst);
        if step.argv.last().unwrap() == "make two" {
            return Err(layercake::Error::Unsupported {
                what: "make two fails".into(),
            });
        }
        c.write("ran-one", "")
    });
    let err = Build::new(DOCKERFILE)
        .context(Context::new().file("app.txt", "v1"))
        .executor(failing)
        .run_in(&mut store)
        .unwrap_err();
    assert!(err.to_string().contains("make two fails"), "{err}");
    let report = build("v1", &runs).run_in(&mut store).unwrap();
    assert_eq!(
        cached(&report),
        [false, true, true, true, true, false, false, false]
    );
}

#[test]
fn events_come_in_docker_order() {
    let mut store = Store::new();
    store_with_base(&mut store);
    let runs = Arc::new(AtomicUsize::new(0));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let names = Arc::new(Mutex::new(Vec::new()));
    let log = lines.clone();
    let named = names.clone();
    let listen = move |event: &BuildEvent<'_>| {
        let line = match event {
            BuildEvent::Step { number, total, .. } => format!("step {number}/{total}"),
            BuildEvent::Cached => "cached".to_owned(),
            BuildEvent::Running { argv, container } => {
                named.lock().unwrap().push(container.to_string());
                format!("running {}", argv.last().unwrap())
            }
            BuildEvent::Done(step) => format!("done {}", step.ran),
            _ => "other".to_owned(),
        };
        log.lock().unwrap().push(line);
    };
    let report = build("v1", &runs)
        .on_event(listen.clone())
        .run_in(&mut store)
        .unwrap();
    let first: Vec<String> = lines.lock().unwrap().drain(..).collect();
    // Each `Running in` names the container its step's image records, as Docker's do.
    let made_in: Vec<String> = report
        .steps
        .iter()
        .filter(|s| {
            !matches!(
                s.keyword,
                layercake::build::Keyword::From | layercake::build::Keyword::Copy
            )
        })
        .map(|s| {
            let image = store.image(&s.image.unwrap().to_string()).unwrap();
            let config: serde_json::Value =
                serde_json::from_slice(image.config().as_bytes()).unwrap();
            config["container"].as_str().unwrap()[..12].to_owned()
        })
        .collect();
    assert_eq!(*names.lock().unwrap(), made_in);
    assert_eq!(
        first[..12],
        [
            "step 1/8",
            "done false",
            "step 2/8",
            "running ARG V=1",
            "done false",
            "step 3/8",
            "running ENV A=1",
            "done false",
            "step 4/8",
            "running make one",
            "done true",
            "step 5/8",
        ]
    );
    // COPY is made without a container, as Docker makes it.
    assert_eq!(first[12], "done false");
    build("v1", &runs)
        .on_event(listen)
        .run_in(&mut store)
        .unwrap();
    let second = lines.lock().unwrap().clone();
    assert_eq!(
        second[..5],
        ["step 1/8", "done false", "step 2/8", "cached", "done false"]
    );
    assert_eq!(
        second.len(),
        8 * 3 - 1,
        "Step, Cached, Done for each step but FROM"
    );
}

#[test]
fn from_fetches_what_the_store_lacks() {
    let mut store = Store::new();
    let fetched = Arc::new(AtomicUsize::new(0));
    let count = fetched.clone();
    let build = Build::new("FROM remote/base:1\nENV A=1\n").fetch_missing(
        move |name: &str, store: &mut Store| {
            count.fetch_add(1, Ordering::SeqCst);
            let image = Image::builder().cmd([name]).build()?;
            store.add_with(&image, AddOptions::new().tag(name))?;
            Ok(image)
        },
    );
    build.run_in(&mut store).unwrap();
    build.run_in(&mut store).unwrap();
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        1,
        "the second build finds it stored"
    );
    assert!(store.image("remote/base:1").is_ok());
}
