//! [`ProcessExecutor`]: runs a RUN step's command for real, in its own namespaces, on a copy
//! of the container's files in a host directory, and takes what it changed back.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fs::{FileType as HostType, Mode, CWD};

use super::executor::{Executor, Network, RunStep};
use super::overlay::Layers;
use super::scan::{self, Scanner};
use crate::container::Container;
use crate::error::{Error, Result};
use crate::path::ImagePath;
use crate::tree::Tree;
use crate::unpack::{unpack, Devices, Owners, Setuid, UnpackOptions};

/// How much of a failed command's output an error keeps (its end).
const OUTPUT_KEPT: usize = 64 << 10;

/// The `PATH` a step gets when its environment has none, as Docker gives it.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs RUN steps as processes: `unshare` from util-linux, in new mount, pid, uts, ipc and
/// (unless the step asks for the host's) network namespaces, chrooted into the container's
/// files written to a scratch directory.
///
/// For each step the container's files are laid out in a directory: by default an overlay
/// mount (overlayfs, as Docker's overlay2 driver does), each layer of the image
/// [unpacked](crate::unpack()) once per executor as a lower directory, so that the second
/// RUN of a build on a large base does not write the base again; where overlayfs cannot be
/// mounted, or with [`ProcessExecutor::overlay`]`(false)`, the whole tree is unpacked into a
/// fresh directory. Either way owners, modes, setuid bits, devices and second-precision
/// mtimes are as the tree has them;
/// `/proc` is mounted there, `/dev` given `null`, `zero`, `full`, `random`, `urandom`, `tty`
/// and `shm`, and `/etc` (if there is one) `hosts`, `hostname` and a `resolv.conf` (empty, or the
/// host's with the host's network); the command runs with the step's environment only (plus `PATH` and `HOME` when it
/// lacks them, as Docker does), as the step's user (names resolved in the tree's
/// `/etc/passwd` and `/etc/group`), in the step's working directory (created if missing).
/// Its output (stdout and stderr, interleaved) is kept for the error if it fails. Then the
/// directory is read back and every difference is made in the container, which the builder
/// commits as the step's layer; the directory is removed.
///
/// `/dev`, `/proc`, `/sys`, `/.dockerenv`, `/etc/hosts`, `/etc/resolv.conf` and
/// `/etc/hostname` are the runtime's: whatever the command does to them, the container keeps
/// what the image had there (or nothing).
///
/// Needs root (namespaces, `chroot`, owners kept). Not done: supplementary groups (the
/// command runs with none: `unshare --setgid` clears them), a hostname of its own, new named
/// pipes and device nodes (an error).
///
/// ```no_run
/// use layercake::build::{Executor, ProcessExecutor, RunStep};
/// use layercake::{Container, Image};
///
/// # let image = Image::builder().build()?;
/// let executor = ProcessExecutor::new().scratch_dir("/var/tmp");
/// let mut container = Container::new(&image)?;
/// executor.run(&mut container, &RunStep::new(["/bin/sh", "-c", "echo hi > /greeting"]))?;
/// assert_eq!(container.read("greeting")?, "hi\n");
/// # Ok::<(), layercake::Error>(())
/// ```
///
/// The overlay is mounted in the host's mount namespace for the step (its changes are read
/// after the command's namespaces are gone) and unmounted when it ends; a process killed
/// during a step leaves it mounted under the scratch directory.
///
/// # Security
///
/// The command runs as root on the host's kernel, with its own namespaces but the host's
/// user ids, capabilities, devices it can make, and (with [`Network::Host`]) network: it
/// isolates a build from the host's files and processes, not a hostile one from the host.
#[derive(Clone)]
pub struct ProcessExecutor {
    scratch: PathBuf,
    network: Network,
    unshare: PathBuf,
    output: Option<Arc<Mutex<dyn Write + Send>>>,
    overlay: bool,
    /// The layers unpacked for overlay mounts, shared by clones, made on first use.
    layers: Arc<OnceLock<Layers>>,
}

impl fmt::Debug for ProcessExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessExecutor")
            .field("scratch", &self.scratch)
            .field("network", &self.network)
            .field("unshare", &self.unshare)
            .field("output", &self.output.as_ref().map(|_| "..."))
            .field("overlay", &self.overlay)
            .finish()
    }
}

impl Default for ProcessExecutor {
    fn default() -> ProcessExecutor {
        ProcessExecutor::new()
    }
}

