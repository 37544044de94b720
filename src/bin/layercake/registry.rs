//! Registries on the command line: the one client (built from `--creds`, `--authfile`,
//! `--tls-verify`, `--cert-dir`), `docker://` arguments, temporary stores for images read
//! from a registry, and pull, push, login, logout and copy in Docker's and skopeo's words.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use layercake::archive::oci::Manifest;
use layercake::archive::Platform;
use layercake::registry::{Client, ClientOptions, PullOptions, PushOptions, PushReport, Transfer};
use layercake::store::AddOptions;
use layercake::{Compression, Digest, Image, Inspect, LayerStatus, Reference, Store};

use crate::root::Root;
use crate::source::{self, with_spinner, Location, Result};
use crate::stored::short;

/// The transport prefix of an image in a registry, as skopeo spells it.
pub const TRANSPORT: &str = "docker://";

/// `--creds USER:PASS`, its password kept out of `Debug`.
#[derive(Clone)]
pub struct Creds {
    user: String,
    password: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds({}, ***)", self.user)
    }
}

/// Parses `--creds USER:PASS`.
pub fn parse_creds(text: &str) -> std::result::Result<Creds, String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(Creds {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("expected USER:PASS".to_owned()),
    }
}

/// The options every command that may reach a registry takes.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Credentials for every registry, as USER:PASS, instead of Docker's config.json.
    #[arg(long, global = true, value_name = "USER:PASS", value_parser = parse_creds)]
    creds: Option<Creds>,

    /// The credentials file to read, and `login` and `logout` to write, instead of
    /// Docker's config.json.
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<PathBuf>,

    /// Verify registries' certificates and require HTTPS (localhost and 127.0.0.1 speak
    /// plain HTTP, as Docker does); `--tls-verify=false` accepts any certificate and plain
    /// HTTP.
    #[arg(
        long,
        global = true,
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    tls_verify: bool,

    /// A directory of CA certificates (`*.crt`) and client pairs (`*.cert`, `*.key`) for
    /// every registry, instead of `certs.d/HOST[:PORT]`.
    #[arg(long, global = true, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
}

/// The client options the arguments give, and the credentials file, set once by `main`.
static OPTIONS: OnceLock<(ClientOptions, Option<PathBuf>)> = OnceLock::new();
/// The one client, made on first use.
static CLIENT: OnceLock<Client> = OnceLock::new();

/// Sets the registry options from the arguments (once, before any command runs).
pub fn configure(args: &RegistryArgs) {
    let mut options = ClientOptions::new().tls_verify(args.tls_verify);
    if let Some(creds) = &args.creds {
        options = options.credentials(&creds.user, &creds.password);
    }
    if let Some(file) = &args.authfile {
        options = options.auth_file(file);
    }
    if let Some(dir) = &args.cert_dir {
        options = options.cert_dir(dir);
    }
    let _ = OPTIONS.set((options, args.authfile.clone()));
}

/// The registry client, built from the options on first use.
pub fn client() -> &'static Client {
    CLIENT.get_or_init(|| {
        let options = OPTIONS.get().map(|(o, _)| o.clone()).unwrap_or_default();
        Client::with_options(options)
    })
}

/// `--authfile`, if given.
fn auth_file() -> Option<&'static Path> {
    OPTIONS.get().and_then(|(_, file)| file.as_deref())
}

/// The reference of a `docker://REF` argument; `None` for any other argument.
pub fn remote(arg: &str) -> Option<Result<Reference>> {
    let text = arg.strip_prefix(TRANSPORT)?;
    Some(Reference::parse(text).map_err(|e| format!("{arg}: {e}").into()))
}

/// A reference typed as `REF` or `docker://REF` (pull, push, login's examples alike).
fn reference(arg: &str) -> Result<Reference> {
    remote(arg).unwrap_or_else(|| Ok(Reference::parse(arg)?))
}

/// An error of a registry operation, prefixed with the reference it was about (the
/// library's error names the registry it spoke to; this names what was typed).
fn about(arg: &str) -> impl Fn(layercake::Error) -> Box<dyn std::error::Error> + '_ {
    move |e| format!("{arg}: {e}").into()
}

