//! Running a Dockerfile's steps on containers as Docker's classic builder does: stages, ARG
//! scoping, which instructions expand, and the classic builder's history
//! (`/bin/sh -c #(nop)  ENV A=b`, `|1 V=1 /bin/sh -c make`). COPY and ADD: `stage/copy.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

mod copy;

use super::builder::{Build, BuildEvent, BuildReport, StepReport};
use super::executor::RunStep;
use super::parser::{Args, Dockerfile, Form, Instruction, Keyword};
use super::words::{Lexer, WordError};
use crate::commit::Commit;
use crate::config::{ContainerConfig, History};
use crate::container::{CommitOptions, Container};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::store::{AddOptions, Store};
use crate::tree::Tree;

/// Runs `build` ([`Build::run`]; in `store`, with its cache: [`Build::run_in`]).
pub(super) fn run(build: &Build, store: Option<&mut Store>) -> Result<BuildReport> {
    let dockerfile = Dockerfile::parse(&build.text)?;
    let lexer = Lexer::new(dockerfile.escape());
    let context = build.context.tree()?;
    let all = dockerfile.instructions();
    let total = all.len();
    let mut run = Run {
        build,
        lexer,
        context,
        stages: Vec::new(),
        steps: Vec::new(),
        global: BTreeMap::new(),
        store,
    };
    let mut current: Option<Stage> = None;
    for (n, ins) in all.iter().enumerate() {
        if ins.keyword() == Keyword::From {
            if let Some(stage) = current.take() {
                if run.is_target(&stage) {
                    return Ok(run.report(stage));
                }
                run.stages.push(stage);
            }
        }
        let instruction = format!("Step {}/{} : {}", n + 1, total, ins.original());
        run.emit(&BuildEvent::Step {
            number: n + 1,
            total,
            instruction: &instruction,
        });
        let started = Instant::now();
        run.steps.push(StepReport {
            instruction,
            keyword: ins.keyword(),
            image: None,
            layer: None,
            ran: false,
            cached: false,
            time: Duration::ZERO,
        });
        match current.as_mut() {
            _ if ins.keyword() == Keyword::From => current = Some(run.from(ins)?),
            None if ins.keyword() == Keyword::Arg => run.global_arg(ins)?,
            None => return Err(error(ins, "no FROM before this instruction")),
            Some(stage) => run.step(stage, ins)?,
        }
        // Docker shows no image for FROM scratch.
        let image = current
            .as_ref()
            .map(|s| &s.image)
            .filter(|i| !i.diff_ids().is_empty() || !i.config().file().history.is_empty())
            .map(Image::id);
        let last = run.last();
        last.time = started.elapsed();
        last.image = image;
        run.emit(&BuildEvent::Done(&run.steps[run.steps.len() - 1]));
    }
    let Some(stage) = current else {
        return Err(Error::Dockerfile {
            line: 1,
            column: 1,
            reason: "no FROM instruction".into(),
        });
    };
    if let Some(t) = &build.target {
        if !run.is_target(&stage) {
            return Err(Error::Dockerfile {
                line: 1,
                column: 1,
                reason: format!("target stage `{t}` could not be found"),
            });
        }
    }
    Ok(run.report(stage))
}

struct Stage {
    name: Option<String>,
    index: usize,
    image: Image,
    config: ContainerConfig,
    author: Option<String>,
    /// Declared ARGs and their values.
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
}

struct Run<'a> {
    build: &'a Build,
    lexer: Lexer,
    context: Tree,
    stages: Vec<Stage>,
    steps: Vec<StepReport>,
    global: BTreeMap<String, Option<String>>,
    /// Where FROM names resolve first, each step's image is kept, and the cache is read.
    store: Option<&'a mut Store>,
}

fn error(ins: &Instruction, reason: impl Into<String>) -> Error {
    Error::Dockerfile {
        line: ins.start_line(),
        column: 1,
        reason: reason.into(),
    }
}

