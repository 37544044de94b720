//! IMAGE and OUTPUT arguments: paths or skopeo's transport syntax, loading with a spinner on
//! a terminal, and writing.

use std::error::Error;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use layercake::archive::{Archive, ArchiveImage, Format, LoadOptions, Writer};
use layercake::layer::ReadOptions;
use layercake::Compression;
use layercake::Image;
use layercake::Limits;
use layercake::Reference;

use crate::registry::{self, TRANSPORT};
use crate::root::Root;

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The options every image file is read with: the defaults, with `--limit`s.
static LOAD_OPTIONS: OnceLock<LoadOptions> = OnceLock::new();

/// `NAME=VALUE` of `--limit`.
pub fn parse_limit(text: &str) -> std::result::Result<(String, u64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=VALUE, e.g. ratio=2000"))?;
    let value = value.parse::<u64>().map_err(|e| format!("`{text}`: {e}"))?;
    Ok((name.to_owned(), value))
}

/// Sets the limits of every image file read, from `--limit NAME=VALUE`s.
pub fn set_limits(given: &[(String, u64)]) -> Result<()> {
    let mut limits = Limits::default();
    for (name, value) in given {
        let value = *value;
        let size = || usize::try_from(value).map_err(|e| format!("--limit {name}: {e}"));
        limits = match name.as_str() {
            "ratio" => limits.ratio(value),
            "layer-bytes" => limits.layer_bytes(value),
            "image-bytes" => limits.image_bytes(value),
            "archive-bytes" => limits.archive_bytes(value),
            "blob-bytes" => limits.blob_bytes(value),
            "entries" => limits.entries(value),
            "path-bytes" => limits.path_bytes(size()?),
            "name-bytes" => limits.name_bytes(size()?),
            "depth" => limits.depth(size()?),
            "pax-bytes" => limits.pax_bytes(value),
            "json-bytes" => limits.json_bytes(value),
            "layers" => limits.layers(size()?),
            "index-depth" => limits.index_depth(size()?),
            "trailing-bytes" => limits.trailing_bytes(value),
            other => return Err(format!("--limit {other}: no such limit").into()),
        };
    }
    let options = LoadOptions::new().read(ReadOptions::new().limits(limits));
    LOAD_OPTIONS
        .set(options)
        .map_err(|_| "limits set twice".into())
}

/// How image files are read (see [`set_limits`]).
pub fn load_options() -> &'static LoadOptions {
    LOAD_OPTIONS.get_or_init(LoadOptions::new)
}

/// A parsed IMAGE or OUTPUT argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The format the transport names, if it names one.
    pub format: Option<Format>,
    /// The file or directory.
    pub path: PathBuf,
    /// The image's name inside the file (`name:tag` or a ref name).
    pub reference: Option<String>,
}

/// Parses `docker-archive:FILE[:name:tag]`, `oci:DIR[:ref]`, `oci-archive:FILE[:ref]` or a
/// plain path.
pub fn parse(arg: &str) -> Target {
    for (prefix, format) in [
        ("docker-archive:", Format::DockerArchive),
        ("oci-archive:", Format::OciArchive),
        ("oci:", Format::OciLayout),
    ] {
        if let Some(rest) = arg.strip_prefix(prefix) {
            let (path, reference) = match rest.split_once(':') {
                Some((path, reference)) if !reference.is_empty() => {
                    (path, Some(reference.to_owned()))
                }
                _ => (rest.trim_end_matches(':'), None),
            };
            return Target {
                format: Some(format),
                path: PathBuf::from(path),
                reference,
            };
        }
    }
    Target {
        format: None,
        path: PathBuf::from(arg),
        reference: None,
    }
}

/// Where an argument of `copy` (or an edit's input or `-t`) is: a registry, an image file,
/// or the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `docker://REF`.
    Registry(Reference),
    /// An image file: a transport (`docker-archive:`, `oci:`, `oci-archive:`) or, as an
    /// input, an existing path.
    File(String),
    /// A name in the store.
    Store(String),
}

/// Where an IMAGE argument is, by the rules [`load`] reads it with: `docker://REF`, a
/// transport or an existing path, else a name in the store.
pub fn location(arg: &str) -> Result<Location> {
    if let Some(reference) = registry::remote(arg) {
        return Ok(Location::Registry(reference?));
    }
    if arg.is_empty() {
        return Err("IMAGE: path is empty".into());
    }
    let target = parse(arg);
    if target.format.is_some() || std::fs::symlink_metadata(&target.path).is_ok() {
        return Ok(Location::File(arg.to_owned()));
    }
    check_transport(arg)?;
    Ok(Location::Store(arg.to_owned()))
}