/// The temporary stores of this run, removed by [`cleanup`].
static TEMPORARY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A new empty store in a temporary directory, removed when the command ends.
fn temporary_store() -> Result<Store> {
    let base = std::env::temp_dir();
    for n in 0..1000 {
        let dir = base.join(format!("layercake-pull-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                TEMPORARY
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(dir.clone());
                return Ok(Store::open(&dir)?);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display()).into()),
        }
    }
    Err(format!("cannot create a temporary store in {}", base.display()).into())
}

/// Removes the temporary stores images were pulled into (at the end of `main`: the images
/// read from them live until then).
pub fn cleanup() {
    for dir in TEMPORARY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
    {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Pulls an image into a temporary store (a spinner on a terminal): for commands that read
/// an image's layers (ls, cat, export, history, copy to a file...).
pub fn pull_temporary(arg: &str, reference: &Reference) -> Result<Image> {
    let mut store = temporary_store()?;
    with_spinner(format!("pulling {reference}"), || {
        let report = client()
            .pull(reference, &mut store, PullOptions::new())
            .map_err(about(arg))?;
        Ok(report.image)
    })
}

/// `inspect docker://REF`: the manifest and config alone, in `docker image inspect`'s
/// shape, without `Size` (which only the layers give).
pub fn inspect(out: &mut impl Write, arg: &str, reference: &Reference) -> Result<()> {
    let remote = with_spinner(format!("reading {reference}"), || {
        client().fetch(reference, None).map_err(about(arg))
    })?;
    let mut inspect = Inspect::from_config(&remote.config);
    // What the reference names (an index, or the manifest), as Docker shows it.
    let top = remote.index.as_ref().map_or(&remote.manifest.0, |(d, _)| d);
    inspect.repo_digests = vec![format!("{}@{}", familiar_name(reference), top.digest)];
    crate::commands::print_inspect(out, &inspect)
}

/// A reference's familiar name, without tag or digest (`busybox`, `quay.io/org/app`).
fn familiar_name(reference: &Reference) -> String {
    let familiar = reference.familiar().to_string();
    let name = familiar.split('@').next().unwrap_or(&familiar);
    match reference.tag() {
        Some(tag) => name
            .strip_suffix(&format!(":{tag}"))
            .unwrap_or(name)
            .to_owned(),
        None => name.to_owned(),
    }
}

/// Progress bars, one per blob moving, on a terminal (standard output a terminal; drawn on
/// standard error); nothing otherwise.
pub struct Bars {
    multi: Option<MultiProgress>,
    bars: BTreeMap<Digest, ProgressBar>,
    style: ProgressStyle,
}

impl Bars {
    /// Bars saying `verb` (`Downloading`, `Pushing`).
    pub fn new(verb: &str, show: bool) -> Bars {
        let template = format!(
            "{{msg}}: {verb} [{{bar:20}}] {{decimal_bytes}}/{{decimal_total_bytes}} {{decimal_bytes_per_sec}}"
        );
        Bars {
            multi: (show && std::io::stdout().is_terminal()).then(MultiProgress::new),
            bars: BTreeMap::new(),
            style: ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        }
    }

    /// Hears one event of a transfer.
    pub fn update(&mut self, transfer: &Transfer) {
        let Some(multi) = &self.multi else { return };
        match transfer {
            Transfer::Moving {
                digest,
                done,
                total,
            } => {
                let bar = self.bars.entry(*digest).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(*total).with_style(self.style.clone()));
                    bar.set_message(short(digest.to_hex()));
                    bar
                });
                bar.set_position(*done);
            }
            other => {
                if let Some(bar) = self.bars.remove(&other.digest()) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
            }
        }
    }

    /// Clears what is left (after a failure).
    pub fn clear(&mut self) {
        for (_, bar) in std::mem::take(&mut self.bars) {
            bar.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

/// The tag a reference was typed with, or its digest (`latest`, `sha256:…`), as Docker
/// prints it before `: Pulling from`.
fn tag_or_digest(reference: &Reference) -> String {
    match (reference.tag(), reference.digest()) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(digest)) => digest.to_string(),
        (None, None) => "latest".to_owned(),
    }
}