fn word_error(ins: &Instruction, e: WordError) -> Error {
    error(ins, e.to_string())
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `1.5h`) in nanoseconds, as the parser checked it.
fn parse_duration(text: &str) -> Option<u64> {
    super::parser::duration_nanos(text).and_then(|n| u64::try_from(n).ok())
}

/// Go's `time.Duration.String`: `0s`, `500ms`, `1m30s`, `1h0m0s`.
fn go_duration(ns: u64) -> String {
    fn frac(value: u64, unit: u64) -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let digits = unit.to_string().len() - 1;
        let text = format!("{rest:0digits$}");
        format!("{whole}.{}", text.trim_end_matches('0'))
    }
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", frac(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", frac(n, 1_000_000)),
        n => {
            let secs = frac(n % 60_000_000_000, 1_000_000_000);
            let mins = n / 60_000_000_000;
            match (mins / 60, mins % 60) {
                (0, 0) => format!("{secs}s"),
                (0, m) => format!("{m}m{secs}s"),
                (h, m) => format!("{h}h{m}m{secs}s"),
            }
        }
    }
}

fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The command a step's container ran, and how the classic builder made that container.
pub(super) struct Ran {
    pub(super) cmd: Vec<String>,
    pub(super) kind: Trace,
}

/// How the classic builder made a step's container, which decides what it records of it.
#[derive(Clone, Copy)]
pub(super) enum Trace {
    /// A config step or WORKDIR: the recorded config is the one given to the daemon's
    /// create, which names the host after the container (`Hostname`: the id's first 12
    /// digits).
    Created,
    /// RUN: the recorded config is the cache probe's, not the created one: no `Hostname`
    /// set, `Entrypoint` cleared; `container` still the container's id.
    Run,
    /// COPY and ADD: the layer is committed with no container (no `container`, no
    /// `Hostname`).
    Direct,
}

/// The build cache's format: part of every step's key, raised when what a step makes from
/// the same inputs changes (as when steps began to record their container), so that a store
/// does not hand back images an older version made.
const CACHE_FORMAT: u32 = 2;

