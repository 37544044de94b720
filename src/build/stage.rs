//! Running a Dockerfile's steps on containers as Docker's classic builder does: the stages
//! and ARG scoping, which instructions expand, and the
//! classic builder's history (`/bin/sh -c #(nop)  ENV A=b`, `|1 V=1 /bin/sh -c make`).
//!
//! COPY's `created_by` names its source as `file:<hash>`, `dir:<hash>` or `multi:<hash>` as
//! the classic builder does, but the hash here is the SHA-256 of the file's bytes (a
//! directory: of its sorted paths and contents), not the classic builder's tarsum.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::builder::{Build, BuildReport, StepReport};
use super::executor::RunStep;
use super::parser::{Args, Dockerfile, Form, Instruction, Keyword};
use super::words::{Lexer, WordError};
use crate::commit::Commit;
use crate::config::{ContainerConfig, History};
use crate::container::{CommitOptions, Container};
use crate::digest::DiffId;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;
use crate::tree::{Node, Tree};

/// Runs `build` ([`Build::run`]).
pub(super) fn run(build: &Build) -> Result<BuildReport> {
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
        run.steps.push(StepReport {
            instruction,
            layer: None,
            ran: false,
        });
        if ins.keyword() == Keyword::From {
            current = Some(run.from(ins)?);
            continue;
        }
        match current.as_mut() {
            None if ins.keyword() == Keyword::Arg => run.global_arg(ins)?,
            None => return Err(error(ins, "no FROM before this instruction")),
            Some(stage) => run.step(stage, ins)?,
        }
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
    platform: Option<String>,
}

struct Run<'a> {
    build: &'a Build,
    lexer: Lexer,
    context: Tree,
    stages: Vec<Stage>,
    steps: Vec<StepReport>,
    global: BTreeMap<String, Option<String>>,
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

    fn config_step(&mut self, clock: i64, comment: &str) -> Result<()> {
        self.image = Image::builder()
            .base(&self.image)
            .commit(self.commit().created(clock))
            .empty_step(History::new(self.nop(comment)))
            .build()?;
        Ok(())
    }

    /// Commits what changed in `container` (an empty step if nothing did).
    fn commit_container(
        &mut self,
        clock: i64,
        container: &Container,
        created_by: String,
    ) -> Result<Option<DiffId>> {
        if container.diff()?.is_empty() {
            self.image = Image::builder()
                .base(&self.image)
                .commit(self.commit().created(clock))
                .empty_step(History::new(created_by))
                .build()?;
            return Ok(None);
        }
        let options = CommitOptions::new()
            .created_by(created_by)
            .commit(self.commit().created(clock));
        self.image = container.commit(&options)?;
        Ok(self.image.layers().last().map(Layer::diff_id))
    }
}