impl ProcessExecutor {
    /// An executor using the system's temporary directory for scratch space, the network
    /// each step asks for, and `unshare` found on the host's `PATH`.
    ///
    /// ```
    /// use layercake::build::ProcessExecutor;
    ///
    /// let executor = ProcessExecutor::new();
    /// # let _ = executor;
    /// ```
    pub fn new() -> ProcessExecutor {
        ProcessExecutor {
            scratch: std::env::temp_dir(),
            network: Network::None,
            unshare: find_program("unshare"),
            output: None,
            overlay: true,
            layers: Arc::new(OnceLock::new()),
        }
    }

    /// Whether a step's root is an overlay mount (the default): each layer of the image
    /// unpacked once per executor and stacked under an empty upper directory, as Docker's
    /// overlay2 driver does, so that a build's RUN steps on a large base do not write the
    /// base again each time. Without it, or where overlayfs cannot be mounted, each step's
    /// tree is unpacked whole.
    ///
    /// ```
    /// use layercake::build::ProcessExecutor;
    ///
    /// let executor = ProcessExecutor::new().overlay(false);
    /// # let _ = executor;
    /// ```
    pub fn overlay(mut self, overlay: bool) -> ProcessExecutor {
        self.overlay = overlay;
        self
    }

    /// Sets where each command's output (stdout and stderr, interleaved) is copied once
    /// it has run, failed or not: what `docker build` shows under ` ---> Running in …`.
    /// Without it, the output is kept only for the error of a command that fails.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// use layercake::build::ProcessExecutor;
    ///
    /// let shown = Arc::new(Mutex::new(Vec::<u8>::new()));
    /// let executor = ProcessExecutor::new().output(shown.clone());
    /// # let _ = executor;
    /// ```
    pub fn output<W: Write + Send + 'static>(mut self, sink: Arc<Mutex<W>>) -> ProcessExecutor {
        self.output = Some(sink);
        self
    }

    /// Sets where each step's directory is made (it must allow device nodes and owners:
    /// not a `nodev` mount for commands that use `/dev/null`).
    ///
    /// ```
    /// use layercake::build::ProcessExecutor;
    ///
    /// let executor = ProcessExecutor::new().scratch_dir("/var/tmp");
    /// # let _ = executor;
    /// ```
    pub fn scratch_dir(mut self, dir: impl Into<PathBuf>) -> ProcessExecutor {
        self.scratch = dir.into();
        self
    }

    /// Sets the network every step gets at least: [`Network::Host`] gives every step the
    /// host's network (`--network host` for the whole build); with [`Network::None`] (the
    /// default) a step has the host's only if it asks ([`RunStep::network`]).
    ///
    /// ```
    /// use layercake::build::{Network, ProcessExecutor};
    ///
    /// let executor = ProcessExecutor::new().network(Network::Host);
    /// # let _ = executor;
    /// ```
    pub fn network(mut self, network: Network) -> ProcessExecutor {
        self.network = network;
        self
    }

    fn command(&self, root: &Path, step: &RunStep, user: &User, log: &File) -> Result<Command> {
        let mut cmd = Command::new(&self.unshare);
        cmd.args([
            "--mount",
            "--pid",
            "--uts",
            "--ipc",
            "--fork",
            "--kill-child",
        ]);
        if self.network != Network::Host && step.network != Network::Host {
            cmd.arg("--net");
        }
        cmd.arg("--mount-proc=/proc")
            .arg(format!("--root={}", root.display()))
            .arg(format!("--wd=/{}", step.workdir.trim_start_matches('/')))
            .arg(format!("--setgid={}", user.gid))
            .arg(format!("--setuid={}", user.uid))
            .arg("--")
            .args(&step.argv);
        cmd.env_clear();
        let mut has_path = false;
        let mut has_home = false;
        for var in &step.env {
            let (key, value) = var.split_once('=').unwrap_or((var, ""));
            has_path |= key == "PATH";
            has_home |= key == "HOME";
            cmd.env(key, value);
        }
        if !has_path {
            cmd.env("PATH", DEFAULT_PATH);
        }
        if !has_home {
            cmd.env("HOME", &user.home);
        }
        let out = |what| {
            log.try_clone()
                .map_err(|e| Error::io(format_args!("opening the log of {what}"), e))
        };
        cmd.stdin(Stdio::null())
            .stdout(out("stdout")?)
            .stderr(out("stderr")?);
        Ok(cmd)
    }
}

