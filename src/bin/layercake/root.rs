//! Where the image store lives (`--root`, `LAYERCAKE_ROOT`, the XDG default), opening it only
//! when a command needs it, and IMAGE arguments that name an image in it.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use layercake::{Reference, Store};

use crate::source::{Loaded, Result};

/// The store's directory, and the store once a command has opened it to read.
pub struct Root {
    /// The directory, or why there is none (no `--root`, no `HOME`).
    path: std::result::Result<PathBuf, String>,
    store: OnceCell<Store>,
}

impl Root {
    /// The directory `--root` gives, else `LAYERCAKE_ROOT`, else `$XDG_DATA_HOME/layercake`,
    /// else `~/.local/share/layercake`. Nothing is opened or created here.
    pub fn new(arg: Option<PathBuf>) -> Root {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let path = arg
            .or_else(|| var("LAYERCAKE_ROOT").map(PathBuf::from))
            .or_else(|| var("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("layercake")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share/layercake")))
            .ok_or_else(|| {
                "no image store: give --root DIR or set LAYERCAKE_ROOT (HOME is not set)".into()
            });
        Root {
            path,
            store: OnceCell::new(),
        }
    }

    /// The directory.
    pub fn path(&self) -> Result<&Path> {
        self.path.as_deref().map_err(|e| e.clone().into())
    }

    /// Opens the store to change it (created if missing).
    pub fn open(&self) -> Result<Store> {
        Ok(Store::open(self.path()?)?)
    }

    /// Opens a store that exists to change it (a tag or a removal has nothing to act on in
    /// a store not made yet).
    pub fn open_existing(&self) -> Result<Store> {
        let path = self.path()?;
        if !path.is_dir() {
            return Err(format!("no image store at {}", path.display()).into());
        }
        self.open()
    }

    /// The store, opened once to read. A store that does not exist is not created.
    pub fn store(&self) -> Result<&Store> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let path = self.path()?;
        if !path.is_dir() {
            return Err(format!("no image store at {}", path.display()).into());
        }
        let store = Store::open(path)?;
        Ok(self.store.get_or_init(|| store))
    }

    /// The image an IMAGE argument that is not a file names in the store: a tag, a
    /// `name@sha256:` manifest digest, an id or a unique id prefix.
    pub fn load(&self, arg: &str) -> Result<Loaded> {
        let store = self
            .store()
            .map_err(|e| format!("{arg}: no such file, and {e}"))?;
        let image = store.image(arg).map_err(|e| match e {
            layercake::Error::ImageNotFound { .. } => format!(
                "{arg}: no such file, and no such image in the store at {}",
                self.path()
                    .map_or_else(|_| "?".into(), |p| p.display().to_string())
            )
            .into(),
            other => Box::<dyn std::error::Error>::from(other),
        })?;
        // Named by one of its tags: that name (as `docker save busybox` does); else all of them.
        let tags = store.references_of(image.id());
        let reference = Reference::parse(arg)
            .ok()
            .filter(|r| r.digest().is_none() && tags.contains(r))
            .map(|r| r.familiar().to_string());
        Ok(Loaded {
            stored_tags: Some(store.tags_of(image.id())),
            image,
            listed: None,
            reference,
            remote: None,
        })
    }
}