/// `docker pull REF`.
pub fn pull(
    root: &Root,
    out: &mut impl Write,
    arg: &str,
    platform: Option<&str>,
    all_platforms: bool,
    quiet: bool,
) -> Result<()> {
    let text = arg.strip_prefix(TRANSPORT).unwrap_or(arg);
    let reference = reference(arg)?;
    let mut options = PullOptions::new().all_platforms(all_platforms);
    if let Some(p) = platform {
        options = options.platform(Platform::parse(p)?);
    }
    let mut store = root.open()?;
    if !quiet {
        // No tag and no digest typed: Docker says which tag it takes.
        let last = text.rsplit('/').next().unwrap_or(text);
        if !last.contains(':') && !text.contains('@') {
            writeln!(out, "Using default tag: latest")?;
        }
    }
    pull_into(&mut store, out, &reference, options, quiet).map_err(about(arg))?;
    writeln!(out, "{reference}")?;
    Ok(())
}

/// Pulls `reference` into `store` with Docker's lines (`latest: Pulling from library/x`,
/// each layer, `Digest:`, `Status:`; none when `quiet`) and progress bars on a terminal:
/// for `pull`, and for `build` when FROM names an image the store does not have.
pub fn pull_into(
    store: &mut Store,
    out: &mut impl Write,
    reference: &Reference,
    options: PullOptions<'_>,
    quiet: bool,
) -> layercake::Result<layercake::registry::PullReport> {
    let io = |source| layercake::Error::Io {
        context: "writing the pull's output".into(),
        source,
    };
    if !quiet {
        writeln!(
            out,
            "{}: Pulling from {}",
            tag_or_digest(reference),
            reference.repository()
        )
        .and_then(|()| out.flush())
        .map_err(io)?;
    }
    let mut bars = Bars::new("Downloading", !quiet);
    let result = client().pull(
        reference,
        store,
        options.progress(|t: &Transfer| bars.update(t)),
    );
    bars.clear();
    let report = result?;
    if quiet {
        return Ok(report);
    }
    let mut lines = String::new();
    // Docker prints no layer line for an image it has already.
    if !report.up_to_date {
        for (digest, status) in &report.layers {
            let status = match status {
                LayerStatus::AlreadyExists => "Already exists",
                _ => "Pull complete",
            };
            lines.push_str(&format!("{}: {status}\n", short(digest.to_hex())));
        }
    }
    lines.push_str(&format!("Digest: {}\n", report.manifest.digest));
    let familiar = reference.familiar();
    if report.up_to_date {
        lines.push_str(&format!("Status: Image is up to date for {familiar}\n"));
    } else {
        lines.push_str(&format!("Status: Downloaded newer image for {familiar}\n"));
    }
    out.write_all(lines.as_bytes()).map_err(io)?;
    Ok(report)
}

/// The lines `docker push` prints for its layers, top first, then the tag's digest line.
fn print_push(out: &mut impl Write, to: &Reference, report: &PushReport) -> Result<()> {
    for transfer in report.layers.iter().rev() {
        let digest = short(transfer.digest().to_hex());
        match transfer {
            Transfer::Exists { .. } => writeln!(out, "{digest}: Layer already exists")?,
            Transfer::Mounted { from, .. } => writeln!(out, "{digest}: Mounted from {from}")?,
            Transfer::Done { .. } => writeln!(out, "{digest}: Pushed")?,
            _ => {}
        }
    }
    writeln!(
        out,
        "{}: digest: {} size: {}",
        tag_or_digest(to),
        report.manifest.digest,
        report.manifest.size
    )?;
    Ok(())
}