impl Run<'_> {
    fn is_target(&self, stage: &Stage) -> bool {
        match &self.build.target {
            None => false,
            Some(t) => stage.name.as_deref() == Some(t.as_str()) || stage.index.to_string() == *t,
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
            Image::builder().build()?
        } else if let Some(s) = self.find_stage(&name) {
            s.image.clone()
        } else if let Some(lookup) = &self.build.lookup {
            lookup(&name)?
        } else {
            return Err(error(ins, format!("cannot resolve base image `{name}`")));
        };
        let mut config = image.config().container_config().clone();
        let triggers = match config.extra.remove("OnBuild") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let author = image.config().file().author.clone();
        let mut stage = Stage {
            name: alias,
            index: self.stages.len(),
            image,
            config,
            author,
            args: BTreeMap::new(),
            cmd_set: false,
            platform,
        };
        let _ = &stage.platform;
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
                stage.config_step(clock, &comment)
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
                stage.config_step(clock, &comment)
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
                stage.config_step(clock, &comment)
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
                stage.config_step(clock, &comment)
            }
            Keyword::Expose => {
                let mut ports = Vec::new();
                for w in &list {
                    for p in self
                        .lexer
                        .process_words(w, &vars)
                        .map_err(|e| word_error(ins, e))?
                    {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        stage.config.exposed_ports.insert(p.clone());
                        ports.push(p);
                    }
                }
                ports.sort();
                ports.dedup();
                stage.config_step(clock, &format!("EXPOSE {}", ports.join(" ")))
            }
            Keyword::User => {
                let user = expand(&list.join(" "))?;
                stage.config.user = Some(user.clone());
                stage.config_step(clock, &format!("USER {user}"))
            }
            Keyword::StopSignal => {
                let sig = expand(&list.join(" "))?;
                stage.config.stop_signal = Some(sig.clone());
                stage.config_step(clock, &format!("STOPSIGNAL {sig}"))
            }
            Keyword::Maintainer => {
                let who = list.join(" ");
                stage.author = Some(who.clone());
                stage.config_step(clock, &format!("MAINTAINER {who}"))
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
                stage.config_step(clock, &format!("VOLUME [{}]", vols.join(" ")))
            }
            Keyword::Shell => {
                stage.config.extra.insert(
                    "Shell".into(),
                    Value::Array(list.iter().cloned().map(Value::String).collect()),
                );
                stage.config_step(clock, &format!("SHELL [{}]", list.join(" ")))
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
                stage.config_step(clock, &format!("ONBUILD {original}"))
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
                let mut container = Container::new(&stage.image)?;
                container.set_clock(clock);
                container.create_dir_all(dir.as_str())?;
                let created_by = format!("{} #(nop) WORKDIR {dir}", stage.shell().join(" "));
                let layer = stage.commit_container(clock, &container, created_by)?;
                self.last().layer = layer;
                Ok(())
            }
            Keyword::Run => self.run_step(stage, ins, list),
            Keyword::Copy | Keyword::Add => self.copy(stage, ins, &vars),
        }
    }

    fn last(&mut self) -> &mut StepReport {
        self.steps.last_mut().expect("a step was pushed")
    }

    fn healthcheck(&mut self, stage: &mut Stage, ins: &Instruction, list: &[String]) -> Result<()> {
        if !ins.flags().is_empty() {
            return Err(Error::Unsupported {
                what: "HEALTHCHECK flags".into(),
            });
        }
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
        stage.config.healthcheck = Some(serde_json::json!({ "Test": test }));
        let comment = format!(
            "HEALTHCHECK &{{{} \"0s\" \"0s\" \"0s\" '\\x00'}}",
            go_quote_list(&test)
        );
        stage.config_step(self.build.clock, &comment)
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
        let mut created_by = String::new();
        if !args.is_empty() {
            created_by = format!("|{} {} ", args.len(), args.join(" "));
        }
        created_by.push_str(&argv.join(" "));
        let mut step = RunStep::new(argv);
        step.env = stage.config.env.iter().cloned().chain(args).collect();
        step.user = stage.config.user.clone().unwrap_or_default();
        step.workdir = stage.config.working_dir.clone().unwrap_or_default();
        let mut container = Container::new(&stage.image)?;
        container.set_clock(self.build.clock);
        executor.run(&mut container, &step)?;
        let layer = stage.commit_container(self.build.clock, &container, created_by)?;
        let last = self.last();
        last.layer = layer;
        last.ran = true;
        Ok(())
    }

    fn copy(
        &mut self,
        stage: &mut Stage,
        ins: &Instruction,
        vars: &BTreeMap<String, String>,
    ) -> Result<()> {
        if !ins.heredocs().is_empty() {
            return Err(Error::Unsupported {
                what: "COPY or ADD with a heredoc".into(),
            });
        }
        let expand = |w: &str| {
            self.lexer
                .process_word(w, vars)
                .map_err(|e| word_error(ins, e))
        };
        let mut words = Vec::new();
        for w in ins.args().to_strings() {
            words.push(expand(&w)?);
        }
        let Some(dest) = words.pop() else {
            return Err(error(ins, "COPY needs a destination"));
        };
        let source_tree = match ins.flag("from") {
            None => self.context.clone(),
            Some(f) => {
                let f = expand(f)?;
                match self.find_stage(&f) {
                    Some(s) => s.image.tree()?,
                    None => match &self.build.lookup {
                        Some(lookup) => lookup(&f)?.tree()?,
                        None => return Err(error(ins, format!("cannot resolve `{f}`"))),
                    },
                }
            }
        };
        let mut container = Container::new(&stage.image)?;
        container.set_clock(self.build.clock);
        let owner = match ins.flag("chown") {
            Some(c) => Some(chown(&container, &expand(c)?).map_err(|r| error(ins, r))?),
            None => None,
        };
        let chmod = match ins.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(&expand(m)?, 8).map_err(|_| error(ins, "invalid --chmod"))?,
            ),
            None => None,
        };
        let mut sources: Vec<(String, Node)> = Vec::new();
        for src in &words {
            if ins.keyword() == Keyword::Add && (src.contains("://") || src.starts_with("git@")) {
                return Err(Error::Unsupported {
                    what: format!("ADD of a URL or git source `{src}`"),
                });
            }
            let pattern = clean(src);
            let pattern = pattern.trim_start_matches('/');
            let found: Vec<(String, Node)> = if pattern.is_empty() {
                vec![(String::new(), source_tree.root().clone())]
            } else if pattern.contains(['*', '?', '[']) {
                source_tree
                    .walk()
                    .filter(|(p, _)| glob(pattern, &p.to_string()))
                    .map(|(p, n)| (p.to_string(), n.clone()))
                    .collect()
            } else {
                source_tree
                    .lookup(pattern)?
                    .map(|n| (pattern.to_owned(), n))
                    .into_iter()
                    .collect()
            };
            if found.is_empty() {
                return Err(error(
                    ins,
                    format!("no source files were specified matching `{src}`"),
                ));
            }
            sources.extend(found);
        }
        let workdir = stage
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{workdir}/{dest}")
        };
        let dest_dir = clean(&abs);
        let into_dir = dest.ends_with('/')
            || dest == "."
            || sources.len() > 1
            || container
                .metadata(dest_dir.as_str())
                .is_ok_and(|n| n.is_dir());
        let mut hashes = Vec::new();
        for (path, node) in &sources {
            let name = path.rsplit('/').next().unwrap_or("");
            if node.is_dir() {
                hashes.push(format!("dir:{}", dir_hash(&source_tree, path)));
                container.create_dir_all(dest_dir.as_str())?;
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}/")
                };
                for (p, n) in source_tree.walk() {
                    let p = p.to_string();
                    let Some(rel) = p.strip_prefix(&prefix) else {
                        continue;
                    };
                    place(
                        &mut container,
                        &format!("{dest_dir}/{rel}"),
                        n,
                        owner,
                        chmod,
                    )?;
                }
            } else {
                let contents = node
                    .contents()
                    .map(|c| c.to_bytes())
                    .transpose()?
                    .unwrap_or_default();
                hashes.push(format!("file:{}", hex::encode(Sha256::digest(&contents))));
                if ins.keyword() == Keyword::Add
                    && ins.flag("from").is_none()
                    && is_archive(&contents)
                {
                    // A local archive is extracted into the destination, with its own owners.
                    let archive = Tree::new().apply(&Layer::from_blob(contents)?)?;
                    container.create_dir_all(dest_dir.as_str())?;
                    for (p, n) in archive.walk() {
                        let meta = n.metadata();
                        let own = Some((meta.uid, meta.gid));
                        place(&mut container, &format!("{dest_dir}/{p}"), n, own, None)?;
                    }
                    continue;
                }
                let target = if into_dir {
                    format!("{dest_dir}/{name}")
                } else {
                    dest_dir.clone()
                };
                if let Some(parent) = target
                    .rsplit_once('/')
                    .map(|(p, _)| p)
                    .filter(|p| !p.is_empty())
                {
                    container.create_dir_all(parent)?;
                }
                place(&mut container, &target, node, owner, chmod)?;
            }
        }
        let source = if hashes.len() == 1 {
            hashes.remove(0)
        } else {
            format!(
                "multi:{}",
                hex::encode(Sha256::digest(hashes.join(",").as_bytes()))
            )
        };
        let created_by = format!(
            "{} #(nop) {} {source} in {dest} ",
            stage.shell().join(" "),
            ins.keyword()
        );
        let layer = stage.commit_container(self.build.clock, &container, created_by)?;
        self.last().layer = layer;
        Ok(())
    }
}