impl Executor for ProcessExecutor {
    /// Runs `step` in its own namespaces and applies what it changed to `container`.
    ///
    /// # Errors
    ///
    /// [`Error::RunFailed`] for a command that exits non-zero (or is killed), with its
    /// output; [`Error::InvalidConfig`] for a user or group the image's `/etc/passwd` or
    /// `/etc/group` lacks; [`Error::Io`] if `unshare` cannot be started or the directory
    /// cannot be written or read; [`Error::Unsupported`] for a named pipe, device node or
    /// socket the command made.
    fn run(&self, container: &mut Container, step: &RunStep) -> Result<()> {
        // An unknown user fails the step before anything changes.
        let user = resolve_user(container.tree(), &step.user)?;
        let workdir = step.workdir.trim_matches('/');
        if !workdir.is_empty() {
            container.create_dir_all(workdir)?;
        }
        let tree = container.tree().clone();
        let work = Scratch::new(&self.scratch)?;
        // Declared after `work`: unmounted before the directory is removed.
        let mounted = match self.overlay {
            true => {
                let layers = self.layers.get_or_init(|| Layers::new(&self.scratch));
                layers.mount(container, &work.path)?
            }
            false => None,
        };
        let root = match &mounted {
            Some(mounted) => mounted.merged.clone(),
            None => {
                let root = work.path.join("root");
                let options = UnpackOptions::new()
                    .owners(Owners::Keep)
                    .devices(Devices::Create)
                    .setuid(Setuid::Keep);
                unpack(&tree, &root, &options)?;
                root
            }
        };
        let host_network = self.network == Network::Host || step.network == Network::Host;
        runtime_dirs(&root, &tree, host_network)?;
        let since = scan::marker(&work.path)?;

        let log_path = work.path.join("output");
        let log = File::create(&log_path)
            .map_err(|e| Error::io(format_args!("creating `{}`", log_path.display()), e))?;
        let mut cmd = self.command(&root, step, &user, &log)?;
        drop(log);
        let status = cmd
            .status()
            .map_err(|e| Error::io(format_args!("running `{}`", self.unshare.display()), e))?;
        if let Some(sink) = &self.output {
            let mut log = File::open(&log_path)
                .map_err(|e| Error::io(format_args!("opening `{}`", log_path.display()), e))?;
            // A poisoned sink still takes bytes: a panic elsewhere is not this step's.
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            std::io::copy(&mut log, &mut *sink)
                .map_err(|e| Error::io("copying a RUN step's output", e))?;
        }
        if !status.success() {
            let status = status
                .code()
                .or_else(|| status.signal().map(|s| 128 + s))
                .unwrap_or(-1);
            return Err(Error::RunFailed {
                command: step.argv.join(" "),
                status,
                output: read_output(&log_path)?,
            });
        }
        let scanned = Scanner::new(&tree, since, &work.path)?.scan(&root)?;
        scan::apply(container, &scanned)?;
        Ok(())
    }
}

/// A step's directory, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(parent: &Path) -> Result<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("layercake-run-{}-{n}", std::process::id()));
        fs::create_dir_all(&path)
            .map_err(|e| Error::io(format_args!("creating `{}`", path.display()), e))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a failure to clean up is not the step's failure.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Makes `/proc` (to mount on) and `/dev` with the usual devices where the tree has none,
/// keeping the root directory's mtime. The scan leaves both out again.
fn runtime_dirs(root: &Path, tree: &Tree, host_network: bool) -> Result<()> {
    let fail = |what: &Path, e: rustix::io::Errno| {
        Error::io(format_args!("creating `{}`", what.display()), e.into())
    };
    for dir in ["proc", "dev"] {
        let path = root.join(dir);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                fs::remove_file(&path)
                    .map_err(|e| Error::io(format_args!("removing `{}`", path.display()), e))?;
                rustix::fs::mkdir(&path, Mode::from_raw_mode(0o755)).map_err(|e| fail(&path, e))?;
            }
            Err(_) => {
                rustix::fs::mkdir(&path, Mode::from_raw_mode(0o755)).map_err(|e| fail(&path, e))?;
            }
        }
    }
    let devices = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    for (name, major, minor) in devices {
        let path = root.join("dev").join(name);
        let dev = rustix::fs::makedev(major, minor);
        match rustix::fs::mknodat(CWD, &path, HostType::CharacterDevice, Mode::empty(), dev) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(fail(&path, e)),
        }
        rustix::fs::chmod(&path, Mode::from_raw_mode(0o666)).map_err(|e| fail(&path, e))?;
    }
    let shm = root.join("dev/shm");
    match rustix::fs::mkdir(&shm, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(fail(&shm, e)),
    }
    rustix::fs::chmod(&shm, Mode::from_raw_mode(0o1777)).map_err(|e| fail(&shm, e))?;
    // The files a runtime provides in `/etc`, so that a command writing them does not
    // change `/etc` itself.
    let etc = root.join("etc");
    if let Some(node) = tree
        .lookup_path(&ImagePath::new("etc")?)
        .filter(|n| n.is_dir())
    {
        // With the host's network, the host's resolver (as Docker's `--network host`).
        let resolv = if host_network {
            fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            String::new()
        };
        let files = [
            (
                "hosts",
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            ),
            ("hostname", "layercake\n"),
            ("resolv.conf", resolv.as_str()),
        ];
        for (name, text) in files {
            let path = etc.join(name);
            if fs::symlink_metadata(&path).is_err() {
                fs::write(&path, text)
                    .map_err(|e| Error::io(format_args!("writing `{}`", path.display()), e))?;
            }
        }
        set_mtime(&etc, node.metadata().mtime)?;
    }
    // Back to the tree's mtime, so the root is not seen as changed.
    set_mtime(root, tree.root().metadata().mtime)
}

