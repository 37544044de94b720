//! COPY and ADD: sources from the context, a stage or an image, Go `filepath.Match` globs,
//! directory contents merged, trailing-slash and WORKDIR rules, `--chown` names from the
//! image's `/etc/passwd` and `/etc/group`, `--chmod`, a local archive extracted by ADD.
//!
//! `created_by` names the source as `file:<hash>`, `dir:<hash>` or `multi:<hash>` with the
//! classic builder's hashes (`copy/tarsum.rs`); the build cache keys COPY and ADD by them.

use std::collections::BTreeMap;

mod tarsum;

use super::{clean, error, word_error, Ran, Run, Stage, Trace};
use crate::build::parser::{Instruction, Keyword};
use crate::container::Container;
use crate::contents::Contents;
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::tree::{Node, Tree};
use crate::FileType;

impl Run<'_> {
    pub(super) fn copy(
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
        let lexer = self.lexer;
        let expand = |w: &str| lexer.process_word(w, vars).map_err(|e| word_error(ins, e));
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
                    None => self.base(&f)?.tree()?,
                }
            }
        };
        let mut container = Container::new(&stage.image)?;
        container.set_clock(self.build.clock);
        let owner = match ins.flag("chown") {
            Some(c) => {
                let (uid, gid) = chown(&container, &expand(c)?).map_err(|r| error(ins, r))?;
                Owner::Set(uid, gid)
            }
            // The classic builder keeps the owners of what it copies from a stage or image.
            None if ins.flag("from").is_some() => Owner::Keep,
            None => Owner::Root,
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
        // A source that is a symlink is followed in its root, as classic does: what it points
        // to is copied under the link's name, and hashed as itself.
        let sources = sources
            .into_iter()
            .map(|(path, node)| {
                let name = path.rsplit('/').next().unwrap_or("").to_owned();
                match node.file_type() {
                    FileType::Symlink => {
                        let (p, n) = source_tree.resolve(path.as_str())?;
                        Ok((name, p.to_string(), n))
                    }
                    _ => Ok((name, path, node)),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let hashed = match ins.flag("from") {
            None => tarsum::Source::Context,
            Some(_) => tarsum::Source::Filesystem,
        };
        let hashes = sources
            .iter()
            .map(|(_, path, node)| match node.is_dir() {
                true => tarsum::dir(&source_tree, path, hashed),
                false => tarsum::file(path, node, hashed),
            })
            .collect::<Result<Vec<_>>>()?;
        let source = match &hashes[..] {
            [one] => one.clone(),
            several => tarsum::multi(several),
        };
        // Classic writes `--chown=SPEC` (expanded) glued to the hash, with no space.
        let chown_flag = match ins.flag("chown") {
            Some(c) => format!("--chown={}", expand(c)?),
            None => String::new(),
        };
        let mut cmd = stage.shell();
        cmd.push(format!(
            "#(nop) {} {chown_flag}{source} in {dest} ",
            ins.keyword()
        ));
        let created_by = cmd.join(" ");
        let ran = Ran {
            cmd,
            kind: Trace::Direct,
        };
        // The history row names the sources by their hash; the flags decide the rest.
        let flags: Vec<String> = ins.flags().iter().map(|f| format!("{f:?}")).collect();
        let step = format!("{created_by}\n{}", flags.join("\n"));
        let clock = self.build.clock;
        let extract = ins.keyword() == Keyword::Add && ins.flag("from").is_none();
        self.settle(stage, &step, move |_, stage| {
            for (name, path, node) in &sources {
                if node.is_dir() {
                    create_dirs(&mut container, &dest_dir, owner)?;
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
                    continue;
                }
                if extract {
                    if let Some(contents) = node.contents().filter(|c| is_archive(c)) {
                        let contents = contents.clone();
                        // A local archive is extracted into the destination, with its own
                        // owners.
                        let archive = Tree::new().apply(&Layer::from_blob(contents)?)?;
                        container.create_dir_all(dest_dir.as_str())?;
                        for (p, n) in archive.walk() {
                            place(
                                &mut container,
                                &format!("{dest_dir}/{p}"),
                                n,
                                Owner::Keep,
                                None,
                            )?;
                        }
                        continue;
                    }
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
                    create_dirs(&mut container, parent, owner)?;
                }
                place(&mut container, &target, node, owner, chmod)?;
            }
            stage.commit_container(clock, &container, created_by, &ran)
        })
    }
}

/// Who owns what COPY or ADD writes.
#[derive(Debug, Clone, Copy)]
enum Owner {
    /// root (COPY and ADD from the context without `--chown`).
    Root,
    /// The source's owner (`--from` without `--chown`, a tar's entries).
    Keep,
    /// `--chown`.
    Set(u64, u64),
}

impl Owner {
    fn of(self, meta: &crate::entry::Metadata) -> (u64, u64) {
        match self {
            Owner::Root => (0, 0),
            Owner::Keep => (meta.uid, meta.gid),
            Owner::Set(uid, gid) => (uid, gid),
        }
    }
}

fn place(
    container: &mut Container,
    target: &str,
    node: &Node,
    owner: Owner,
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
        let (uid, gid) = owner.of(meta);
        container.set_link_owner(target, uid, gid)?;
        return container.set_link_mtime(target, meta.mtime);
    } else if let Some(contents) = node.contents() {
        container.write(target, contents.clone())?;
    } else {
        return Err(Error::Unsupported {
            what: format!("copying the special file `{target}`"),
        });
    }
    let (uid, gid) = owner.of(meta);
    container.set_owner(target, uid, gid)?;
    container.set_permissions(target, chmod.unwrap_or(meta.mode & 0o7777))?;
    container.set_mtime(target, meta.mtime)
}

/// Creates `dir` and its missing parents (0755, root); with `--chown`, the new ones get its
/// owner, as the classic builder's `MkdirAllAndChownNew` does.
fn create_dirs(container: &mut Container, dir: &str, owner: Owner) -> Result<()> {
    let mut missing = Vec::new();
    let mut p = dir.trim_end_matches('/');
    while !p.is_empty() && !container.exists(p) {
        missing.push(p.to_owned());
        p = p.rsplit_once('/').map_or("", |(parent, _)| parent);
    }
    container.create_dir_all(dir)?;
    if let Owner::Set(uid, gid) = owner {
        for m in missing {
            container.set_owner(m.as_str(), uid, gid)?;
        }
    }
    Ok(())
}

/// Whether ADD extracts `contents`: gzip, bzip2, xz or zstd magic, or a tar header.
fn is_archive(contents: &Contents) -> bool {
    let mut head = [0u8; 262];
    let mut len = 0;
    while len < head.len() {
        match contents.read_at(len as u64, &mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let head = &head[..len];
    let magic: [&[u8]; 4] = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd"];
    magic.iter().any(|m| head.starts_with(m)) || head.get(257..262) == Some(&b"ustar"[..])
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
}
