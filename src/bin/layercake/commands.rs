//! The commands that read and write image files.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use layercake::archive::{self, ImportOptions};
use layercake::config::rfc3339;
use layercake::{Compression, Layer, Node};

use crate::root::Root;
use crate::source::{check_tags, load, save, with_spinner, Result};
use crate::stored::{human_age, parse_rfc3339, short, table};

/// `docker image inspect`: a JSON array of one object, four-space indented, in Docker's key
/// order. Every layer is read, so that `Size` is shown as Docker always shows it.
///
/// `docker://REF` is read without its layers: manifest and config alone, and no `Size`.
pub fn inspect(root: &Root, out: &mut impl Write, image: &str, sizes: bool) -> Result<()> {
    if let Some(reference) = crate::registry::remote(image) {
        return crate::registry::inspect(out, image, &reference?);
    }
    let loaded = load(root, image)?;
    if sizes {
        with_spinner("reading the layers".into(), || {
            Ok(loaded.image.read_layers()?)
        })?;
    }
    let inspect = match loaded.stored_tags {
        // Every tag the image has in the store.
        Some(_) => root.store()?.inspect(image)?,
        None => {
            let mut inspect = loaded.image.inspect();
            inspect.repo_tags = familiar(&loaded.names());
            inspect
        }
    };
    print_inspect(out, &inspect)
}

/// Prints one [`layercake::Inspect`] as `docker image inspect` does: a JSON array of one
/// object, four-space indented.
pub fn print_inspect(out: &mut impl Write, inspect: &layercake::Inspect) -> Result<()> {
    let mut json = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut json, formatter);
    serde::Serialize::serialize(&[inspect], &mut serializer)?;
    out.write_all(&json)?;
    writeln!(out)?;
    Ok(())
}

/// Names as `docker` shows tags: references in familiar form (`busybox:latest`, never
/// `docker.io/library/busybox:latest`); a name that is not a reference (an OCI ref name
/// such as `v1.0`) as it is.
pub fn familiar(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| match layercake::Reference::parse(n) {
            Ok(r) if (n.contains(':') || n.contains('/')) && r.digest().is_none() => {
                r.familiar().to_string()
            }
            _ => n.clone(),
        })
        .collect()
}

/// Docker's sizes: decimal units, three significant digits (`1.23MB`).
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < units.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    let digits = if size >= 100.0 {
        0
    } else if size >= 10.0 {
        1
    } else {
        2
    };
    format!(
        "{:.*}{}",
        if unit == 0 { 0 } else { digits },
        size,
        units[unit]
    )
}