fn set_mtime(path: &Path, mtime: i64) -> Result<()> {
    let at = rustix::fs::Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: at,
        last_modification: at,
    };
    rustix::fs::utimensat(CWD, path, &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).map_err(|e| {
        Error::io(
            format_args!("setting the mtime of `{}`", path.display()),
            e.into(),
        )
    })
}

/// The end of a command's output, as text.
fn read_output(path: &Path) -> Result<String> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format_args!("opening `{}`", path.display()), e))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let skip = len.saturating_sub(OUTPUT_KEPT as u64);
    if skip > 0 {
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(skip))
            .map_err(|e| Error::io(format_args!("reading `{}`", path.display()), e))?;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(format_args!("reading `{}`", path.display()), e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Where a program is on the host's `PATH` (the step's own `PATH` is the container's).
pub(super) fn find_program(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/bin").join(name))
}

/// A user as the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    uid: u32,
    gid: u32,
    home: String,
}

/// Resolves `USER` (`name`, `uid`, `name:group`, `uid:gid`) as Docker does: a name must be
/// in `/etc/passwd`, a number need not be; with no group, the user's primary group (or 0).
fn resolve_user(tree: &Tree, spec: &str) -> Result<User> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = tree.read("etc/passwd").unwrap_or_default();
    let passwd = String::from_utf8_lossy(&passwd);
    let found = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 {
            return None;
        }
        let matches = fields[0] == user || fields[2] == user;
        let uid = fields[2].parse::<u32>().ok()?;
        let gid = fields[3].parse::<u32>().ok()?;
        let home = fields.get(5).copied().unwrap_or("/").to_owned();
        matches.then_some(User { uid, gid, home })
    });
    let mut resolved = match (found, user.parse::<u32>()) {
        (Some(u), _) => u,
        (None, Ok(uid)) => User {
            uid,
            gid: 0,
            home: "/".to_owned(),
        },
        (None, Err(_)) => {
            return Err(Error::config(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(group) = group.filter(|g| !g.is_empty()) {
        resolved.gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = tree.read("etc/group").unwrap_or_default();
                let groups = String::from_utf8_lossy(&groups);
                groups
                    .lines()
                    .find_map(|line| {
                        let fields: Vec<&str> = line.split(':').collect();
                        (fields.len() >= 3 && fields[0] == group)
                            .then(|| fields[2].parse::<u32>().ok())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        Error::config(format!(
                            "unable to find group {group}: no matching entries in group file"
                        ))
                    })?
            }
        };
    }
    if resolved.home.is_empty() {
        resolved.home = "/".to_owned();
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layer;

    fn tree() -> Tree {
        let layer = Layer::builder()
            .file(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
            )
            .file("etc/group", "root:x:0:\nstaff:x:50:app\n")
            .build()
            .unwrap();
        Tree::new().apply(&layer).unwrap()
    }

    #[test]
    fn users_resolve_as_docker_does() {
        let t = tree();
        let user = |s| resolve_user(&t, s).map(|u| (u.uid, u.gid, u.home));
        assert_eq!(user("").unwrap(), (0, 0, "/root".to_owned()));
        assert_eq!(user("app").unwrap(), (1000, 1001, "/home/app".to_owned()));
        assert_eq!(user("1000").unwrap(), (1000, 1001, "/home/app".to_owned()));
        assert_eq!(user("4242").unwrap(), (4242, 0, "/".to_owned()));
        assert_eq!(
            user("app:staff").unwrap(),
            (1000, 50, "/home/app".to_owned())
        );
        assert_eq!(user("4242:7").unwrap(), (4242, 7, "/".to_owned()));
        assert!(user("nobody")
            .unwrap_err()
            .to_string()
            .contains("unable to find user nobody"));
        assert!(user("app:wheel")
            .unwrap_err()
            .to_string()
            .contains("unable to find group wheel"));
    }
}