/// Where a destination (`copy`'s DST, an edit's `-t`) is: `docker://REF`, a transport
/// (`docker-archive:FILE[:name]`, `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`), else a tag in
/// the store. A plain path is refused rather than read as a tag (`app.tar` is a valid name).
pub fn destination(arg: &str) -> Result<Location> {
    if let Some(reference) = registry::remote(arg) {
        return Ok(Location::Registry(reference?));
    }
    if parse(arg).format.is_some() {
        return Ok(Location::File(arg.to_owned()));
    }
    check_transport(arg)?;
    let path = std::path::Path::new(arg);
    if std::fs::symlink_metadata(path).is_ok() || arg.ends_with(".tar") {
        return Err(format!(
            "{arg}: a destination file needs its transport (docker-archive:{arg}, \
             oci:{arg} or oci-archive:{arg}); a name without one is a tag in the store"
        )
        .into());
    }
    Reference::parse(arg).map_err(|e| format!("{arg}: not a tag for the store: {e}"))?;
    Ok(Location::Store(arg.to_owned()))
}

/// The transports skopeo knows that layercake does not read or write.
const OTHER_TRANSPORTS: &[&str] = &[
    "dir",
    "docker",
    "docker-daemon",
    "containers-storage",
    "ostree",
    "sif",
    "tarball",
];

/// An error for an argument that names a transport layercake does not support (`dir:X`,
/// `anything://X`), unless it is an existing path; and for `docker://X` where a file is
/// wanted (`load -i`, `save -o`).
pub fn check_transport(arg: &str) -> Result<()> {
    let Some((prefix, rest)) = arg.split_once(':') else {
        return Ok(());
    };
    if std::fs::symlink_metadata(arg).is_ok() {
        return Ok(());
    }
    if arg.starts_with(TRANSPORT) {
        return Err(format!(
            "{arg}: unsupported transport `docker://` here: this reads or writes a file \
             (pull, push and copy take docker://REF)"
        )
        .into());
    }
    if OTHER_TRANSPORTS.contains(&prefix) || rest.starts_with("//") {
        return Err(format!(
            "{arg}: unsupported transport `{prefix}:` (layercake reads and writes \
             docker-archive:FILE, oci:DIR, oci-archive:FILE and docker://REF, a path to an \
             image file, or an image in its store)"
        )
        .into());
    }
    Ok(())
}

/// An error when `--tag` is given with an OUTPUT that names the image itself
/// (`docker-archive:FILE:NAME`, `oci:DIR:REF`): one of the two would be ignored.
pub fn check_tags(output: &str, tags: &[String]) -> Result<()> {
    if output.starts_with(TRANSPORT) && !tags.is_empty() {
        return Err(format!(
            "--tag cannot apply: {output} names the image in its registry already"
        )
        .into());
    }
    match parse(output).reference {
        Some(reference) if !tags.is_empty() => Err(format!(
            "--tag cannot apply: {output} names the image already (`{reference}`); give one or \
             the other"
        )
        .into()),
        _ => Ok(()),
    }
}

/// Runs `work` with a spinner saying `what` on a terminal (nothing otherwise).
pub fn with_spinner<T>(what: String, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(100));
    let result = work();
    bar.finish_and_clear();
    result
}

/// What an IMAGE argument names: the image, and how it was named in its file.
pub struct Loaded {
    /// The image (its layers read when needed).
    pub image: Image,
    /// The image as its file listed it, with its names; `None` when the argument named it.
    pub listed: Option<ArchiveImage>,
    /// The name the argument gave, if it gave one.
    pub reference: Option<String>,
    /// For an image in the store: every tag it has there.
    pub stored_tags: Option<Vec<String>>,
    /// For an image read from a registry (`docker://REF`): the reference.
    pub remote: Option<Reference>,
}

impl Loaded {
    /// Its names, for messages and `RepoTags`.
    pub fn names(&self) -> Vec<String> {
        match (&self.reference, &self.listed, &self.stored_tags) {
            (Some(r), _, _) => vec![r.clone()],
            (None, Some(item), _) => item.names().to_vec(),
            (None, None, Some(tags)) => tags.clone(),
            (None, None, None) => Vec::new(),
        }
    }
}

