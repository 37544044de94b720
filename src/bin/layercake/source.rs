//! IMAGE and OUTPUT arguments: paths or skopeo's transport syntax, loading with a spinner on
//! a terminal, and writing.

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use layercake::archive::{self, Archive, Compression, Format, WriteOptions};
use layercake::Image;

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

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

/// Loads the image an IMAGE argument names, with its names in the file.
pub fn load(arg: &str) -> Result<(Image, Vec<String>)> {
    let target = parse(arg);
    let archive = with_spinner(format!("reading {}", target.path.display()), || {
        Ok(Archive::open(&target.path)?)
    })?;
    if let Some(wanted) = target.format {
        if wanted != archive.format() {
            return Err(format!(
                "{} is a {}, not a {wanted}",
                target.path.display(),
                archive.format()
            )
            .into());
        }
    }
    let loaded = archive.image(target.reference.as_deref())?;
    let names = match &target.reference {
        Some(r) => vec![r.clone()],
        None => loaded.names.clone(),
    };
    Ok((loaded.image.clone(), names))
}

/// Writes an image to an OUTPUT argument.
pub fn save(
    output: &str,
    format: Option<&str>,
    compression: Option<&str>,
    level: Option<u32>,
    image: &Image,
    names: &[String],
) -> Result<()> {
    let target = parse(output);
    let format = match (format, target.format) {
        (Some(f), Some(t)) if f.parse::<Format>()? != t => {
            return Err(format!("--format {f} contradicts the output's transport `{t}:`").into())
        }
        (Some(f), _) => f.parse()?,
        (None, Some(t)) => t,
        (None, None) => Format::DockerArchive,
    };
    let names: Vec<String> = match &target.reference {
        Some(r) => vec![r.clone()],
        None => names.to_vec(),
    };
    let mut options = WriteOptions::for_format(format);
    if let Some(c) = compression {
        options = options.compression(c.parse::<Compression>()?);
    }
    if let Some(l) = level {
        options = options.level(l);
    }
    let images = [(image, &names[..])];
    with_spinner(format!("writing {}", target.path.display()), || {
        match format {
            Format::OciLayout => archive::write_dir(&images, &options, &target.path)?,
            _ => {
                let file = std::fs::File::create(&target.path)
                    .map_err(|e| format!("cannot create {}: {e}", target.path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                archive::write(&images, &options, &mut out)?;
                std::io::Write::flush(&mut out)?;
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