/// `docker push REF`: the image the store has under REF.
pub fn push(root: &Root, out: &mut impl Write, arg: &str) -> Result<()> {
    let text = arg.strip_prefix(TRANSPORT).unwrap_or(arg);
    let to = reference(arg)?;
    let missing = || {
        format!(
            "An image does not exist locally with the tag: {}",
            familiar_name(&to)
        )
    };
    let store = root.store().map_err(|_| missing())?;
    store.image(text).map_err(|e| match e {
        layercake::Error::ImageNotFound { .. } => missing().into(),
        other => Box::<dyn std::error::Error>::from(other),
    })?;
    writeln!(out, "The push refers to repository [{}]", to.name())?;
    out.flush()?;
    let mut bars = Bars::new("Pushing", true);
    let result = client().push_stored(
        store,
        text,
        &to,
        PushOptions::new().progress(|t: &Transfer| bars.update(t)),
    );
    bars.clear();
    print_push(out, &to, &result.map_err(about(arg))?)
}

/// Pushes any image (a loaded file, an edit's result) to `to`, printing what `docker push`
/// prints. Layers go as they are, but plain tars are gzip-compressed first (what a registry
/// expects), or every layer as `compression` says.
pub fn push_image(
    out: &mut impl Write,
    image: &Image,
    to: &Reference,
    compression: Option<&str>,
    level: Option<u32>,
) -> Result<()> {
    writeln!(out, "The push refers to repository [{}]", to.name())?;
    out.flush()?;
    let report = push_compressed(image, to, compression, level)?;
    print_push(out, to, &report)
}

/// Pushes an image with its plain layers gzip-compressed (or every layer as `compression`
/// says), with progress bars.
fn push_compressed(
    image: &Image,
    to: &Reference,
    compression: Option<&str>,
    level: Option<u32>,
) -> Result<PushReport> {
    let wanted = compression.map(str::parse::<Compression>).transpose()?;
    let layers = image
        .layers()
        .map(|layer| {
            let c = match wanted {
                Some(c) => c,
                None if layer.blob().compression() == Compression::None => Compression::Gzip,
                None => return Ok(layer.clone()),
            };
            Ok(layer.compress(c, level.unwrap_or_else(|| c.default_level()))?)
        })
        .collect::<Result<Vec<_>>>()?;
    let image = Image::from_parts(image.config().as_bytes().clone(), layers)?;
    let mut bars = Bars::new("Pushing", true);
    let result = client().push(
        &image,
        to,
        PushOptions::new().progress(|t: &Transfer| bars.update(t)),
    );
    bars.clear();
    result.map_err(about(&format!("{TRANSPORT}{to}")))
}

/// Prints an edit's result in a registry, as [`push_image`] does.
pub fn print_edit(out: &mut impl Write, to: &Reference, report: &PushReport) -> Result<()> {
    writeln!(out, "The push refers to repository [{}]", to.name())?;
    print_push(out, to, report)
}

/// An error of a registry edit, prefixed with the destination.
pub fn edit_error(to: &Reference) -> impl Fn(layercake::Error) -> Box<dyn std::error::Error> {
    let arg = format!("{TRANSPORT}{to}");
    move |e| format!("{arg}: {e}").into()
}