/// Opens the file an IMAGE argument names and picks the image in it. Only the file's index
/// is read here; layers are read when a command needs them. An argument that is neither an
/// existing path nor has a transport prefix names an image in the store, as in `docker`.
///
/// `docker://REF` is pulled into a temporary store (removed when the command ends).
pub fn load(root: &Root, arg: &str) -> Result<Loaded> {
    if let Some(reference) = registry::remote(arg) {
        let reference = reference?;
        return Ok(Loaded {
            image: registry::pull_temporary(arg, &reference)?,
            listed: None,
            reference: Some(reference.familiar().to_string()),
            stored_tags: None,
            remote: Some(reference),
        });
    }
    if arg.is_empty() {
        return Err("IMAGE: path is empty".into());
    }
    let target = parse(arg);
    if target.format.is_none() && std::fs::symlink_metadata(&target.path).is_err() {
        check_transport(arg)?;
        return root.load(arg);
    }
    let archive = Archive::open_with(&target.path, load_options())?;
    if let Some(wanted) = target.format {
        let found = archive.format();
        // A docker-archive written by Docker 25 or layercake is also an OCI layout.
        if wanted != found {
            return Err(format!("{} is a {found}, not a {wanted}", target.path.display()).into());
        }
    }
    if let Some(reference) = &target.reference {
        return Ok(Loaded {
            image: archive.image(reference)?,
            listed: None,
            reference: Some(reference.clone()),
            stored_tags: None,
            remote: None,
        });
    }
    let image = archive.only_image().map_err(|e| match e {
        layercake::Error::AmbiguousReference { ref candidates, .. } => {
            // The transport prefixes are the formats' names.
            let transport = archive.format();
            let example = candidates.first().map_or("NAME", String::as_str);
            format!(
                "{}: {e}; name one, e.g. {transport}:{}:{example}",
                target.path.display(),
                target.path.display()
            )
            .into()
        }
        other => Box::<dyn Error>::from(other),
    })?;
    let listed = archive
        .into_images()
        .into_iter()
        .find(|item| item.image().id() == image.id());
    Ok(Loaded {
        image,
        listed,
        reference: None,
        stored_tags: None,
        remote: None,
    })
}

/// Writes an image to an OUTPUT argument, under the names `names` (references), or if there
/// are none, under the names it had where it came from. `docker://REF` pushes it, printing
/// what `docker push` prints.
pub fn save(
    output: &str,
    format: Option<&str>,
    compression: Option<&str>,
    level: Option<u32>,
    image: &Image,
    names: &[String],
    listed: Option<&ArchiveImage>,
) -> Result<()> {
    if level.is_some() && matches!(compression, None | Some("none")) {
        return Err("--level cannot apply without --compression gzip or zstd".into());
    }
    if let Some(reference) = registry::remote(output) {
        if let Some(format) = format {
            return Err(format!(
                "--format {format} cannot apply to {output}: a registry keeps manifests, not files"
            )
            .into());
        }
        let mut out = std::io::stdout().lock();
        return registry::push_image(&mut out, image, &reference?, compression, level);
    }
    let target = parse(output);
    if target.format.is_none() {
        check_transport(output)?;
    }
    let format = match (format, target.format) {
        (Some(f), Some(t)) if f.parse::<Format>()? != t => {
            return Err(format!("--format {f} contradicts the output's transport `{t}:`").into())
        }
        (Some(f), _) => f.parse()?,
        (None, Some(t)) => t,
        (None, None) => Format::DockerArchive,
    };
    let mut writer = Writer::new(format);
    if let Some(c) = compression {
        writer = writer.compression(c.parse::<Compression>()?);
    }
    if let Some(l) = level {
        writer = writer.level(l);
    }
    writer = match (&target.reference, listed) {
        // `oci:DIR:REF` names a ref as skopeo does; `docker-archive:FILE:NAME` a reference.
        (Some(r), _) if format != Format::DockerArchive => writer.image_ref(image, r),
        (Some(r), _) => writer.image(image, [r]),
        (None, Some(item)) if names.is_empty() => writer.archived(item),
        (None, _) => writer.image(image, names),
    };
    with_spinner(format!("writing {}", target.path.display()), || {
        match format {
            Format::OciLayout => writer.write_dir(&target.path)?,
            _ => {
                let file = std::fs::File::create(&target.path)
                    .map_err(|e| format!("cannot create {}: {e}", target.path.display()))?;
                writer.write(std::io::BufWriter::with_capacity(256 << 10, file))?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(
            parse("docker-archive:a.tar:app:1"),
            Target {
                format: Some(Format::DockerArchive),
                path: "a.tar".into(),
                reference: Some("app:1".into())
            }
        );
        assert_eq!(parse("oci:dir").reference, None);
        assert_eq!(parse("oci:dir").format, Some(Format::OciLayout));
        assert_eq!(
            parse("oci-archive:x.tar:latest").reference.as_deref(),
            Some("latest")
        );
        assert_eq!(parse("plain.tar").format, None);
    }
}
