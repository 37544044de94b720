//! A RUN step's root as an overlay mount, as Docker's overlay2 driver makes a container's:
//! each layer of the image unpacked once per executor, in overlayfs's own format (a whiteout
//! is a character device 0/0, an opaque directory is marked `trusted.overlay.opaque=y`), the
//! layers stacked as lower directories under an empty upper directory that takes what the
//! command writes. A build's second RUN on a large base writes the layers between the two
//! RUNs, not the base again.
//!
//! The merged directory is mounted in the host's mount namespace (the scan reads it after the
//! command's namespaces are gone) and unmounted when the step ends. Where overlayfs cannot be
//! mounted (no root, an unsupported filesystem, no `mount`), the executor unpacks the whole
//! tree instead.

use std::collections::HashMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::fs::{FileType as HostType, Mode, CWD};

use crate::container::{CommitOptions, Container};
use crate::digest::ChainId;
use crate::error::{Error, Result};
use crate::image::{chain_tree, Image};
use crate::path::ImagePath;
use crate::tree::Tree;
use crate::unpack::{unpack, Devices, Owners, Setuid, UnpackOptions};

/// The layers an executor has unpacked, in a directory of their own, each under a short name
/// (mount options are limited to a page: the lower directories are named relative to it).
#[derive(Debug)]
pub(super) struct Layers {
    dir: PathBuf,
    /// Each stack's top layer, by the stack's ChainId: its directory's name.
    made: Mutex<HashMap<ChainId, String>>,
    /// Cleared when a mount fails: the executor then unpacks whole trees.
    usable: AtomicBool,
}

/// A step's merged root, unmounted when dropped.
#[derive(Debug)]
pub(super) struct Mounted {
    pub(super) merged: PathBuf,
}

impl Layers {
    /// Layers kept in a new directory under `scratch`.
    pub(super) fn new(scratch: &Path) -> Layers {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Layers {
            dir: scratch.join(format!("layercake-layers-{}-{n}", std::process::id())),
            made: Mutex::new(HashMap::new()),
            usable: AtomicBool::new(true),
        }
    }

    /// Mounts `container`'s files at `work/root`: its image's layers as lower directories
    /// (unpacked now if this executor has not yet), the container's own changes as one more,
    /// `work/upper` for what the command writes. `None` if overlayfs cannot be used here.
    pub(super) fn mount(&self, container: &Container, work: &Path) -> Result<Option<Mounted>> {
        if !self.usable.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let image = if container.diff()?.is_empty() {
            container.image().clone()
        } else {
            // The container's own changes (a WORKDIR made for the step) as one more layer.
            container.commit(&CommitOptions::new())?
        };
        // A filesystem that cannot hold overlayfs's format (no `trusted.*` xattrs, no
        // device nodes) leaves the step to the whole unpack, as a failed mount does.
        let Ok(lowers) = self.lowers(&image) else {
            self.usable.store(false, Ordering::Relaxed);
            return Ok(None);
        };
        let upper = work.join("upper");
        let scratch = work.join("overlay-work");
        let merged = work.join("root");
        for dir in [&upper, &scratch, &merged] {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(format_args!("creating `{}`", dir.display()), e))?;
        }
        // The merged root is the upper directory's: it must be the tree's root.
        set_metadata(&upper, container.tree().root().metadata())?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={},index=on",
            lowers.join(":"),
            upper.display(),
            scratch.display()
        );
        let mounted = Command::new(program("mount"))
            .current_dir(&self.dir)
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&merged)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            self.usable.store(false, Ordering::Relaxed);
            return Ok(None);
        }
        Ok(Some(Mounted { merged }))
    }

    /// The names of `image`'s layer directories, top first, each unpacked if it is not yet.
    fn lowers(&self, image: &Image) -> Result<Vec<String>> {
        let chain = image.chain();
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if chain.is_empty() {
            let empty = "empty".to_owned();
            create_dir(&self.dir.join(&empty))?;
            return Ok(vec![empty]);
        }
        let mut names = Vec::with_capacity(chain.len());
        for (i, link) in chain.iter().enumerate() {
            let name = match made.get(&link.chain_id) {
                Some(name) => name.clone(),
                None => {
                    let name = made.len().to_string();
                    let dir = self.dir.join(&name);
                    // A half-made directory of an earlier failure is made again.
                    let _ = fs::remove_dir_all(&dir);
                    create_dir(&dir)?;
                    let stack = chain_tree(&chain[..=i])?;
                    unpack_layer(&link.layer, &stack, &dir)?;
                    made.insert(link.chain_id, name.clone());
                    name
                }
            };
            names.push(name);
        }
        names.reverse();
        Ok(names)
    }
}

