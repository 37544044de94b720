//! The `layercake` command line: a window onto the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod demo;
mod source;

/// Docker/OCI images as values: inspect, change and commit them in memory.
///
/// IMAGE is a docker-archive tar, an oci-archive tar or an OCI layout directory (the format
/// is detected), or skopeo's transport syntax: `docker-archive:FILE[:name:tag]`,
/// `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`.
#[derive(Debug, Parser)]
#[command(name = "layercake", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tells the story of a Docker image on data it carries: a base image, a second image on
    /// the same base, an overridden file, a container, its diff and its commit.
    #[command(after_help = "Example:\n  layercake demo")]
    Demo,

    /// Prints what `docker image inspect` prints: a JSON array of one object. Only the
    /// file's index is read, so `Size` (the layers' contents) is left out unless asked for.
    #[command(
        after_help = "Example:\n  layercake inspect busybox.tar\n  layercake inspect oci:layout:latest --size"
    )]
    Inspect {
        /// The image.
        image: String,
        /// Read every layer to give `Size`.
        #[arg(long)]
        size: bool,
    },

    /// Prints the image's history, newest first, like `docker history`. No layer is read, so
    /// SIZE shows `-` for a layer of an image file.
    #[command(
        after_help = "Example:\n  layercake history docker-archive:app.tar:app:1 --no-trunc"
    )]
    History {
        /// The image.
        image: String,
        /// Do not shorten ids and commands.
        #[arg(long)]
        no_trunc: bool,
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
        /// The directory (default: the root); symlinks are followed inside the image.
        #[arg(default_value = "/")]
        path: String,
        /// Long listing: mode, owner, size, mtime, link target and the supplying layer.
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
        /// The file.
        path: String,
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
        after_help = "Example:\n  layercake unpack app.tar rootfs\n  layercake unpack oci:layout:app rootfs --no-same-owner"
    )]
    Unpack {
        /// The image.
        image: String,
        /// The directory to write (created if missing).
        dir: PathBuf,
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
        after_help = "Example:\n  layercake convert app.tar oci:layout:app --compression zstd\n  layercake convert oci:layout:app app.tar --format docker-archive --tag app:1"
    )]
    Convert {
        /// The image.
        image: String,
        /// Where to write it (a path, or `docker-archive:FILE`, `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`).
        output: String,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Demo => demo::run(&mut out),
        Command::Inspect { image, size } => commands::inspect(&mut out, &image, size),
        Command::History { image, no_trunc } => commands::history(&mut out, &image, no_trunc),
        Command::Layers { image } => commands::layers(&mut out, &image),
        Command::Ls {
            image,
            path,
            long,
            recursive,
        } => commands::ls(&mut out, &image, &path, long, recursive),
        Command::Cat { image, path } => commands::cat(&mut out, &image, &path),
        Command::Diff { from, to } => commands::diff(&mut out, &from, &to),
        Command::Export { image, output } => commands::export(&image, &output),
        #[cfg(target_os = "linux")]
        Command::Unpack {
            image,
            dir,
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
            commands::unpack(&mut out, &image, &dir, &options)
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
            format,
            compression,
            level,
            tag,
        } => commands::convert(
            &image,
            &output,
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
        } => commands::squash(&image, &output, from, format.as_deref(), tag),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`layercake cat ... | head`) is not an error worth a message.
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            // One line: the error, then each underlying cause the error does not repeat.
            let mut line = format!("layercake: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
