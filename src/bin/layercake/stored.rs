//! The commands of the image store, in `docker`'s words and output shapes: load, images,
//! save, tag, rmi, prune, verify, df.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use layercake::archive::{Archive, Format, Writer};
use layercake::store::AddOptions;
use layercake::{DiffId, Image, Progress, Reference};

use crate::commands::human_size;
use crate::root::Root;
use crate::source::{load as load_image, with_spinner, Result};

/// The first 12 hex digits of a digest's hex, as `docker` shortens ids.
pub fn short(hex: impl std::fmt::Display) -> String {
    let mut s = hex.to_string();
    s.truncate(12);
    s
}

/// The names of an image file that become tags: references (`busybox:latest`,
/// `docker.io/library/busybox:latest`), not bare OCI ref names such as `latest` or `v1.0`.
fn tags_in_file(names: &[String]) -> Vec<Reference> {
    names
        .iter()
        .filter(|n| n.contains(':') || n.contains('/'))
        .filter_map(|n| Reference::parse(n).ok())
        .filter(|r| r.digest().is_none())
        .collect()
}

/// `docker load`: every image of FILE into the store, a line per layer, then its names.
pub fn load(root: &Root, out: &mut (impl Write + Send), input: &Path) -> Result<()> {
    if let Some(text) = input.to_str() {
        crate::source::check_transport(text)?;
    }
    let archive = Archive::open_with(input, crate::source::load_options())?;
    let mut store = root.open()?;
    // Bars on a terminal only; the lines go to standard output either way.
    let multi = std::io::stderr().is_terminal().then(MultiProgress::new);
    let style = ProgressStyle::with_template(
        "{msg}: Loading [{bar:20}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    for item in archive.images() {
        let tags = tags_in_file(item.names());
        let mut bars: BTreeMap<DiffId, ProgressBar> = BTreeMap::new();
        let mut failed: Option<std::io::Error> = None;
        let multi = multi.as_ref();
        let out_ref: &mut (dyn Write + Send) = out;
        let mut print = |line: String| {
            let result = match multi {
                Some(m) => m.suspend(|| writeln!(out_ref, "{line}")),
                None => writeln!(out_ref, "{line}"),
            };
            if let Err(e) = result {
                failed.get_or_insert(e);
            }
        };
        let mut options = AddOptions::new();
        for tag in &tags {
            options = options.tag(tag.to_string());
        }
        let options = options.progress(|p: &Progress| match p {
            Progress::Exists { diff_id } => print(format!(
                "Layer sha256:{} already exists",
                short(diff_id.to_hex())
            )),
            Progress::Copying {
                diff_id,
                done,
                total,
            } => {
                if let Some(m) = multi {
                    let bar = bars.entry(*diff_id).or_insert_with(|| {
                        let bar = m.add(ProgressBar::new(*total).with_style(style.clone()));
                        bar.set_message(short(diff_id.to_hex()));
                        bar
                    });
                    bar.set_position(*done);
                }
            }
            Progress::Stored { diff_id, size } => {
                if let Some(bar) = bars.remove(diff_id) {
                    bar.finish_and_clear();
                    if let Some(m) = multi {
                        m.remove(&bar);
                    }
                }
                print(format!(
                    "Loaded layer sha256:{} ({})",
                    short(diff_id.to_hex()),
                    human_size(*size)
                ))
            }
            _ => {}
        });
        let report = store.add_with(item.image(), options);
        if let Some(e) = failed {
            return Err(e.into());
        }
        let report = report?;
        if tags.is_empty() {
            writeln!(out, "Loaded image ID: {}", report.image.id())?;
        }
        for tag in &tags {
            writeln!(out, "Loaded image: {}", tag.familiar())?;
        }
    }
    Ok(())
}

/// Parses RFC 3339 (`2023-06-12T23:05:42.123Z`, `…+02:00`) to seconds since the epoch, as
/// the library's [`Timestamp`](layercake::config::Timestamp) reads it.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    layercake::config::Timestamp::parse(text)
        .ok()
        .map(|t| t.unix_seconds())
}

