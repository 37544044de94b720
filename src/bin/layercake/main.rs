//! The `layercake` command line: a window onto the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build;
mod commands;
mod demo;
mod edit;
mod registry;
mod root;
mod source;
mod stored;

/// Docker/OCI images as values: inspect, change and commit them in memory.
///
/// IMAGE is a docker-archive tar, an oci-archive tar or an OCI layout directory (the format
/// is detected), or skopeo's transport syntax: `docker-archive:FILE[:name:tag]`,
/// `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`, `docker://REF` (an image in a registry: pulled
/// into a temporary store to be read; OUTPUT `docker://REF` pushes). Anything else (not an
/// existing path, no transport prefix) names an image in the store, as in `docker`:
/// `name[:tag]`, `name@sha256:…` (a manifest digest), an image id or a unique prefix of one.
#[derive(Debug, Parser)]
#[command(name = "layercake", version, about, long_about)]
struct Cli {
    /// The image store's directory [env: LAYERCAKE_ROOT; default: $XDG_DATA_HOME/layercake,
    /// else ~/.local/share/layercake]. Opened only by commands that use it.
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Raises or lowers a limit on what image files may hold, as `NAME=VALUE` (repeatable):
    /// ratio, layer-bytes, image-bytes, archive-bytes, blob-bytes, entries, path-bytes,
    /// name-bytes, depth, pax-bytes, json-bytes, layers, index-depth, trailing-bytes. E.g.
    /// `--limit ratio=2000` reads a layer of zero-filled files that looks like a bomb.
    #[arg(long, global = true, value_name = "NAME=VALUE", value_parser = source::parse_limit)]
    limit: Vec<(String, u64)>,

    #[command(flatten)]
    registry: registry::RegistryArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tells the story of a Docker image on data it carries: a base image, a second image on
    /// the same base, an overridden file, a container, its diff and its commit.
    #[command(after_help = "Example:\n  layercake demo")]
    Demo,