/// A registry as `login` and `logout` take it: `docker.io` for none, and Docker Hub's other
/// spellings; a scheme and a trailing path (`https://r.example/v2/`) dropped.
fn registry_name(arg: Option<&str>) -> String {
    let text = arg.unwrap_or("docker.io");
    let text = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let host = text.split('/').next().unwrap_or(text);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

/// How Docker names a registry in `login` and `logout` messages: Docker Hub by the address
/// its config.json keeps.
fn shown(registry: &str) -> &str {
    if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

/// Reads a line typed at the terminal, with a prompt on standard error; not echoed when
/// `hidden` (through `stty`, which acts on the terminal it is given as its input).
fn prompt(what: &str, hidden: bool) -> Result<String> {
    eprint!("{what}: ");
    std::io::stderr().flush()?;
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if hidden {
        echo(false);
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        echo(true);
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// `docker login [-u USER] [-p PASS | --password-stdin] [REGISTRY]`.
pub fn login(
    out: &mut impl Write,
    registry: Option<&str>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<()> {
    let registry = registry_name(registry);
    if password_stdin && username.is_none() {
        return Err("Must provide --username with --password-stdin".into());
    }
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let terminal = std::io::stdin().is_terminal();
    let interactive = || -> Result<()> {
        Err("Cannot perform an interactive login from a non TTY device".into())
    };
    let password = if password_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        Some(text.trim_end_matches(['\n', '\r']).to_owned())
    } else {
        password
    };
    let username = match username {
        Some(user) => user,
        None if terminal => prompt("Username", false)?,
        None => return interactive(),
    };
    if username.trim().is_empty() {
        return Err("Username is required".into());
    }
    let password = match password {
        Some(password) => password,
        None if terminal => prompt("Password", true)?,
        None => return interactive(),
    };
    if password.is_empty() {
        return Err("Password is required".into());
    }
    layercake::registry::login(client(), &registry, &username, &password, auth_file())
        .map_err(|e| format!("login to {registry}: {e}"))?;
    writeln!(out, "Login Succeeded")?;
    Ok(())
}

/// `docker logout [REGISTRY]`.
pub fn logout(out: &mut impl Write, registry: Option<&str>) -> Result<()> {
    let registry = registry_name(registry);
    if layercake::registry::logout(&registry, auth_file())? {
        writeln!(out, "Removing login credentials for {}", shown(&registry))?;
    } else {
        writeln!(out, "Not logged in to {}", shown(&registry))?;
    }
    Ok(())
}

/// skopeo's line for a blob: copied, or skipped.
fn blob_line(digest: &Digest, how: Option<String>) -> String {
    match how {
        Some(how) => format!("Copying blob {digest} {how}"),
        None => format!("Copying blob {digest}"),
    }
}

/// `copy SRC DST`, between registries (`docker://REF`), image files and the store, printing
/// what skopeo prints.
pub fn copy(root: &Root, out: &mut impl Write, src: &str, dst: &str) -> Result<()> {
    let from = source::location(src)?;
    let to = source::destination(dst)?;
    let mut lines: Vec<String> = vec!["Getting image source signatures".to_owned()];
    let config: Option<Digest>;
    match (from, to) {
        (Location::Registry(a), Location::Registry(b)) => {
            // Pinned to the manifest read here, so the config named is the one copied.
            let (top, bytes) = client().manifest(&a).map_err(about(src))?;
            config = serde_json::from_slice::<Manifest>(&bytes)
                .ok()
                .map(|m| m.config.digest);
            let pinned = a.with_digest(top.digest);
            let mut bars = Bars::new("Copying", true);
            let result = client().copy(
                &pinned,
                &b,
                PushOptions::new().progress(|t: &Transfer| bars.update(t)),
            );
            bars.clear();
            let report = result.map_err(about(dst))?;
            lines.extend(report.layers.iter().map(transfer_line));
        }
        (Location::Registry(a), Location::Store(name)) => {
            let mut store = root.open()?;
            // The name `pull` tags, and what it named before: a copy to another name leaves
            // it as it was.
            let pulled_tag = a.tag().map(|t| format!("{}:{t}", a.name()));
            let before = pulled_tag
                .as_deref()
                .and_then(|t| store.image(t).ok())
                .map(|i| i.id());
            let mut bars = Bars::new("Downloading", true);
            let result = client().pull(
                &a,
                &mut store,
                PullOptions::new().progress(|t: &Transfer| bars.update(t)),
            );
            bars.clear();
            let report = result.map_err(about(src))?;
            let id = report.image.id();
            store.tag(&id.to_string(), &name)?;
            let same = |tag: &String| Reference::parse(&name).is_ok_and(|n| n.matches(tag));
            if let Some(tag) = pulled_tag.filter(|t| !same(t)) {
                match before {
                    None => {
                        store.untag(&tag)?;
                    }
                    Some(old) if old != id => store.tag(&old.to_string(), &tag)?,
                    Some(_) => {}
                }
            }
            lines.extend(report.layers.iter().map(|(digest, status)| {
                blob_line(
                    digest,
                    (*status == LayerStatus::AlreadyExists)
                        .then(|| "skipped: already exists".to_owned()),
                )
            }));
            config = Some(id.digest());
        }
        (Location::Registry(a), Location::File(file)) => {
            let image = pull_temporary(src, &a)?;
            lines.extend(image.layers().map(|l| blob_line(&l.blob().digest(), None)));
            config = Some(image.id().digest());
            let names = vec![a.familiar().to_string()];
            source::save(&file, None, None, None, &image, &names, None)?;
        }
        (Location::Store(name), Location::Registry(b)) => {
            let store = root.store()?;
            config = Some(store.image(&name)?.id().digest());
            let mut bars = Bars::new("Copying", true);
            let result = client().push_stored(
                store,
                &name,
                &b,
                PushOptions::new().progress(|t: &Transfer| bars.update(t)),
            );
            bars.clear();
            let report = result.map_err(about(dst))?;
            lines.extend(report.layers.iter().map(transfer_line));
        }
        (Location::File(file), Location::Registry(b)) => {
            let image = source::load(root, &file)?.image;
            config = Some(image.id().digest());
            let report = push_compressed(&image, &b, None, None)?;
            lines.extend(report.layers.iter().map(transfer_line));
        }
        (_, Location::Store(name)) => {
            let image = source::load(root, src)?.image;
            let mut store = root.open()?;
            let report = store.add_with(&image, AddOptions::new().tag(name))?;
            lines.extend(
                image
                    .layers()
                    .zip(&report.layers)
                    .map(|(layer, (_, status))| {
                        blob_line(
                            &layer.blob().digest(),
                            (*status == LayerStatus::AlreadyExists)
                                .then(|| "skipped: already exists".to_owned()),
                        )
                    }),
            );
            config = Some(image.id().digest());
        }
        (_, Location::File(file)) => {
            let loaded = source::load(root, src)?;
            let names = loaded.names();
            source::save(
                &file,
                None,
                None,
                None,
                &loaded.image,
                &names,
                loaded.listed.as_ref(),
            )?;
            lines.extend(
                loaded
                    .image
                    .layers()
                    .map(|l| blob_line(&l.blob().digest(), None)),
            );
            config = Some(loaded.image.id().digest());
        }
    }
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    if let Some(config) = config {
        writeln!(out, "Copying config {config}")?;
    }
    writeln!(out, "Writing manifest to image destination")?;
    Ok(())
}

/// skopeo's line for a blob a push handled.
fn transfer_line(transfer: &Transfer) -> String {
    let how = match transfer {
        Transfer::Exists { .. } => Some("skipped: already exists".to_owned()),
        Transfer::Mounted { from, .. } => Some(format!("mounted from {from}")),
        _ => None,
    };
    blob_line(&transfer.digest(), how)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_as_docker_names_them() {
        assert_eq!(registry_name(None), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            registry_name(Some("http://localhost:5000/v2/")),
            "localhost:5000"
        );
        assert_eq!(registry_name(Some("quay.io")), "quay.io");
        assert_eq!(shown("docker.io"), "https://index.docker.io/v1/");
    }

    #[test]
    fn familiar_names_without_tag_or_digest() {
        let r = |t: &str| Reference::parse(t).unwrap();
        assert_eq!(familiar_name(&r("busybox")), "busybox");
        assert_eq!(
            familiar_name(&r("docker.io/library/busybox:1.36")),
            "busybox"
        );
        assert_eq!(
            familiar_name(&r("localhost:5000/a/b:1")),
            "localhost:5000/a/b"
        );
        let pinned = format!("quay.io/org/app@{}", Digest::sha256(b""));
        assert_eq!(familiar_name(&r(&pinned)), "quay.io/org/app");
        assert_eq!(tag_or_digest(&r(&pinned)), Digest::sha256(b"").to_string());
        assert_eq!(tag_or_digest(&r("busybox")), "latest");
    }

    #[test]
    fn creds_need_a_colon_and_hide_the_password() {
        assert!(parse_creds("me").is_err());
        assert!(parse_creds(":pw").is_err());
        let creds = parse_creds("me:p:w").unwrap();
        assert_eq!(creds.password, "p:w");
        assert_eq!(format!("{creds:?}"), "Creds(me, ***)");
    }
}