/// Docker's `CREATED`: `About an hour ago`, `3 weeks ago`, `2 years ago`.
pub fn human_age(secs: i64) -> String {
    let minutes = secs / 60;
    let hours = (secs as f64 / 3600.0).round() as i64;
    let age = if secs < 1 {
        "Less than a second".to_owned()
    } else if secs == 1 {
        "1 second".to_owned()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".to_owned()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_owned()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    };
    format!("{age} ago")
}

/// Writes rows in columns as Docker's tabwriter does (`tabwriter.NewWriter(out, 10, 1, 3,
/// ' ', 0)`): each column but the last as wide as its widest cell plus three spaces, and at
/// least ten; the last cell as it is.
pub fn table(out: &mut impl Write, rows: &[Vec<String>]) -> Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = (widths[c] + 3).max(10) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn created(image: &Image) -> Option<i64> {
    image
        .config()
        .file()
        .created
        .as_deref()
        .and_then(parse_rfc3339)
}

/// `docker images`.
pub fn images(
    root: &Root,
    out: &mut impl Write,
    all: bool,
    quiet: bool,
    digests: bool,
    no_trunc: bool,
) -> Result<()> {
    let path = root.path()?;
    // A store not made yet holds no images: say so without creating it.
    let store = if path.is_dir() {
        Some(root.store()?)
    } else {
        None
    };
    let hidden = match store {
        Some(s) if !all => s.intermediates(),
        _ => Default::default(),
    };
    let mut images: Vec<&Image> = store
        .iter()
        .flat_map(|s| s.images())
        .filter(|i| !hidden.contains(&i.id()))
        .collect();
    // Newest first, as Docker lists them; ties by id for a stable order.
    images.sort_by_key(|i| (std::cmp::Reverse(created(i)), i.id()));
    let id_of = |image: &Image| {
        if no_trunc {
            image.id().to_string()
        } else {
            short(image.id().to_hex())
        }
    };
    if quiet {
        for image in &images {
            writeln!(out, "{}", id_of(image))?;
        }
        return Ok(());
    }
    let mut header = vec!["REPOSITORY".to_owned(), "TAG".to_owned()];
    if digests {
        header.push("DIGEST".to_owned());
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"].map(String::from));
    let mut rows = vec![header];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    for (store, image) in images.iter().filter_map(|i| store.map(|s| (s, *i))) {
        // Each tag with the digest of what it names: as pulled, per repository, as Docker
        // shows it.
        let mut names: Vec<(String, String, Option<String>)> = store
            .references_of(image.id())
            .iter()
            .map(|r| {
                let tag = r.tag().unwrap_or("<none>").to_owned();
                let familiar = r.familiar().to_string();
                let repository = familiar
                    .strip_suffix(&format!(":{tag}"))
                    .unwrap_or(&familiar)
                    .to_owned();
                let digest = store
                    .manifest(&r.to_string())
                    .ok()
                    .map(|(d, _)| d.digest.to_string());
                (repository, tag, digest)
            })
            .collect();
        if names.is_empty() {
            let digest = store.manifest_digest(image.id()).map(|d| d.to_string());
            names.push(("<none>".to_owned(), "<none>".to_owned(), digest));
        }
        let size: u64 = image.layers().map(|l| l.blob().size()).sum();
        let age = created(image).map_or_else(|| "N/A".to_owned(), |t| human_age(now - t));
        for (repository, tag, digest) in names {
            let mut row = vec![repository, tag];
            if digests {
                row.push(digest.unwrap_or_else(|| "<none>".to_owned()));
            }
            row.extend([id_of(image), age.clone(), human_size(size)]);
            rows.push(row);
        }
    }
    table(out, &rows)
}

/// `docker save -o FILE IMAGE…`: the images, each under its tags or the name it was given.
pub fn save(root: &Root, output: &Path, images: &[String], format: &str) -> Result<()> {
    if let Some(text) = output.to_str() {
        crate::source::check_transport(text)?;
    }
    let format: Format = format.parse()?;
    let mut writer = Writer::new(format);
    for arg in images {
        let loaded = load_image(root, arg)?;
        writer = writer.image(&loaded.image, loaded.names());
    }
    with_spinner(format!("writing {}", output.display()), || {
        match format {
            Format::OciLayout => writer.write_dir(output)?,
            _ => {
                let file = std::fs::File::create(output)
                    .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
                let mut w = std::io::BufWriter::with_capacity(256 << 10, file);
                writer.write(&mut w)?;
                w.flush()?;
            }
        }
        Ok(())
    })
}

/// `docker tag SOURCE TARGET`.
pub fn tag(root: &Root, source: &str, target: &str) -> Result<()> {
    root.open_existing()?.tag(source, target)?;
    Ok(())
}

/// `docker rmi IMAGE…`: each in turn; a failure is reported and the rest still removed.
pub fn rmi(root: &Root, out: &mut impl Write, images: &[String]) -> Result<()> {
    let mut store = root.open_existing()?;
    let mut failures = 0;
    for arg in images {
        match store.remove(arg) {
            Ok(removal) => {
                for tag in &removal.untagged {
                    writeln!(out, "Untagged: {tag}")?;
                }
                for id in &removal.images {
                    writeln!(out, "Deleted: {id}")?;
                }
                for layer in &removal.layers {
                    writeln!(out, "Deleted: {layer}")?;
                }
            }
            Err(e) => {
                eprintln!("layercake: {arg}: {e}");
                failures += 1;
            }
        }
    }
    if failures > 0 {
        return Err(format!("{failures} of {} images not removed", images.len()).into());
    }
    Ok(())
}

/// The bytes of the files under `dir`, as `du --apparent-size` counts them: what prune
/// reclaims includes files no image named (a blob of a load that lost a race).
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&entry.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

/// `docker image prune`: images no tag points at, and what only they used.
pub fn prune(root: &Root, out: &mut impl Write) -> Result<()> {
    if !root.path()?.is_dir() {
        writeln!(out, "Total reclaimed space: 0B")?;
        return Ok(());
    }
    let mut store = root.open()?;
    let before = disk_bytes(root.path()?);
    let removal = store.prune()?;
    let after = disk_bytes(root.path()?);
    if !removal.images.is_empty() || !removal.layers.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for id in &removal.images {
            writeln!(out, "deleted: {id}")?;
        }
        for layer in &removal.layers {
            writeln!(out, "deleted: {layer}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(before.saturating_sub(after))
    )?;
    Ok(())
}

/// Re-hashes the store; each problem on a line of its own, and failure if there is any.
pub fn verify(root: &Root, out: &mut impl Write) -> Result<()> {
    let store = root.store()?;
    let verification = store.verify()?;
    writeln!(
        out,
        "checked {} blobs and {} cached layers in {}",
        verification.blobs,
        verification.layers,
        root.path()?.display()
    )?;
    for problem in &verification.problems {
        writeln!(out, "{problem}")?;
    }
    if !verification.is_ok() {
        let n = verification.problems.len();
        let problems = if n == 1 { "problem" } else { "problems" };
        return Err(format!("{n} {problems} found").into());
    }
    writeln!(out, "no problems found")?;
    Ok(())
}

/// `docker system df`, for images: what is held, what is shared, and the layer cache.
pub fn df(root: &Root, out: &mut impl Write) -> Result<()> {
    let usage = if root.path()?.is_dir() {
        root.store()?.usage()?
    } else {
        layercake::Store::new().usage()?
    };
    let rows = vec![
        [
            "TYPE",
            "TOTAL",
            "SIZE",
            "SHARED",
            "WITHOUT SHARING",
            "RECLAIMABLE",
        ]
        .map(String::from)
        .to_vec(),
        vec![
            "Images".to_owned(),
            usage.images.to_string(),
            human_size(usage.stored_bytes),
            human_size(usage.shared_bytes),
            human_size(usage.unshared_bytes),
            // What `prune` deletes that no image uses (left by killed or racing loads).
            human_size(usage.reclaimable_bytes),
        ],
        vec![
            "Layers".to_owned(),
            usage.layers.to_string(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ],
        vec![
            "Layer cache".to_owned(),
            usage.layers.to_string(),
            human_size(usage.cache_bytes),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ],
    ];
    table(out, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_with_the_library() {
        for secs in [0, 1_700_000_000, 951_782_400, -86_400] {
            assert_eq!(parse_rfc3339(&layercake::config::rfc3339(secs)), Some(secs));
        }
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_like_docker() {
        assert_eq!(human_age(30), "30 seconds ago");
        assert_eq!(human_age(3600), "About an hour ago");
        assert_eq!(human_age(3 * 86_400), "3 days ago");
        assert_eq!(human_age(3 * 365 * 86_400 + 5), "3 years ago");
    }

    #[test]
    fn only_references_become_tags() {
        let names = ["busybox:latest", "latest", "v1.0", "docker.io/library/a:1"].map(String::from);
        let tags: Vec<String> = tags_in_file(&names)
            .iter()
            .map(|r| r.familiar().to_string())
            .collect();
        assert_eq!(tags, ["busybox:latest", "a:1"]);
    }
}
