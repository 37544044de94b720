//! The commands that read and write image files.

use std::io::Write;
use std::path::Path;

use layercake::archive::{self, ImportOptions};
use layercake::config::rfc3339;
use layercake::{Layer, Node};

use crate::root::Root;
use crate::source::{load, save, with_spinner, Result};

pub fn inspect(root: &Root, out: &mut impl Write, image: &str, size: bool) -> Result<()> {
    let loaded = load(root, image)?;
    if size {
        with_spinner("reading the layers".into(), || {
            Ok(loaded.image.read_layers()?)
        })?;
    }
    let inspect = match loaded.stored_tags {
        // Every tag the image has in the store.
        Some(_) => root.store()?.inspect(image)?,
        None => {
            let mut inspect = loaded.image.inspect();
            inspect.repo_tags = loaded.names();
            inspect
        }
    };
    writeln!(out, "{}", serde_json::to_string_pretty(&[inspect])?)?;
    Ok(())
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

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

pub fn history(root: &Root, out: &mut impl Write, image: &str, no_trunc: bool) -> Result<()> {
    let image = load(root, image)?.image;
    writeln!(
        out,
        "{:<20} {:<22} {:<46} {:<10} COMMENT",
        "IMAGE", "CREATED", "CREATED BY", "SIZE"
    )?;
    for row in image.history() {
        let id = match row.id {
            Some(id) if no_trunc => id.to_string(),
            Some(id) => id.to_hex().to_string()[..12].to_owned(),
            None => "<missing>".to_owned(),
        };
        let created_by = if no_trunc {
            row.created_by.clone()
        } else {
            truncate(&row.created_by, 45)
        };
        writeln!(
            out,
            "{id:<20} {:<22} {created_by:<46} {:<10} {}",
            row.created,
            // A layer not read (this command reads none) has no known size yet.
            row.size.map_or_else(|| "-".to_owned(), human_size),
            row.comment
        )?;
    }
    Ok(())
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

/// One line of `ls -l`: mode, owner, size, mtime, layer, path and link target.
pub fn long_line(path: &str, node: &Node) -> String {
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
    line
}

pub fn ls(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    path: &str,
    long: bool,
    recursive: bool,
) -> Result<()> {
    let tree = load(root, image)?.image.tree()?;
    let (dir, node) = tree.resolve(path)?;
    if !node.is_dir() {
        let shown = format!("/{dir}");
        writeln!(
            out,
            "{}",
            if long {
                long_line(&shown, &node)
            } else {
                shown
            }
        )?;
        return Ok(());
    }
    if recursive {
        for (p, node) in tree.walk_under(dir.as_bytes()) {
            let shown = format!("/{p}");
            writeln!(
                out,
                "{}",
                if long { long_line(&shown, node) } else { shown }
            )?;
        }
    } else {
        for (name, node) in tree.read_dir(dir.as_bytes())? {
            writeln!(out, "{}", if long { long_line(&name, &node) } else { name })?;
        }
    }
    Ok(())
}

pub fn cat(root: &Root, out: &mut impl Write, image: &str, path: &str) -> Result<()> {
    let mut file = load(root, image)?.image.tree()?.open(path)?;
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
    for skipped in &report.skipped {
        writeln!(out, "skipped /{skipped}")?;
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
    let mut options = ImportOptions::new();
    if let Some(message) = message {
        options = options.commit(layercake::Commit::new().message(message));
    }
    let image = with_spinner(format!("importing {}", file.display()), || {
        Ok(archive::import_layer(Layer::open(file)?, &options)?)
    })?;
    let names: Vec<String> = tag.into_iter().collect();
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
    let loaded = load(root, image)?;
    // An image in the store keeps its tags (or the one it was named by).
    let names = if tags.is_empty() && loaded.stored_tags.is_some() {
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

pub fn squash(
    root: &Root,
    image: &str,
    output: &str,
    from: usize,
    format: Option<&str>,
    tags: Vec<String>,
) -> Result<()> {
    let loaded = load(root, image)?;
    let image = &loaded.image;
    let count = image.layers().count();
    if from > count {
        return Err(format!("--from {from}: the image has {count} layers").into());
    }
    let squashed = image.squash(from, &layercake::Commit::new())?;
    let names = if tags.is_empty() {
        loaded.names()
    } else {
        tags
    };
    save(output, format, None, None, &squashed, &names, None)?;
    println!("{}", squashed.id());
    Ok(())
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