/// Docker's `Ellipsis`: at most `max` characters, the last of them `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// `docker history`: newest first, Docker's columns. Every layer is read for its size,
/// unless `sizes` is false.
/// Times are ages (`3 years ago`) unless `human` is false, then RFC 3339 in UTC.
pub fn history(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    human: bool,
    no_trunc: bool,
    sizes: bool,
) -> Result<()> {
    let image = load(root, image)?.image;
    if sizes {
        with_spinner("reading the layers".into(), || Ok(image.read_layers()?))?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let created = if human { "CREATED" } else { "CREATED AT" };
    let mut rows = vec![["IMAGE", created, "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for row in image.history() {
        let id = match row.id {
            Some(id) if no_trunc => id.to_string(),
            Some(id) => short(id.to_hex()),
            None => "<missing>".to_owned(),
        };
        let when = match parse_rfc3339(&row.created) {
            Some(t) if human => human_age(now - t),
            Some(t) => rfc3339(t),
            None => "N/A".to_owned(),
        };
        let created_by = row.created_by.replace('\t', " ");
        let created_by = if no_trunc {
            created_by
        } else {
            truncate(&created_by, 45)
        };
        // Known for every layer read (all of them, unless `--no-size`).
        let size = match row.size {
            None => "-".to_owned(),
            Some(size) if human => human_size(size),
            Some(size) => size.to_string(),
        };
        rows.push(vec![id, when, created_by, size, row.comment]);
    }
    table(out, &rows)
}

pub fn layers(root: &Root, out: &mut impl Write, image: &str) -> Result<()> {
    let image = load(root, image)?.image;
    // Every layer read (digests verified, entries parsed), several at once.
    with_spinner("reading the layers".into(), || Ok(image.read_layers()?))?;
    for (i, (layer, chain_id)) in image.layers().zip(image.chain_ids()).enumerate() {
        let changes = layer.changeset()?;
        let blob = layer.blob();
        writeln!(out, "layer {i}")?;
        writeln!(out, "  diff id:     {}", layer.diff_id())?;
        writeln!(out, "  blob:        {}", blob.digest())?;
        writeln!(out, "  media type:  {}", blob.media_type())?;
        writeln!(
            out,
            "  blob size:   {} bytes ({})",
            blob.size(),
            blob.compression()
        )?;
        writeln!(out, "  tar size:    {} bytes", layer.size()?)?;
        writeln!(
            out,
            "  entries:     {} ({} whiteouts, {} opaque directories)",
            changes.entries().count(),
            changes.whiteouts().count(),
            changes.opaque_dirs().count()
        )?;
        writeln!(out, "  chain id:    {chain_id}")?;
    }
    Ok(())
}

/// One line of `ls -l`: mode, owner, size, mtime, layer, path and link target; a second or
/// later name of a hardlinked file says `link to` its first name, as `tar tv` does.
pub fn long_line(path: &str, node: &Node, link_to: Option<&str>) -> String {
    let m = node.metadata();
    let mut line = format!(
        "{} {:>5}:{:<5} {:>10} {} layer {:>3}  {path}",
        node.mode_string(),
        m.uid,
        m.gid,
        match node.device() {
            Some((major, minor)) => format!("{major},{minor}"),
            None => node.size().to_string(),
        },
        rfc3339(m.mtime),
        node.layer().map_or("-".to_string(), |l| l.to_string()),
    );
    if let Some(target) = node.link_target() {
        line.push_str(" -> ");
        line.push_str(&String::from_utf8_lossy(target));
    }
    if let Some(first) = link_to {
        line.push_str(" link to ");
        line.push_str(first);
    }
    line
}

/// For every name of a hardlinked file but the first (in path order), the first name.
fn hardlinks(tree: &layercake::Tree) -> std::collections::BTreeMap<String, String> {
    use std::collections::BTreeMap;
    // Names of one file share size, mode, owner and mtime: compare only within those.
    // Size, mode, uid, gid, mtime.
    type Key = (u64, u32, u64, u64, i64);
    let mut groups: BTreeMap<Key, Vec<(String, Node)>> = BTreeMap::new();
    for (path, node) in tree.walk() {
        if node.is_dir() || node.link_target().is_some() {
            continue;
        }
        let m = node.metadata();
        groups
            .entry((node.size(), m.mode, m.uid, m.gid, m.mtime))
            .or_default()
            .push((format!("/{path}"), node.clone()));
    }
    let mut links = BTreeMap::new();
    for names in groups.values().filter(|g| g.len() > 1) {
        for (i, (path, node)) in names.iter().enumerate() {
            if let Some((first, _)) = names[..i].iter().find(|(_, n)| n.same_file(node)) {
                if !links.contains_key(first) {
                    links.insert(path.clone(), first.clone());
                }
            }
        }
    }
    links
}

/// The bytes of a path argument (not UTF-8 is fine: image paths are bytes).
fn arg_bytes(path: &OsStr) -> &[u8] {
    path.as_bytes()
}

/// `ls`: every path absolute (`/etc/motd`), listed or recursive alike.
pub fn ls(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    path: &OsStr,
    long: bool,
    recursive: bool,
) -> Result<()> {
    let tree = load(root, image)?.image.tree()?;
    let typed = path.to_string_lossy();
    let (dir, node) = tree
        .resolve(arg_bytes(path))
        .map_err(|e| format!("{typed}: {e}"))?;
    let links = if long {
        hardlinks(&tree)
    } else {
        Default::default()
    };
    let line = |shown: String, node: &Node| {
        if long {
            long_line(&shown, node, links.get(&shown).map(String::as_str))
        } else {
            shown
        }
    };
    if !node.is_dir() {
        writeln!(out, "{}", line(format!("/{dir}"), &node))?;
        return Ok(());
    }
    if recursive {
        for (p, node) in tree.walk_under(dir.as_bytes()) {
            writeln!(out, "{}", line(format!("/{p}"), node))?;
        }
    } else {
        let prefix = if dir.as_bytes().is_empty() {
            "/".to_owned()
        } else {
            format!("/{dir}/")
        };
        for (name, node) in tree.read_dir(dir.as_bytes())? {
            writeln!(out, "{}", line(format!("{prefix}{name}"), &node))?;
        }
    }
    Ok(())
}

/// `cat`: a file's bytes; an error names the path as it was typed.
pub fn cat(root: &Root, out: &mut impl Write, image: &str, path: &OsStr) -> Result<()> {
    let tree = load(root, image)?.image.tree()?;
    let mut file = tree
        .open(arg_bytes(path))
        .map_err(|e| format!("{}: {e}", path.to_string_lossy()))?;
    std::io::copy(&mut file, out)?;
    out.flush()?;
    Ok(())
}

pub fn diff(root: &Root, out: &mut impl Write, from: &str, to: &str) -> Result<()> {
    // In one store, images from two files share the layers and merged trees they have in
    // common (by DiffId and ChainId), so the diff walks only what differs.
    let mut store = layercake::Store::new();
    let from = store.add(&load(root, from)?.image)?.image;
    let to = store.add(&load(root, to)?.image)?.image;
    for change in from.diff(&to)? {
        writeln!(out, "{change}")?;
    }
    Ok(())
}

pub fn export(root: &Root, image: &str, output: &Path) -> Result<()> {
    let tree = load(root, image)?.image.tree()?;
    with_spinner(format!("writing {}", output.display()), || {
        let file = std::fs::File::create(output)
            .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
        let mut w = std::io::BufWriter::with_capacity(256 << 10, file);
        archive::export(&tree, &mut w)?;
        w.flush()?;
        Ok(())
    })
}

#[cfg(target_os = "linux")]
pub fn unpack(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    dir: &Path,
    options: &layercake::UnpackOptions,
) -> Result<()> {
    let tree = load(root, image)?.image.tree()?;
    let report = with_spinner(format!("unpacking into {}", dir.display()), || {
        Ok(layercake::unpack(&tree, dir, options)?)
    })?;
    writeln!(
        out,
        "unpacked {} entries ({} bytes) into {}",
        report.entries(),
        report.bytes,
        dir.display()
    )?;
    if report.replaced > 0 {
        writeln!(out, "replaced {} entries already there", report.replaced)?;
    }
    use layercake::unpack::SkipReason;
    for skipped in &report.skipped {
        let path = &skipped.path;
        match &skipped.reason {
            SkipReason::SetidBits { mode } => writeln!(
                out,
                "{} cleared: /{path} (mode {mode:04o} written as {:04o}; \
                 --keep-setuid keeps it)",
                match (mode & 0o4000 != 0, mode & 0o2000 != 0) {
                    (true, true) => "setuid and setgid bits",
                    (true, false) => "setuid bit",
                    _ => "setgid bit",
                },
                mode & !0o6000
            )?,
            SkipReason::Device => writeln!(
                out,
                "skipped /{path}: device node not created (--devices creates it, as root)"
            )?,
            other => writeln!(out, "skipped /{path}: {other}")?,
        }
    }
    Ok(())
}

pub fn import(
    file: &Path,
    output: &str,
    tag: Option<String>,
    message: Option<String>,
    format: Option<&str>,
) -> Result<()> {
    let names: Vec<String> = tag.into_iter().collect();
    check_tags(output, &names)?;
    let mut options = ImportOptions::new();
    if let Some(message) = message {
        options = options.commit(layercake::Commit::new().message(message));
    }
    let image = with_spinner(format!("importing {}", file.display()), || {
        Ok(archive::import_layer(
            Layer::open_with(file, crate::source::load_options().read_in_force())?,
            &options,
        )?)
    })?;
    save(output, format, None, None, &image, &names, None)?;
    println!("{}", image.id());
    Ok(())
}

pub fn convert(
    root: &Root,
    image: &str,
    output: &str,
    format: Option<&str>,
    compression: Option<&str>,
    level: Option<u32>,
    tags: Vec<String>,
) -> Result<()> {
    check_tags(output, &tags)?;
    let loaded = load(root, image)?;
    // An image in the store keeps its tags (or the one it was named by); one pulled, its
    // reference.
    let names = if tags.is_empty() && (loaded.stored_tags.is_some() || loaded.remote.is_some()) {
        loaded.names()
    } else {
        tags
    };
    save(
        output,
        format,
        compression,
        level,
        &loaded.image,
        &names,
        loaded.listed.as_ref(),
    )
}

/// `squash`: layers FROM.. as one, compressed as the input's top layer was, with a history
/// row saying which layers it holds and when it was made (as `docker build --squash`
/// writes one row for its merged layer).
pub fn squash(
    root: &Root,
    image: &str,
    output: &str,
    from: usize,
    format: Option<&str>,
    tags: Vec<String>,
) -> Result<()> {
    check_tags(output, &tags)?;
    let loaded = load(root, image)?;
    let image = &loaded.image;
    let count = image.layers().count();
    if from >= count {
        return Err(format!(
            "--from {from}: the image has {count} layers (0 to {} can start a squash)",
            count.saturating_sub(1)
        )
        .into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    // The history row a commit would write, made now, saying what it merged.
    let commit = layercake::Commit::new()
        .created(now)
        .message(format!("merge {} to layer {from}", image.id()));
    let squashed = image.squash(from, &commit)?;
    // The new layer in the input's compression (the lower layers keep their blobs).
    let compression = image
        .layers()
        .last()
        .map_or(Compression::None, |l| l.blob().compression());
    let mut layers: Vec<Layer> = squashed.layers().cloned().collect();
    if let Some(top) = layers.last_mut() {
        if compression != Compression::None && top.blob().compression() != compression {
            *top = top.compress(compression, default_level(compression))?;
        }
    }
    let squashed = layercake::Image::from_parts(squashed.config().as_bytes().clone(), layers)?;
    let names = if tags.is_empty() {
        loaded.names()
    } else {
        tags
    };
    save(output, format, None, None, &squashed, &names, None)?;
    println!("{}", squashed.id());
    Ok(())
}

/// The level `Layer::compress` uses when none is asked for: gzip 6, zstd 3 (as the writer).
fn default_level(compression: Compression) -> u32 {
    match compression {
        Compression::Zstd => 3,
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
    }
}