fn place(
    container: &mut Container,
    target: &str,
    node: &Node,
    owner: Option<(u64, u64)>,
    chmod: Option<u32>,
) -> Result<()> {
    let meta = node.metadata();
    if node.is_dir() {
        container.create_dir_all(target)?;
    } else if let Some(link) = node.link_target() {
        if container.symlink_metadata(target).is_ok() {
            container.remove_file(target)?;
        }
        container.symlink(link.clone(), target)?;
        let (uid, gid) = owner.unwrap_or((0, 0));
        return container.set_owner(target, uid, gid);
    } else if let Some(contents) = node.contents() {
        container.write(target, contents.clone())?;
    } else {
        return Err(Error::Unsupported {
            what: format!("copying the special file `{target}`"),
        });
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    container.set_owner(target, uid, gid)?;
    container.set_permissions(target, chmod.unwrap_or(meta.mode & 0o7777))?;
    container.set_mtime(target, meta.mtime)
}

/// Whether ADD extracts `contents`: gzip, bzip2, xz or zstd magic, or a tar header.
fn is_archive(contents: &[u8]) -> bool {
    let magic: [&[u8]; 4] = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"];
    magic.iter().any(|m| contents.starts_with(m)) || contents.get(257..262) == Some(&b"ustar"[..])
}

fn dir_hash(tree: &Tree, path: &str) -> String {
    let mut h = Sha256::new();
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    for (p, n) in tree.walk() {
        let p = p.to_string();
        let Some(rel) = p.strip_prefix(&prefix) else {
            continue;
        };
        h.update(rel.as_bytes());
        h.update([0]);
        if let Some(Ok(c)) = n.contents().map(|c| c.to_bytes()) {
            h.update(&c);
        }
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// `--chown`: `user[:group]`, names from the container's /etc/passwd and /etc/group.
fn chown(container: &Container, spec: &str) -> std::result::Result<(u64, u64), String> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
    let find = |file: &str, name: &str, field: usize| -> std::result::Result<u64, String> {
        if let Ok(n) = name.parse() {
            return Ok(n);
        }
        let text = container
            .read(file)
            .map_err(|_| format!("unable to find `{name}`: no {file}"))?;
        String::from_utf8_lossy(&text)
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f[0] == name && f.len() > field)
            .and_then(|f| f[field].parse().ok())
            .ok_or_else(|| format!("unable to find `{name}` in {file}"))
    };
    let uid = find("etc/passwd", user, 2)?;
    let gid = if spec.contains(':') || user.parse::<u64>().is_err() {
        match find("etc/group", group, 2) {
            Ok(g) => g,
            Err(_) if !spec.contains(':') => find("etc/passwd", user, 3)?,
            Err(e) => return Err(e),
        }
    } else {
        uid
    };
    Ok((uid, gid))
}

/// Go's `filepath.Match`: `*`, `?`, `[...]`, `\` escapes; `*` does not cross `/`.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&i| i == 0 || n[i - 1] != '/')
            .any(|i| glob_at(&p[1..], &n[i..])),
        Some('?') => n.first().is_some_and(|&c| c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            let Some(end) = p.iter().skip(1).position(|&x| x == ']').map(|e| e + 1) else {
                return false;
            };
            let class = &p[1..end];
            let (neg, class) = match class.first() {
                Some('^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != neg && c != '/' && glob_at(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_is_go_filepath_match() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "d/a.txt"));
        assert!(glob("d/?.t[a-z]t", "d/a.txt"));
        assert!(!glob("[^a]", "a"));
    }

    #[test]
    fn go_quote_list_is_percent_q() {
        assert_eq!(
            go_quote_list(&["a".into(), "b \"c\"".into()]),
            r#"["a" "b \"c\""]"#
        );
    }
}