    /// Prints what `docker image inspect` prints: a JSON array of one object, four-space
    /// indented, with Docker's keys in Docker's order (empty strings and nulls included) and
    /// tags in familiar form (`busybox:latest`). Every layer is read (and its digest checked)
    /// to give `Size`, which Docker always shows: the bytes of file contents in the layers.
    ///
    /// Left out: `GraphDriver` and `Metadata`, which describe a daemon's storage (its graph
    /// driver, when it last tagged the image), not the image; and `Parent` is always empty:
    /// Docker fills it only for images built in that daemon.
    ///
    /// `docker://REF` reads the manifest and config alone, no layer: `Size` is left out, and
    /// `RepoDigests` names what the reference names in its registry.
    #[command(
        after_help = "Example:\n  layercake inspect busybox.tar\n  layercake inspect oci:layout:latest\n  layercake inspect docker://localhost:5000/team/app:1"
    )]
    Inspect {
        /// The image.
        image: String,
        /// Deprecated, and what is done anyway: `Size` is always shown.
        #[arg(long, hide = true, conflicts_with = "no_size")]
        size: bool,
        /// Read no layer, only the file's index (as fast as `skopeo inspect`): `Size` and
        /// `VirtualSize` are left out.
        #[arg(long)]
        no_size: bool,
    },

    /// Prints the image's history, newest first, like `docker history`: the image id on the
    /// top row (`<missing>` below, as Docker shows a loaded image), when each step ran, its
    /// command, the size of its layer's file contents, its comment. Every layer is read, unless
    /// `--no-size`.
    #[command(
        after_help = "Example:\n  layercake history app.tar\n  layercake history docker-archive:app.tar:app:1 --no-trunc --human=false"
    )]
    History {
        /// The image.
        image: String,
        /// Ages and sizes for people (`3 years ago`, `1.98MB`); `--human=false` gives RFC 3339
        /// times (in UTC) and sizes in bytes.
        #[arg(
            short = 'H',
            long,
            default_value_t = true,
            action = clap::ArgAction::Set,
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true"
        )]
        human: bool,
        /// Do not shorten ids and commands.
        #[arg(long)]
        no_trunc: bool,
        /// Read no layer, only the file's index: SIZE shows `-` for a layer not read.
        #[arg(long)]
        no_size: bool,
    },

    /// Lists the layers: DiffId, blob digest, media type, sizes, entries, whiteouts, ChainId.
    #[command(after_help = "Example:\n  layercake layers oci:layout")]
    Layers {
        /// The image.
        image: String,
    },

    /// Lists a directory of the merged filesystem.
    #[command(after_help = "Example:\n  layercake ls app.tar /etc -l\n  layercake ls app.tar -lR")]
    Ls {
        /// The image.
        image: String,
        /// The directory (default: the root); symlinks are followed inside the image. Any
        /// bytes, UTF-8 or not. Paths are printed absolute.
        #[arg(default_value = "/")]
        path: OsString,
        /// Long listing: mode, owner, size, mtime, link target and the supplying layer; the
        /// second and later names of a hardlinked file end `link to FIRST`.
        #[arg(short, long)]
        long: bool,
        /// Everything below, recursively.
        #[arg(short = 'R', long)]
        recursive: bool,
    },

    /// Writes a file's bytes to standard output, following symlinks inside the image.
    #[command(after_help = "Example:\n  layercake cat app.tar /etc/os-release")]
    Cat {
        /// The image.
        image: String,
        /// The file: any bytes, UTF-8 or not.
        path: OsString,
    },

    /// Prints `docker diff`-style A/C/D lines from the first image's filesystem to the second's.
    #[command(after_help = "Example:\n  layercake diff base.tar app.tar")]
    Diff {
        /// The lower image.
        from: String,
        /// The upper image.
        to: String,
    },

    /// Writes the flattened filesystem as one tar, like `docker export`.
    #[command(after_help = "Example:\n  layercake export app.tar -o rootfs.tar")]
    Export {
        /// The image.
        image: String,
        /// The tar to write.
        #[arg(short, long)]
        output: PathBuf,
    },

    /// Writes the merged filesystem into a directory, like `umoci unpack`: nothing is written
    /// outside DIR and no symlink is followed. As root, owners are kept; device nodes and
    /// setuid/setgid bits only when asked.
    #[cfg(target_os = "linux")]
    #[command(
        after_help = "Example:\n  layercake unpack app.tar -o rootfs\n  layercake unpack oci:layout:app -o rootfs --no-same-owner\n\nDIR as a second argument (`unpack app.tar rootfs`) still works but is deprecated: use -o."
    )]
    Unpack {
        /// The image.
        image: String,
        /// The directory to write (created if missing).
        #[arg(short, long, value_name = "DIR", required_unless_present = "dir_arg")]
        output: Option<PathBuf>,
        /// Deprecated spelling of -o DIR.
        #[arg(value_name = "DIR", hide = true, conflicts_with = "output")]
        dir_arg: Option<PathBuf>,
        /// Leave every entry owned by the user running this (the default when not root).
        #[arg(long)]
        no_same_owner: bool,
        /// Create character and block devices (needs root).
        #[arg(long)]
        devices: bool,
        /// Keep setuid and setgid bits and file capabilities.
        #[arg(long)]
        keep_setuid: bool,
    },

    /// Makes a one-layer image from a root filesystem tar (plain, gzip or zstd), like
    /// `docker import`.
    #[command(after_help = "Example:\n  layercake import rootfs.tar -o image.tar --tag rootfs:1")]
    Import {
        /// The root filesystem tar.
        file: PathBuf,
        /// The image file to write.
        #[arg(short, long)]
        output: String,
        /// The name to give the image.
        #[arg(long)]
        tag: Option<String>,
        /// The commit message.
        #[arg(short, long)]
        message: Option<String>,
        /// The output format (default: from OUTPUT's transport, else docker-archive).
        #[arg(long)]
        format: Option<String>,
    },

    /// Writes the image in another form, recompressing layers only when asked.
    #[command(
        after_help = "Example:\n  layercake convert app.tar -o oci:layout:app --compression zstd\n  layercake convert oci:layout:app -o app.tar --format docker-archive --tag app:1\n\nOUTPUT as a second argument (`convert app.tar oci:layout`) still works but is deprecated: use -o."
    )]
    Convert {
        /// The image.
        image: String,
        /// Where to write it (a path, or `docker-archive:FILE`, `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`,
        /// or `docker://REF` to push it).
        #[arg(
            short,
            long,
            value_name = "OUTPUT",
            required_unless_present = "output_arg"
        )]
        output: Option<String>,
        /// Deprecated spelling of -o OUTPUT.
        #[arg(value_name = "OUTPUT", hide = true, conflicts_with = "output")]
        output_arg: Option<String>,
        /// docker-archive, oci or oci-archive (default: from OUTPUT's transport, else docker-archive).
        #[arg(long)]
        format: Option<String>,
        /// gzip, zstd or none (default: keep each layer's blob as it is).
        #[arg(long)]
        compression: Option<String>,
        /// The compression level.
        #[arg(long)]
        level: Option<u32>,
        /// The name to give the image (default: its names in the input).
        #[arg(long)]
        tag: Vec<String>,
    },

    /// Squashes layers FROM..top into one; the filesystem is unchanged.
    #[command(after_help = "Example:\n  layercake squash app.tar -o squashed.tar --from 1")]
    Squash {
        /// The image.
        image: String,
        /// Where to write the squashed image.
        #[arg(short, long)]
        output: String,
        /// The first layer to squash (0 = all).
        #[arg(long, default_value_t = 0)]
        from: usize,
        /// The output format (default: from OUTPUT's transport, else docker-archive).
        #[arg(long)]
        format: Option<String>,
        /// The name to give the image (default: its names in the input).
        #[arg(long)]
        tag: Vec<String>,
    },

    /// Loads the images of an image file into the store, like `docker load`: a line per
    /// layer, loaded or already there, then each image's name (or its id if it has none).
    #[command(
        after_help = "Example:\n  layercake load -i busybox.tar\n  layercake --root /srv/images load --input app.tar"
    )]
    Load {
        /// The image file (docker-archive, oci-archive or OCI layout).
        #[arg(short, long, value_name = "FILE")]
        input: PathBuf,
    },

    /// Lists the images in the store, like `docker images`, newest first. SIZE is the sum of
    /// the layers' blobs as stored (compressed or not), not their unpacked size.
    #[command(
        after_help = "Example:\n  layercake images\n  layercake images --digests --no-trunc"
    )]
    Images {
        /// Also the images builds keep for their steps (hidden by default, as Docker hides
        /// intermediate images).
        #[arg(short, long)]
        all: bool,
        /// Only the image ids, once each.
        #[arg(short, long)]
        quiet: bool,
        /// Show each image's manifest digest (not with --quiet, which shows ids only).
        #[arg(long, conflicts_with = "quiet")]
        digests: bool,
        /// Do not shorten the ids.
        #[arg(long)]
        no_trunc: bool,
    },

    /// Writes images of the store (or files) into one image file, like `docker save`, each
    /// under its tags, or under the name it was given.
    #[command(
        after_help = "Example:\n  layercake save -o busybox.tar busybox\n  layercake save -o images.tar app:1 app:2 --format oci-archive"
    )]
    Save {
        /// The file to write (a directory for `--format oci`).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// The images.
        #[arg(required = true)]
        images: Vec<String>,
        /// docker-archive, oci-archive or oci.
        #[arg(long, default_value = "docker-archive")]
        format: String,
    },

    /// Pulls an image from a registry into the store, like `docker pull`: `TAG: Pulling from
    /// REPO`, a line per layer (`Already exists` or `Pull complete`; progress bars on a
    /// terminal), the digest, the status, the full reference. REF is `name[:tag]`,
    /// `name@sha256:…` or `docker://REF`; `localhost` and `127.0.0.1` speak plain HTTP.
    #[command(
        after_help = "Example:\n  layercake pull busybox\n  layercake pull localhost:5000/team/app:1 --platform linux/arm64"
    )]
    Pull {
        /// The image in its registry.
        #[arg(value_name = "REF")]
        reference: String,
        /// The platform to take from an index (default: this machine's).
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
        /// Keep every platform of an index (the store tags the one for this machine).
        #[arg(long, conflicts_with = "platform")]
        all_platforms: bool,
        /// Print only the full reference.
        #[arg(short, long)]
        quiet: bool,
    },

    /// Pushes an image of the store to a registry, like `docker push`: the store must have
    /// it under REF (`layercake tag` gives it that name). Prints the repository, a line per
    /// layer, top first (`Layer already exists`, `Mounted from REPO`, `Pushed`), then
    /// `TAG: digest: sha256:… size: N`. The manifest the store keeps is pushed as it is: a
    /// pulled image keeps its digest.
    #[command(
        after_help = "Example:\n  layercake tag app:1 localhost:5000/team/app:1\n  layercake push localhost:5000/team/app:1"
    )]
    Push {
        /// The image, named as it will be in its registry.
        #[arg(value_name = "REF")]
        reference: String,
    },

    /// Logs in to a registry, like `docker login`: checks the credentials, then keeps them
    /// in Docker's config.json (or --authfile). Asks for what is missing on a terminal.
    #[command(
        after_help = "Example:\n  layercake login -u me localhost:5000\n  echo \"$TOKEN\" | layercake login -u me --password-stdin ghcr.io"
    )]
    Login {
        /// The user name.
        #[arg(short, long)]
        username: Option<String>,
        /// The password (or token): insecure on a command line, prefer --password-stdin.
        #[arg(short, long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The registry [default: docker.io].
        registry: Option<String>,
    },

    /// Removes a registry's credentials from Docker's config.json (or --authfile), like
    /// `docker logout`.
    #[command(after_help = "Example:\n  layercake logout localhost:5000")]
    Logout {
        /// The registry [default: docker.io].
        registry: Option<String>,
    },

    /// Copies an image between registries (`docker://REF`), image files
    /// (`docker-archive:FILE`, `oci:DIR[:ref]`, `oci-archive:FILE`) and the store (a name),
    /// printing what `skopeo copy` prints. Registry to registry moves blobs directly (mounted
    /// within one registry); a name as SRC or DST is an image in the store.
    #[command(
        after_help = "Example:\n  layercake copy docker://busybox docker://localhost:5000/busybox:1\n  layercake copy docker://busybox oci:layout:busybox\n  layercake copy app.tar docker://localhost:5000/app:1\n  layercake copy docker://localhost:5000/app:1 app:1"
    )]
    Copy {
        /// Where the image is.
        #[arg(value_name = "SRC")]
        source: String,
        /// Where it goes.
        #[arg(value_name = "DST")]
        destination: String,
    },

    /// Adds layers on top of an image, like `crane append`: each TAR (a layer tar, plain,
    /// gzip or zstd) becomes a layer with a `layercake append` history row. BASE and NEW
    /// may each be `docker://REF`, an image file or a name in the store; in a registry
    /// (both `docker://`), only the new layers and config are pushed.
    #[command(
        after_help = "Example:\n  layercake append busybox app.tar -t app:1\n  layercake append docker://localhost:5000/busybox:1 app.tar -t docker://localhost:5000/app:1\n  layercake append oci:layout:base app.tar.gz -t oci-archive:app.tar"
    )]
    Append {
        /// The image to add to.
        base: String,
        /// The layer tars, bottom first.
        #[arg(required = true, value_name = "TAR")]
        tars: Vec<PathBuf>,
        /// Where the new image goes: `docker://REF`, a transport and file, or a tag in the
        /// store.
        #[arg(short = 't', long = "tag", value_name = "NEW")]
        tag: String,
    },

    /// Moves an image from one base onto another, like `crane rebase`: the old base's
    /// layers at the bottom of IMAGE (checked by digest) are replaced by the new base's,
    /// and its history rows by the new base's; the layers above and the config are kept.
    /// All four may be `docker://REF` (nothing is pulled), files or names in the store.
    #[command(
        after_help = "Example:\n  layercake rebase app:1 --old-base debian:12.1 --new-base debian:12.2 -t app:1-rebased\n  layercake rebase docker://localhost:5000/app:1 --old-base docker://localhost:5000/debian:12.1 --new-base docker://localhost:5000/debian:12.2 -t docker://localhost:5000/app:2"
    )]
    Rebase {
        /// The image to move.
        image: String,
        /// The base it is built on.
        #[arg(long, value_name = "OLD")]
        old_base: String,
        /// The base to put it on.
        #[arg(long, value_name = "NEW")]
        new_base: String,
        /// Where the new image goes: `docker://REF`, a transport and file, or a tag in the
        /// store.
        #[arg(short = 't', long = "tag", value_name = "NEW")]
        tag: String,
    },

    /// Changes an image's config, like `crane mutate`: entrypoint, command, environment,
    /// labels, working directory, user, with a history row saying what changed (as
    /// Dockerfile instructions). In a registry (IMAGE and NEW both `docker://`), only the
    /// new config and manifest are pushed.
    #[command(
        after_help = "Example:\n  layercake mutate app:1 --env LOG=debug --user nobody -t app:1-debug\n  layercake mutate docker://localhost:5000/app:1 --entrypoint '[\"/app/run\", \"--serve\"]' -t docker://localhost:5000/app:2"
    )]
    Mutate {
        /// The image to change.
        image: String,
        /// The entrypoint: a JSON array, or words split at spaces. It drops the command,
        /// as Docker does, unless --cmd is given too.
        #[arg(long, value_name = "JSON|WORDS", value_parser = edit::parse_words)]
        entrypoint: Option<edit::Words>,
        /// The command: a JSON array, or words split at spaces.
        #[arg(long, value_name = "JSON|WORDS", value_parser = edit::parse_words)]
        cmd: Option<edit::Words>,
        /// Sets an environment variable (repeatable): replaced in place, or added.
        #[arg(short, long, value_name = "KEY=VALUE", value_parser = edit::parse_pair)]
        env: Vec<(String, String)>,
        /// Sets a label (repeatable).
        #[arg(short, long, value_name = "KEY=VALUE", value_parser = edit::parse_pair)]
        label: Vec<(String, String)>,
        /// The working directory.
        #[arg(long, value_name = "DIR")]
        workdir: Option<String>,
        /// The user (`name`, `uid`, `uid:gid`).
        #[arg(short, long)]
        user: Option<String>,
        /// Where the new image goes: `docker://REF`, a transport and file, or a tag in the
        /// store.
        #[arg(short = 't', long = "tag", value_name = "NEW")]
        tag: String,
    },

    /// Gives an image in the store another name, like `docker tag`.
    #[command(after_help = "Example:\n  layercake tag busybox:latest registry.example/busybox:1")]
    Tag {
        /// The image (a tag, an id or a unique id prefix).
        source: String,
        /// The new name (`name[:tag]`, `:latest` implied).
        target: String,
    },

    /// Removes images from the store, like `docker rmi`: by tag the tag goes, and the image
    /// with its last tag; by id the image goes unless several tags point at it. Layers no
    /// other image uses go too.
    #[command(after_help = "Example:\n  layercake rmi busybox:latest\n  layercake rmi 3f2a1b")]
    Rmi {
        /// The images.
        #[arg(required = true)]
        images: Vec<String>,
    },

    /// Removes images no tag points at, and the layers only they used, like
    /// `docker image prune` (without asking).
    #[command(after_help = "Example:\n  layercake prune")]
    Prune,

    /// Re-hashes every blob and cached layer of the store and names each file that is not
    /// what it should be; exits with status 1 if any is not.
    #[command(after_help = "Example:\n  layercake verify")]
    Verify,

    /// Builds an image from a Dockerfile into the store, without a daemon: FROM resolves in
    /// the store (a missing image is pulled), each step is committed as Docker's classic
    /// builder commits it and kept as the store's build cache (`--no-cache` runs every step),
    /// RUN runs the command with util-linux `unshare` in namespaces of its own (root needed),
    /// the network off unless `--network host`; `.dockerignore` is honoured. `--print` prints the parsed instructions as JSON instead, one object a line
    /// (`instruction`, `flags`, `args` before variable expansion, `"json":true` for the exec
    /// form, `heredocs`), for tools and tests.
    #[command(
        after_help = "Example:\n  layercake build -t app:1 .\n  layercake build --print -f Dockerfile"
    )]
    Build(build::BuildArgs),

    /// Shows the store's disk use, like `docker system df`: images, layers, bytes stored,
    /// bytes shared between images, and the layer cache (which may be deleted).
    #[command(after_help = "Example:\n  layercake df")]
    Df,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = source::set_limits(&cli.limit) {
        eprintln!("layercake: {e}");
        return ExitCode::FAILURE;
    }
    registry::configure(&cli.registry);
    let root = root::Root::new(cli.root);
    let root = &root;
    // Not locked: `load`'s progress may be reported from another thread.
    let mut out = std::io::stdout();
    let result = match cli.command {
        Command::Demo => demo::run(&mut out),
        Command::Build(args) if args.print => build::print(&mut out, &args),
        Command::Build(args) => build::build(root, &mut out, &args),
        Command::Inspect {
            image,
            size: _,
            no_size,
        } => commands::inspect(root, &mut out, &image, !no_size),
        Command::History {
            image,
            human,
            no_trunc,
            no_size,
        } => commands::history(root, &mut out, &image, human, no_trunc, !no_size),
        Command::Layers { image } => commands::layers(root, &mut out, &image),
        Command::Ls {
            image,
            path,
            long,
            recursive,
        } => commands::ls(root, &mut out, &image, &path, long, recursive),
        Command::Cat { image, path } => commands::cat(root, &mut out, &image, &path),
        Command::Diff { from, to } => commands::diff(root, &mut out, &from, &to),
        Command::Export { image, output } => commands::export(root, &image, &output),
        #[cfg(target_os = "linux")]
        Command::Unpack {
            image,
            output,
            dir_arg,
            no_same_owner,
            devices,
            keep_setuid,
        } => {
            use layercake::unpack::{Devices, Owners, Setuid};
            let options = layercake::UnpackOptions::new()
                .owners(if no_same_owner {
                    Owners::Drop
                } else {
                    Owners::Auto
                })
                .devices(if devices {
                    Devices::Create
                } else {
                    Devices::Skip
                })
                .setuid(if keep_setuid {
                    Setuid::Keep
                } else {
                    Setuid::Strip
                });
            let dir = output.or(dir_arg).unwrap_or_default();
            commands::unpack(root, &mut out, &image, &dir, &options)
        }
        Command::Import {
            file,
            output,
            tag,
            message,
            format,
        } => commands::import(&file, &output, tag, message, format.as_deref()),
        Command::Convert {
            image,
            output,
            output_arg,
            format,
            compression,
            level,
            tag,
        } => commands::convert(
            root,
            &image,
            &output.or(output_arg).unwrap_or_default(),
            format.as_deref(),
            compression.as_deref(),
            level,
            tag,
        ),
        Command::Squash {
            image,
            output,
            from,
            format,
            tag,
        } => commands::squash(root, &image, &output, from, format.as_deref(), tag),
        Command::Load { input } => stored::load(root, &mut out, &input),
        Command::Images {
            all,
            quiet,
            digests,
            no_trunc,
        } => stored::images(root, &mut out, all, quiet, digests, no_trunc),
        Command::Save {
            output,
            images,
            format,
        } => stored::save(root, &output, &images, &format),
        Command::Pull {
            reference,
            platform,
            all_platforms,
            quiet,
        } => registry::pull(
            root,
            &mut out,
            &reference,
            platform.as_deref(),
            all_platforms,
            quiet,
        ),
        Command::Push { reference } => registry::push(root, &mut out, &reference),
        Command::Login {
            username,
            password,
            password_stdin,
            registry,
        } => registry::login(
            &mut out,
            registry.as_deref(),
            username,
            password,
            password_stdin,
        ),
        Command::Logout { registry } => registry::logout(&mut out, registry.as_deref()),
        Command::Copy {
            source,
            destination,
        } => registry::copy(root, &mut out, &source, &destination),
        Command::Append { base, tars, tag } => edit::append(root, &mut out, &base, &tars, &tag),
        Command::Rebase {
            image,
            old_base,
            new_base,
            tag,
        } => edit::rebase(root, &mut out, &image, &old_base, &new_base, &tag),
        Command::Mutate {
            image,
            entrypoint,
            cmd,
            env,
            label,
            workdir,
            user,
            tag,
        } => {
            let mut change = layercake::registry::ConfigChange::new();
            if let Some(words) = entrypoint {
                change = change.entrypoint(words.0);
            }
            if let Some(words) = cmd {
                change = change.cmd(words.0);
            }
            for (key, value) in env {
                change = change.env(key, value);
            }
            for (key, value) in label {
                change = change.label(key, value);
            }
            if let Some(dir) = workdir {
                change = change.workdir(dir);
            }
            if let Some(user) = user {
                change = change.user(user);
            }
            edit::mutate(root, &mut out, &image, &change, &tag)
        }
        Command::Tag { source, target } => stored::tag(root, &source, &target),
        Command::Rmi { images } => stored::rmi(root, &mut out, &images),
        Command::Prune => stored::prune(root, &mut out),
        Command::Verify => stored::verify(root, &mut out),
        Command::Df => stored::df(root, &mut out),
    };
    // The temporary stores images were pulled into, now that nothing reads them.
    registry::cleanup();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`layercake cat ... | head`) is not an error worth a message.
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            // One line: the error, then each underlying cause the error does not repeat
            // (layercake's own errors end with their cause's message already), with every
            // unprintable character escaped: messages quote input, and the causes' words
            // (serde_json's, an argument's) are not escaped by the library.
            let mut line = format!("layercake: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                let text = c.to_string();
                if !line.contains(&text) && !line.contains(&escape(&text)) {
                    line.push_str(&format!(": {text}"));
                }
                cause = c.source();
            }
            if let Some(layercake::Error::RatioExceeded { .. }) =
                e.downcast_ref::<layercake::Error>()
            {
                line.push_str(" (here: --limit ratio=N)");
            }
            eprintln!("{}", escape(&line));
            ExitCode::FAILURE
        }
    }
}

/// Escapes what a terminal would act on, as the library's `Display` of its errors does:
/// control characters (C0, DEL, C1) and the format characters that reorder text. Text the
/// library escaped already passes unchanged.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let unprintable = c.is_control()
            || matches!(c,
                '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
                | '\u{feff}' | '\u{fff9}'..='\u{fffb}');
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if unprintable && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if unprintable => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
