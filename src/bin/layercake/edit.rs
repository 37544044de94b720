//! Edits, crane-style: `append`, `rebase`, `mutate`, on image files, the store and
//! registries. When every image is in a registry, the registry edit moves only what changed
//! (a new config, new layers, a new manifest); otherwise the model makes the new image and it
//! is written where `-t` says.

use std::io::Write;
use std::path::PathBuf;

use layercake::config::History;
use layercake::registry::{ConfigChange, EditOptions, Transfer};
use layercake::store::AddOptions;
use layercake::{Commit, Image, Layer};

use crate::registry::{self, client, edit_error, print_edit, Bars};
use crate::root::Root;
use crate::source::{self, destination, load, location, Location, Result};

/// The history row of an appended layer (the library's registry edit writes the same).
const APPEND_ROW: &str = "layercake append";

/// Seconds since the epoch: the time an edit stamps on the new image and its history rows.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `--entrypoint` and `--cmd`: a JSON array (`["sh", "-c", "echo hi"]`), or words split at
/// white space (`sh -c true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

/// Parses [`Words`].
pub fn parse_words(text: &str) -> std::result::Result<Words, String> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<String>>(text)
            .map(Words)
            .map_err(|e| format!("not a JSON array of strings: {e}"));
    }
    Ok(Words(text.split_whitespace().map(str::to_owned).collect()))
}

/// Parses `KEY=VALUE` of `--env` and `--label`.
pub fn parse_pair(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}`: expected KEY=VALUE")),
    }
}

/// Writes an edit's result where `-t` says: pushed (what `docker push` prints), into a file,
/// or into the store under the tag; a file or the store prints the new image id.
fn write(root: &Root, out: &mut impl Write, image: &Image, to: &Location) -> Result<()> {
    match to {
        Location::Registry(reference) => {
            return registry::push_image(out, image, reference, None, None);
        }
        Location::File(file) => source::save(file, None, None, None, image, &[], None)?,
        Location::Store(tag) => {
            root.open()?
                .add_with(image, AddOptions::new().tag(tag.clone()))?;
        }
    }
    writeln!(out, "{}", image.id())?;
    Ok(())
}

/// `append BASE TAR… -t NEW`: each TAR (a layer tar, plain, gzip or zstd) as a new layer on
/// top, with a history row each.
pub fn append(
    root: &Root,
    out: &mut impl Write,
    base: &str,
    tars: &[PathBuf],
    target: &str,
) -> Result<()> {
    let to = destination(target)?;
    let from = location(base)?;
    let layers = tars
        .iter()
        .map(|tar| {
            Layer::open_with(tar, source::load_options().read_in_force())
                .map_err(|e| format!("{}: {e}", tar.display()).into())
        })
        .collect::<Result<Vec<Layer>>>()?;
    if let (Location::Registry(base), Location::Registry(to)) = (&from, &to) {
        let mut bars = Bars::new("Pushing", true);
        let options = EditOptions::new()
            .created(now())
            .progress(|t: &Transfer| bars.update(t));
        let result = client().append(base, &layers, to, options);
        bars.clear();
        return print_edit(out, to, &result.map_err(edit_error(to))?);
    }
    let image = load(root, base)?.image;
    let mut builder = Image::builder()
        .base(&image)
        .commit(Commit::new().created(now()));
    for layer in layers {
        builder = builder.layer_with(layer, History::new(APPEND_ROW));
    }
    write(root, out, &builder.build()?, &to)
}

/// `rebase IMAGE --old-base OLD --new-base NEW -t NEW`.
pub fn rebase(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    old_base: &str,
    new_base: &str,
    target: &str,
) -> Result<()> {
    let to = destination(target)?;
    let not_built_on = |e: layercake::Error| -> Box<dyn std::error::Error> {
        match e {
            layercake::Error::DigestMismatch { .. } | layercake::Error::LayerOutOfRange { .. } => {
                format!("{image} is not built on {old_base}: {e}").into()
            }
            other => other.into(),
        }
    };
    let places = (
        location(image)?,
        location(old_base)?,
        location(new_base)?,
        &to,
    );
    if let (
        Location::Registry(image),
        Location::Registry(old),
        Location::Registry(new),
        Location::Registry(to),
    ) = places
    {
        let mut bars = Bars::new("Pushing", true);
        let options = EditOptions::new().progress(|t: &Transfer| bars.update(t));
        let result = client().rebase(&image, &old, &new, to, options);
        bars.clear();
        let report = result.map_err(|e| match e {
            layercake::Error::DigestMismatch { .. } | layercake::Error::LayerOutOfRange { .. } => {
                not_built_on(e)
            }
            other => edit_error(to)(other),
        })?;
        return print_edit(out, to, &report);
    }
    let top = load(root, image)?.image;
    let old = load(root, old_base)?.image;
    let new = load(root, new_base)?.image;
    let rebased = top.rebase(&old, &new).map_err(not_built_on)?;
    write(root, out, &rebased, &to)
}

/// `mutate IMAGE [--entrypoint …] [--cmd …] [--env K=V]… [--label K=V]… [--workdir DIR]
/// [--user U] -t NEW`: a new config, with a history row saying the change.
pub fn mutate(
    root: &Root,
    out: &mut impl Write,
    image: &str,
    change: &ConfigChange,
    target: &str,
) -> Result<()> {
    if change.is_empty() {
        return Err(
            "nothing to change: give --entrypoint, --cmd, --env, --label, --workdir \
                    or --user"
                .into(),
        );
    }
    let to = destination(target)?;
    if let (Location::Registry(from), Location::Registry(to)) = (location(image)?, &to) {
        let mut bars = Bars::new("Pushing", true);
        let options = EditOptions::new()
            .created(now())
            .progress(|t: &Transfer| bars.update(t));
        let result = client().mutate(&from, change, to, options);
        bars.clear();
        return print_edit(out, to, &result.map_err(edit_error(to))?);
    }
    let image = load(root, image)?.image;
    let mut config = image.config().container_config().clone();
    change.apply(&mut config)?;
    let mutated = Image::builder()
        .base(&image)
        .config(config)
        .empty_step(History::new(change.to_string()))
        .commit(Commit::new().created(now()))
        .build()?;
    write(root, out, &mutated, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_json_or_split() {
        assert_eq!(
            parse_words(r#"["sh", "-c", "echo hi"]"#).unwrap().0,
            ["sh", "-c", "echo hi"]
        );
        assert_eq!(
            parse_words("  sh -c  true ").unwrap().0,
            ["sh", "-c", "true"]
        );
        assert_eq!(parse_words("[]").unwrap().0, Vec::<String>::new());
        assert!(parse_words("[1]").is_err());
    }

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(
            parse_pair("A=b=c").unwrap(),
            ("A".to_owned(), "b=c".to_owned())
        );
        assert_eq!(parse_pair("A=").unwrap(), ("A".to_owned(), String::new()));
        assert!(parse_pair("A").is_err());
        assert!(parse_pair("=x").is_err());
    }
}