/// The PATH a stage gets when its base image sets none (Docker's `DefaultPathEnv`).
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Stage {
    fn shell(&self) -> Vec<String> {
        match self.config.extra.get("Shell") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    fn vars(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .args
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for e in &self.config.env {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            vars.insert(k.to_owned(), v.to_owned());
        }
        vars
    }

    /// The build args a RUN sees: declared, with a value, not overridden by ENV; sorted.
    fn run_args(&self) -> Vec<String> {
        let env: BTreeSet<&str> = self
            .config
            .env
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
            .collect();
        self.args
            .iter()
            .filter(|(k, _)| !env.contains(k.as_str()))
            .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
            .collect()
    }

    fn commit(&self) -> Commit {
        let c = Commit::new().config(self.config.clone());
        match &self.author {
            Some(a) => c.author(a.clone()),
            None => c,
        }
    }

    fn nop(&self, comment: &str) -> String {
        format!("{} #(nop)  {comment}", self.shell().join(" "))
    }

    /// The commit of a step: [`Stage::commit`], and the container the step ran in as the
    /// classic builder records it (`container_config`: this stage's run config with `Cmd`
    /// the step's command and `Image` the parent image; `container`: the container's id).
    ///
    /// Docker's container ids are random. Ours is the SHA-256 of the parent image's id and
    /// the step's history row, so that a step made twice is the same image: rebuilds and
    /// the build cache stay reproducible.
    fn step_commit(&self, created_by: &str, ran: &Ran) -> Commit {
        let parent = self.image.id().to_string();
        let id = self.container_id(created_by);
        let mut config = self.config.clone();
        config.cmd = Some(ran.cmd.clone());
        config.extra.insert("Image".into(), Value::String(parent));
        let commit = self.commit();
        match ran.kind {
            Trace::Created => {
                config
                    .extra
                    .insert("Hostname".into(), Value::String(id[..12].to_owned()));
                commit.container_config(config).container(id)
            }
            Trace::Run => {
                config.entrypoint = None;
                commit.container_config(config).container(id)
            }
            Trace::Direct => commit.container_config(config),
        }
    }

    /// The id of the container the step with history row `created_by` is made in (see
    /// [`Stage::step_commit`]): 64 hex digits.
    fn container_id(&self, created_by: &str) -> String {
        Digest::sha256(format!("{}\n{created_by}", self.image.id()))
            .to_hex()
            .to_string()
    }

    /// A step on this stage's image that changes the config alone.
    fn empty_step(&self, clock: i64, created_by: String, ran: &Ran) -> Result<Image> {
        Image::builder()
            .base(&self.image)
            .commit(self.step_commit(&created_by, ran).created(clock))
            .empty_step(History::new(created_by))
            .build()
    }

    /// Commits what changed in `container` (an empty step if nothing did).
    fn commit_container(
        &self,
        clock: i64,
        container: &Container,
        created_by: String,
        ran: &Ran,
    ) -> Result<Image> {
        if container.diff()?.is_empty() {
            return self.empty_step(clock, created_by, ran);
        }
        let commit = self.step_commit(&created_by, ran).created(clock);
        let options = CommitOptions::new().created_by(created_by).commit(commit);
        container.commit(&options)
    }

    /// The build cache's key for `step` on this stage: the parent image, the step (its
    /// history row after expansion, and what else decides its result) and the config after.
    fn cache_key(&self, step: &str) -> Digest {
        let key = serde_json::json!({
            "format": CACHE_FORMAT,
            "parent": self.image.id().to_string(),
            "step": step,
            "config": self.config,
            "author": self.author,
        });
        Digest::sha256(key.to_string())
    }
}

impl Run<'_> {
    fn is_target(&self, stage: &Stage) -> bool {
        match &self.build.target {
            None => false,
            Some(t) => stage.name.as_deref() == Some(t.as_str()) || stage.index.to_string() == *t,
        }
    }

    fn emit(&self, event: &BuildEvent<'_>) {
        if let Some(listener) = &self.build.listener {
            listener(event);
        }
    }

    /// A step that changes the config alone: `#(nop)  {comment}`.
    fn config_step(&mut self, stage: &mut Stage, comment: &str) -> Result<()> {
        let created_by = stage.nop(comment);
        let clock = self.build.clock;
        self.settle(stage, &created_by.clone(), move |run, stage| {
            // The container's command keeps `#(nop) ` and the comment apart.
            let mut cmd = stage.shell();
            cmd.extend(["#(nop) ".to_owned(), comment.to_owned()]);
            run.running(stage, &created_by, &cmd);
            let ran = Ran {
                cmd,
                kind: Trace::Created,
            };
            stage.empty_step(clock, created_by, &ran)
        })
    }

    /// Tells that the step with history row `created_by` is made in a container running
    /// `argv` (` ---> Running in …`, the short id of the container the image records).
    fn running(&self, stage: &Stage, created_by: &str, argv: &[String]) {
        if self.build.listener.is_some() {
            let container = stage.container_id(created_by);
            self.emit(&BuildEvent::Running {
                container: &container[..12],
                argv,
            });
        }
    }

    /// Ends a step: the image the build cache has for `step` on this stage (see
    /// [`Stage::cache_key`]), else the one `make` makes, kept in the store under the key.
    fn settle(
        &mut self,
        stage: &mut Stage,
        step: &str,
        make: impl FnOnce(&mut Self, &Stage) -> Result<Image>,
    ) -> Result<()> {
        let key = stage.cache_key(step);
        let below = stage.image.diff_ids().len();
        let cached = match self.store.as_deref() {
            Some(store) if !self.build.no_cache => store.build_step(&key),
            _ => None,
        };
        let image = match cached {
            Some(image) => {
                self.emit(&BuildEvent::Cached);
                self.last().cached = true;
                image
            }
            None => {
                let image = make(self, stage)?;
                match self.store.as_deref_mut() {
                    Some(store) => {
                        store
                            .add_with(&image, AddOptions::new().build_step(key))?
                            .image
                    }
                    None => image,
                }
            }
        };
        let diff_ids = image.diff_ids();
        self.last().layer = diff_ids.get(below).copied();
        stage.image = image;
        Ok(())
    }

    /// An image FROM (or `COPY --from`) names that is not a stage: the store's, then
    /// [`Build::fetch_missing`]'s, then [`Build::base_images`]'.
    fn base(&mut self, name: &str) -> Result<Image> {
        if let Some(store) = self.store.as_deref_mut() {
            match store.image(name) {
                Err(Error::ImageNotFound { .. }) => {}
                found => return found,
            }
            if let Some(fetch) = &self.build.fetch {
                return fetch(name, store);
            }
        }
        match &self.build.lookup {
            Some(lookup) => lookup(name),
            None => Err(Error::ImageNotFound {
                reference: name.to_owned(),
            }),
        }
    }

    fn report(self, stage: Stage) -> BuildReport {
        BuildReport {
            image: stage.image,
            steps: self.steps,
        }
    }

    fn arg_value(&self, name: &str, default: Option<String>) -> Option<String> {
        self.build.args.get(name).cloned().or(default)
    }

    fn global_arg(&mut self, ins: &Instruction) -> Result<()> {
        let vars: BTreeMap<String, String> = self
            .global
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for (name, default) in self.arg_words(ins, &vars)? {
            let value = self.arg_value(&name, default);
            self.global.insert(name, value);
        }
        Ok(())
    }

    fn arg_words(
        &self,
        ins: &Instruction,
        vars: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out = Vec::new();
        for w in ins.args().to_strings() {
            match w.split_once('=') {
                Some((k, v)) => {
                    let v = self
                        .lexer
                        .process_word(v, vars)
                        .map_err(|e| word_error(ins, e))?;
                    out.push((k.to_owned(), Some(v)));
                }
                None => out.push((w, None)),
            }
        }
        Ok(out)
    }

    fn from(&mut self, ins: &Instruction) -> Result<Stage> {
        let vars: BTreeMap<String, String> = self
            .global
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        let words = ins.args().to_strings();
        let name = self
            .lexer
            .process_word(&words[0], &vars)
            .map_err(|e| word_error(ins, e))?;
        let alias = match words.get(1) {
            Some(k) if k.eq_ignore_ascii_case("as") => words.get(2).map(|s| s.to_lowercase()),
            _ => None,
        };
        let platform = match ins.flag("platform") {
            Some(p) => Some(
                self.lexer
                    .process_word(p, &vars)
                    .map_err(|e| word_error(ins, e))?,
            ),
            None => None,
        };
        let image = if name.eq_ignore_ascii_case("scratch") {
            // `--platform` names the empty image's os and architecture, as classic does.
            let mut image = Image::builder();
            if let Some(p) = &platform {
                let mut parts = p.split('/');
                if let Some(os) = parts.next().filter(|s| !s.is_empty()) {
                    image = image.os(os);
                }
                if let Some(arch) = parts.next() {
                    image = image.architecture(arch);
                }
            }
            image.build()?
        } else if let Some(s) = self.find_stage(&name) {
            s.image.clone()
        } else {
            self.base(&name)?
        };
        let mut config = image.config().container_config().clone();
        let triggers = match config.extra.remove("OnBuild") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        // Classic gives every stage a PATH if its base has none (`setDefaultPath`).
        if !config.env.iter().any(|e| e.starts_with("PATH=")) {
            config.env.push(DEFAULT_PATH.into());
        }
        let author = image.config().file().author.clone();
        let mut stage = Stage {
            name: alias,
            index: self.stages.len(),
            image,
            config,
            author,
            args: BTreeMap::new(),
            cmd_set: false,
        };
        for t in triggers {
            // The parser wants a FROM first; the trigger is the instruction after it.
            let parsed = Dockerfile::parse(&format!("FROM scratch\n{t}\n"))?;
            for trigger in parsed.instructions().iter().skip(1) {
                self.step(&mut stage, trigger)?;
            }
        }
        Ok(stage)
    }

    fn find_stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()) || s.index.to_string() == name)
    }

    fn step(&mut self, stage: &mut Stage, ins: &Instruction) -> Result<()> {
        let clock = self.build.clock;
        let vars = stage.vars();
        let expand = |w: &str| {
            self.lexer
                .process_word(w, &vars)
                .map_err(|e| word_error(ins, e))
        };
        let list = ins.args().to_strings();
        match ins.keyword() {
            Keyword::From => unreachable!("FROM starts a stage"),
            Keyword::Env => {
                let Args::Pairs(pairs) = ins.args() else {
                    return Err(error(ins, "ENV needs pairs"));
                };
                let mut comment = String::from("ENV");
                for (k, v) in pairs {
                    let k = expand(k)?;
                    let v = expand(v)?;
                    comment.push_str(&format!(" {k}={v}"));
                    let entry = format!("{k}={v}");
                    let prefix = format!("{k}=");
                    match stage.config.env.iter_mut().find(|e| e.starts_with(&prefix)) {
                        Some(e) => *e = entry,
                        None => stage.config.env.push(entry),
                    }
                }
                self.config_step(stage, &comment)
            }
            Keyword::Label => {
                let Args::Pairs(pairs) = ins.args() else {
                    return Err(error(ins, "LABEL needs pairs"));
                };
                let mut comment = String::from("LABEL");
                for (k, v) in pairs {
                    let k = expand(k)?;
                    let v = expand(v)?;
                    comment.push_str(&format!(" {k}={v}"));
                    stage.config.labels.insert(k, v);
                }
                self.config_step(stage, &comment)
            }
            Keyword::Arg => {
                let mut comment = String::from("ARG");
                for (name, default) in self.arg_words(ins, &vars)? {
                    comment.push(' ');
                    comment.push_str(&name);
                    if let Some(d) = &default {
                        comment.push('=');
                        comment.push_str(d);
                    }
                    let default = default.or_else(|| self.global.get(&name).cloned().flatten());
                    let value = self.arg_value(&name, default);
                    stage.args.insert(name, value);
                }
                self.config_step(stage, &comment)
            }
            Keyword::Cmd | Keyword::Entrypoint => {
                let cmd = match ins.form() {
                    Form::Exec => list,
                    Form::Shell => {
                        let mut shell = stage.shell();
                        shell.push(list.join(" "));
                        shell
                    }
                };
                let comment = format!("{} {}", ins.keyword(), go_quote_list(&cmd));
                if ins.keyword() == Keyword::Cmd {
                    stage.config.cmd = Some(cmd);
                    stage.cmd_set = true;
                } else {
                    stage.config.entrypoint = Some(cmd);
                    if !stage.cmd_set {
                        stage.config.cmd = None;
                    }
                }
                self.config_step(stage, &comment)
            }
            Keyword::Expose => {
                let mut ports = Vec::new();
                for w in &list {
                    for p in self
                        .lexer
                        .process_words(w, &vars)
                        .map_err(|e| word_error(ins, e))?
                    {
                        // The row names the ports as written; the config, as `80/tcp`.
                        let key = if p.contains('/') {
                            p.clone()
                        } else {
                            format!("{p}/tcp")
                        };
                        stage.config.exposed_ports.insert(key);
                        ports.push(p);
                    }
                }
                // Classic's row names each port once, sorted as strings.
                ports.sort();
                ports.dedup();
                self.config_step(stage, &format!("EXPOSE {}", ports.join(" ")))
            }
            Keyword::User => {
                let user = expand(&list.join(" "))?;
                stage.config.user = Some(user.clone());
                self.config_step(stage, &format!("USER {user}"))
            }
            Keyword::StopSignal => {
                let sig = expand(&list.join(" "))?;
                stage.config.stop_signal = Some(sig.clone());
                self.config_step(stage, &format!("STOPSIGNAL {sig}"))
            }
            Keyword::Maintainer => {
                let who = list.join(" ");
                stage.author = Some(who.clone());
                self.config_step(stage, &format!("MAINTAINER {who}"))
            }
            Keyword::Volume => {
                let mut vols = Vec::new();
                for w in &list {
                    let v = match ins.form() {
                        Form::Exec => vec![expand(w)?],
                        Form::Shell => self
                            .lexer
                            .process_words(w, &vars)
                            .map_err(|e| word_error(ins, e))?,
                    };
                    for v in v {
                        stage.config.volumes.insert(v.clone());
                        vols.push(v);
                    }
                }
                self.config_step(stage, &format!("VOLUME [{}]", vols.join(" ")))
            }
            Keyword::Shell => {
                stage.config.extra.insert(
                    "Shell".into(),
                    Value::Array(list.iter().cloned().map(Value::String).collect()),
                );
                self.config_step(stage, &format!("SHELL [{}]", list.join(" ")))
            }
            Keyword::Onbuild => {
                let Args::Trigger(trigger) = ins.args() else {
                    return Err(error(ins, "ONBUILD needs a trigger"));
                };
                let original = trigger.original().to_owned();
                let mut all = match stage.config.extra.remove("OnBuild") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                all.push(Value::String(original.clone()));
                stage
                    .config
                    .extra
                    .insert("OnBuild".into(), Value::Array(all));
                self.config_step(stage, &format!("ONBUILD {original}"))
            }
            Keyword::Healthcheck => self.healthcheck(stage, ins, &list),
            Keyword::Workdir => {
                let dir = expand(&list.join(" "))?;
                let base = stage
                    .config
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into());
                let dir = if dir.starts_with('/') {
                    clean(&dir)
                } else {
                    clean(&format!("{base}/{dir}"))
                };
                stage.config.working_dir = Some(dir.clone());
                let created_by = format!("{} #(nop) WORKDIR {dir}", stage.shell().join(" "));
                self.settle(stage, &created_by.clone(), move |run, stage| {
                    let mut argv = stage.shell();
                    argv.push(format!("#(nop) WORKDIR {dir}"));
                    run.running(stage, &created_by, &argv);
                    let mut container = Container::new(&stage.image)?;
                    container.set_clock(clock);
                    container.create_dir_all(dir.as_str())?;
                    let ran = Ran {
                        cmd: argv,
                        kind: Trace::Created,
                    };
                    stage.commit_container(clock, &container, created_by, &ran)
                })
            }
            Keyword::Run => self.run_step(stage, ins, list),
            Keyword::Copy | Keyword::Add => self.copy(stage, ins, &vars),
        }
    }

    fn last(&mut self) -> &mut StepReport {
        self.steps.last_mut().expect("a step was pushed")
    }

    fn healthcheck(&mut self, stage: &mut Stage, ins: &Instruction, list: &[String]) -> Result<()> {
        let test: Vec<String> = match (
            list.first().map(|s| s.to_uppercase()).as_deref(),
            ins.form(),
        ) {
            (Some("NONE"), _) => vec!["NONE".into()],
            (Some("CMD"), Form::Exec) => std::iter::once("CMD".to_owned())
                .chain(list[1..].iter().cloned())
                .collect(),
            (Some("CMD"), Form::Shell) => vec!["CMD-SHELL".into(), list[1..].join(" ")],
            _ => return Err(error(ins, "HEALTHCHECK needs NONE or CMD")),
        };
        let duration = |name: &str| -> Result<u64> {
            match ins.flag(name) {
                None => Ok(0),
                Some(v) => parse_duration(v)
                    .ok_or_else(|| error(ins, format!("invalid duration `{v}` for --{name}"))),
            }
        };
        let (interval, timeout, start) = (
            duration("interval")?,
            duration("timeout")?,
            duration("start-period")?,
        );
        let retries: u32 = match ins.flag("retries") {
            None => 0,
            Some(r) => r
                .parse()
                .map_err(|_| error(ins, format!("invalid --retries `{r}`")))?,
        };
        let mut health = serde_json::json!({ "Test": test });
        for (key, value) in [
            ("Interval", interval),
            ("Timeout", timeout),
            ("StartPeriod", start),
        ] {
            if value != 0 {
                health[key] = value.into();
            }
        }
        if retries != 0 {
            health["Retries"] = retries.into();
        }
        // dockerd merges a step's config with the image's when it creates the step's
        // container, through the check they share: what the new check leaves zero, the
        // old one fills in (the row above shows the check as written).
        if let Some(old) = &stage.config.healthcheck {
            for key in ["Interval", "Timeout", "StartPeriod", "Retries"] {
                if let Some(v) = old.get(key).filter(|v| v.as_u64() != Some(0)) {
                    if health.get(key).is_none() {
                        health[key] = v.clone();
                    }
                }
            }
        }
        stage.config.healthcheck = Some(health);
        // Go's `%q` of the *HealthConfig: durations quoted, the retry count as a rune.
        let rune = match char::from_u32(retries) {
            Some(c) if !c.is_control() && c != '\'' && c != '\\' => format!("'{c}'"),
            _ if retries < 0x100 => format!("'\\x{retries:02x}'"),
            _ => format!("'\\u{retries:04x}'"),
        };
        let comment = format!(
            "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" {rune}}}",
            go_quote_list(&test),
            go_duration(interval),
            go_duration(timeout),
            go_duration(start),
        );
        self.config_step(stage, &comment)
    }

    fn run_step(&mut self, stage: &mut Stage, ins: &Instruction, list: Vec<String>) -> Result<()> {
        if !ins.heredocs().is_empty() {
            return Err(Error::Unsupported {
                what: "RUN with a heredoc".into(),
            });
        }
        let Some(executor) = self.build.executor.clone() else {
            return Err(Error::Unsupported {
                what: "RUN without an executor".into(),
            });
        };
        let argv = match ins.form() {
            Form::Exec => list,
            Form::Shell => {
                let mut shell = stage.shell();
                shell.push(list.join(" "));
                shell
            }
        };
        let args = stage.run_args();
        // The command as recorded: with build args, `|N` and the args before it.
        let mut cmd = Vec::new();
        if !args.is_empty() {
            cmd.push(format!("|{}", args.len()));
            cmd.extend(args.iter().cloned());
        }
        cmd.extend(argv.iter().cloned());
        let created_by = cmd.join(" ");
        let ran = Ran {
            cmd,
            kind: Trace::Run,
        };
        let mut step = RunStep::new(argv);
        step.env = stage.config.env.iter().cloned().chain(args).collect();
        step.user = stage.config.user.clone().unwrap_or_default();
        step.workdir = stage.config.working_dir.clone().unwrap_or_default();
        let clock = self.build.clock;
        self.settle(stage, &created_by.clone(), move |run, stage| {
            run.running(stage, &created_by, &step.argv);
            let mut container = Container::new(&stage.image)?;
            container.set_clock(clock);
            executor.run(&mut container, &step)?;
            run.last().ran = true;
            stage.commit_container(clock, &container, created_by, &ran)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(parse_duration("30s").unwrap()), "30s");
        assert_eq!(go_duration(parse_duration("90s").unwrap()), "1m30s");
        assert_eq!(go_duration(parse_duration("1h").unwrap()), "1h0m0s");
        assert_eq!(go_duration(parse_duration("1.5s").unwrap()), "1.5s");
        assert_eq!(go_duration(parse_duration("500ms").unwrap()), "500ms");
        assert_eq!(parse_duration("5x"), None);
    }

    #[test]
    fn go_quote_list_is_percent_q() {
        assert_eq!(
            go_quote_list(&["a".into(), "b \"c\"".into()]),
            r#"["a" "b \"c\""]"#
        );
    }
}