impl Drop for Layers {
    fn drop(&mut self) {
        // Best effort: a failure to clean up is not a step's failure.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new(program("umount"));
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.merged)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        // Busy only if something of the command outlived it: detach it then.
        if !umount(false) {
            umount(true);
        }
    }
}

/// `mount` or `umount`, found once on the host's `PATH`.
fn program(name: &'static str) -> &'static Path {
    static MOUNT: OnceLock<PathBuf> = OnceLock::new();
    static UMOUNT: OnceLock<PathBuf> = OnceLock::new();
    let cell = if name == "mount" { &MOUNT } else { &UMOUNT };
    cell.get_or_init(|| super::process::find_program(name))
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format_args!("creating `{}`", dir.display()), e))
}

fn host_path(root: &Path, path: &ImagePath) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(path.as_bytes()))
}

/// Writes one layer into `dir` in overlayfs's format: its entries (parents implied), its
/// whiteouts as character devices 0/0, its opaque directories marked; then every directory
/// takes the metadata `stack` (the merged tree up to this layer) gives it, so that a parent
/// the layer only implies shows what the layers below say.
fn unpack_layer(layer: &crate::layer::Layer, stack: &Tree, dir: &Path) -> Result<()> {
    let own = Tree::new().apply(layer)?;
    let options = UnpackOptions::new()
        .owners(Owners::Keep)
        .devices(Devices::Create)
        .setuid(Setuid::Keep);
    unpack(&own, dir, &options)?;
    let changes = layer.changeset()?;
    let fail = |path: &Path, e: rustix::io::Errno| {
        Error::io(format_args!("writing `{}`", path.display()), e.into())
    };
    for path in &changes.whiteouts {
        let host = host_path(dir, path);
        if let Some(parent) = host.parent() {
            create_dir(parent)?;
        }
        let device = rustix::fs::makedev(0, 0);
        match rustix::fs::mknodat(CWD, &host, HostType::CharacterDevice, Mode::empty(), device) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(&host, e)),
        }
    }
    for path in &changes.opaques {
        let host = host_path(dir, path);
        create_dir(&host)?;
        rustix::fs::lsetxattr(
            &host,
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| fail(&host, e))?;
    }
    fix_dirs(dir, &ImagePath::ROOT, stack)
}

/// Gives every directory under `host` (children first) the metadata `stack` has for it.
fn fix_dirs(host: &Path, path: &ImagePath, stack: &Tree) -> Result<()> {
    let listing = fs::read_dir(host)
        .map_err(|e| Error::io(format_args!("reading `{}`", host.display()), e))?;
    for item in listing {
        let item = item.map_err(|e| Error::io(format_args!("reading `{}`", host.display()), e))?;
        let is_dir = item.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            let child = path.join(item.file_name().as_bytes())?;
            fix_dirs(&item.path(), &child, stack)?;
        }
    }
    match stack.lookup_path(path).filter(|n| n.is_dir()) {
        Some(node) => set_metadata(host, node.metadata()),
        None => Ok(()),
    }
}

/// Sets a host directory's owner, mode and mtime.
fn set_metadata(host: &Path, meta: &crate::entry::Metadata) -> Result<()> {
    let fail = |e: rustix::io::Errno| {
        Error::io(
            format_args!("setting the metadata of `{}`", host.display()),
            e.into(),
        )
    };
    // An id past u32 (or u32::MAX, chown's "unchanged") leaves the owner as it is.
    let uid = u32::try_from(meta.uid).ok().filter(|u| *u != u32::MAX);
    let gid = u32::try_from(meta.gid).ok().filter(|g| *g != u32::MAX);
    rustix::fs::chown(
        host,
        uid.map(rustix::fs::Uid::from_raw),
        gid.map(rustix::fs::Gid::from_raw),
    )
    .map_err(fail)?;
    rustix::fs::chmod(host, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(fail)?;
    let at = rustix::fs::Timespec {
        tv_sec: meta.mtime,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: at,
        last_modification: at,
    };
    rustix::fs::utimensat(CWD, host, &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).map_err(fail)
}
