//! Containers: copy-on-write, hardlinks, renames, errors, symlinks inside the root,
//! `docker diff` and `docker commit`.

mod common;

use common::TempFile;
use layercake::archive::{Archive, Format, Writer};
use layercake::config::{rfc3339, ContainerConfig};
use layercake::layer::WhiteoutStyle;
use layercake::{
    CommitOptions, Container, Entry, EntryKind, Error, FileType, Image, ImagePath, Layer, Tree,
};

type Result<T = ()> = layercake::Result<T>;

/// A small distribution: `etc`, `bin`, `usr/lib`, `tmp` and a few symlinks.
fn base() -> Result<Image> {
    let layer = Layer::builder()
        .entry(
            "etc/passwd",
            Entry::file("root:x:0:0::/root:/bin/sh\n").mtime(100),
        )
        .entry("etc/hosts", Entry::file("127.0.0.1 localhost\n").mtime(100))
        .entry("bin/tool", Entry::file(vec![0x7f; 4096]).mode(0o755))
        .hard_link("bin/tool", "bin/tool-alias")
        .file("usr/lib/libc.so", "ELF")
        .symlink("usr/lib", "lib")
        .symlink("/etc", "abs-etc")
        .symlink("../../../../etc/hosts", "escape")
        .symlink("/var/lib/state", "dangling")
        .dir("var/lib")
        .file("tmp/x", "")
        .build()?;
    Image::builder()
        .layer(layer)
        .commit(layercake::Commit::new().created(0))
        .build()
}

fn lines(c: &Container) -> Vec<String> {
    c.diff().unwrap().iter().map(ToString::to_string).collect()
}

/// Where in-memory contents start, to tell a shared buffer from a copy.
fn ptr(contents: Option<&layercake::Contents>) -> *const u8 {
    contents
        .expect("a regular file")
        .as_bytes()
        .expect("contents in memory")
        .as_ptr()
}

#[test]
fn metadata_changes_share_the_lower_bytes() -> Result {
    let image = base()?;
    let layer = image.layers().next().unwrap();
    let lower_ptr = ptr(layer.changeset()?.entry("bin/tool")?.unwrap().contents());
    let lower = image.tree()?.lookup("bin/tool")?.unwrap();
    assert_eq!(ptr(lower.contents()), lower_ptr);

    let mut c = Container::new(&image)?;
    c.set_permissions("bin/tool", 0o700)?;
    c.set_owner("bin/tool", 1000, 1000)?;
    c.set_xattr("bin/tool", "security.capability", "\x01")?;
    c.set_mtime("bin/tool", 42)?;

    let read = c.read("bin/tool")?;
    assert_eq!(read.as_ptr(), lower_ptr, "the contents were copied");
    assert_eq!(read.len(), 4096);
    let upper = c.metadata("bin/tool")?;
    assert_eq!(upper.metadata().mode, 0o700);
    assert_eq!((upper.metadata().uid, upper.metadata().gid), (1000, 1000));
    assert_eq!(upper.metadata().mtime, 42);
    assert!(
        !upper.same_file(&lower),
        "the lower file itself was changed"
    );
    // The image is a value: its tree did not change.
    let again = image.tree()?.lookup("bin/tool")?.unwrap();
    assert_eq!(again.metadata().mode, 0o755);
    assert!(again.metadata().xattrs.is_empty());
    Ok(())
}

#[test]
fn changing_one_name_of_a_lower_hardlink_gives_it_its_own_file() -> Result {
    let image = base()?;
    let tree = image.tree()?;
    let (tool, alias) = (
        tree.lookup("bin/tool")?.unwrap(),
        tree.lookup("bin/tool-alias")?.unwrap(),
    );
    assert!(tool.same_file(&alias));

    let mut c = Container::new(&image)?;
    c.set_permissions("bin/tool-alias", 0o700)?;
    let (tool, alias) = (
        c.symlink_metadata("bin/tool")?,
        c.symlink_metadata("bin/tool-alias")?,
    );
    assert!(!tool.same_file(&alias));
    assert_eq!(tool.metadata().mode, 0o755);
    assert_eq!(alias.metadata().mode, 0o700);
    // Still no copy of the bytes.
    assert_eq!(ptr(tool.contents()), ptr(alias.contents()));
    Ok(())
}

#[test]
fn hard_link_shares_one_node() -> Result {
    let mut c = Container::new(&base()?)?;
    c.write("srv/data", "v1").unwrap_err();
    c.create_dir("srv")?;
    c.write("srv/data", "v1")?;
    c.hard_link("srv/data", "srv/data.bak")?;
    let (a, b) = (
        c.symlink_metadata("srv/data")?,
        c.symlink_metadata("srv/data.bak")?,
    );
    assert!(a.same_file(&b));
    assert_eq!(c.read("srv/data.bak")?, "v1");

    // A link to a lower file shares the lower node.
    c.hard_link("etc/passwd", "etc/passwd-")?;
    let lower = c.image().tree()?.lookup("etc/passwd")?.unwrap();
    assert!(c.symlink_metadata("etc/passwd-")?.same_file(&lower));
    assert_eq!(c.symlink_metadata("etc/passwd-")?.layer(), Some(1));
    assert_eq!(c.symlink_metadata("etc/passwd")?.layer(), Some(0));

    // link(2) does not follow a symlink: the new name is another name of the symlink.
    c.hard_link("lib", "lib64")?;
    let link = c.symlink_metadata("lib64")?;
    assert_eq!(link.file_type(), FileType::Symlink);
    assert!(link.same_file(&c.symlink_metadata("lib")?));
    assert_eq!(c.read("lib64/libc.so")?, "ELF");

    // Both new names of a new file are written as one file and a hardlink to it.
    let committed = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(0)))?;
    let top = committed.layers().last().unwrap();
    assert_eq!(
        top.changeset()?.entry("srv/data.bak")?.unwrap().kind(),
        &EntryKind::Hardlink(ImagePath::new("srv/data")?)
    );
    let imported = c
        .image()
        .tree()?
        .apply(&Layer::from_tar(top.tar()?.clone())?)?;
    let (a, b) = (
        imported.lookup("srv/data")?.unwrap(),
        imported.lookup("srv/data.bak")?.unwrap(),
    );
    assert!(a.same_file(&b));
    assert_eq!(imported, *c.tree());

    // A new name of an unchanged lower file is written as a hardlink to the lower path (R7),
    // so the committed image keeps the two names one file; so are names of a lower symlink.
    assert_eq!(
        top.changeset()?.entry("etc/passwd-")?.unwrap().kind(),
        &EntryKind::Hardlink(ImagePath::new("etc/passwd")?)
    );
    assert_eq!(
        top.changeset()?.entry("lib64")?.unwrap().kind(),
        &EntryKind::Hardlink(ImagePath::new("lib")?)
    );
    assert!(
        top.changeset()?.entry("etc/passwd")?.is_none(),
        "the lower file is not copied"
    );
    let tree = committed.tree()?;
    let (a, b) = (
        tree.lookup("etc/passwd")?.unwrap(),
        tree.lookup("etc/passwd-")?.unwrap(),
    );
    assert!(a.same_file(&b));
    Ok(())
}

#[test]
fn renaming_two_names_of_one_file_does_nothing() -> Result {
    let mut c = Container::new(&base()?)?;
    c.rename("bin/tool", "bin/tool-alias")?;
    assert!(c.exists("bin/tool"), "rename(2) leaves hardlinks alone");
    assert!(c.exists("bin/tool-alias"));
    assert!(c.diff()?.is_empty());
    Ok(())
}

#[test]
fn rename_moves_a_whole_directory() -> Result {
    let image = Image::builder()
        .layer(
            Layer::builder()
                .entry("srv/app/bin/run", Entry::file("#!/bin/sh\n").mode(0o755))
                .file("srv/app/conf", "port=80\n")
                .dir("srv/www")
                .build()?,
        )
        .layer(Layer::builder().file("srv/app/VERSION", "2\n").build()?)
        .build()?;
    let lower = image.tree()?;
    let mut c = Container::new(&image)?;
    c.create_dir("opt")?;
    c.rename("srv/app", "opt/app")?;

    assert!(!c.exists("srv/app"));
    assert!(matches!(
        c.read("srv/app/conf"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(c.read("opt/app/conf")?, "port=80\n");
    assert_eq!(c.read("opt/app/VERSION")?, "2\n");
    let run = c.metadata("opt/app/bin/run")?;
    assert_eq!(run.metadata().mode, 0o755);
    // Nothing copied, but everything moved is now supplied by the container's layer (2).
    assert!(run.same_file(&lower.lookup("srv/app/bin/run")?.unwrap()));
    for path in [
        "opt",
        "opt/app",
        "opt/app/bin",
        "opt/app/bin/run",
        "opt/app/VERSION",
    ] {
        assert_eq!(c.symlink_metadata(path)?.layer(), Some(2), "{path}");
    }
    assert_eq!(c.symlink_metadata("srv/www")?.layer(), Some(0));
    assert_eq!(
        lines(&c),
        [
            "A /opt",
            "A /opt/app",
            "A /opt/app/VERSION",
            "A /opt/app/bin",
            "A /opt/app/bin/run",
            "A /opt/app/conf",
            "C /srv",
            "D /srv/app",
        ]
    );

    // rename(2) rules for what is in the way.
    assert!(matches!(
        c.rename("opt/app", "opt/app/bin/app"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        c.rename("opt", "srv"),
        Err(Error::DirectoryNotEmpty { .. })
    ));
    assert!(matches!(
        c.rename("opt/app", "opt/app/conf"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        c.rename("opt/app/bin", "opt/app/conf"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.rename("opt/app/conf", "opt/app/bin"),
        Err(Error::IsADirectory { .. })
    ));
    c.rename("opt/app", "srv/www")?;
    assert_eq!(c.read("srv/www/conf")?, "port=80\n");
    c.rename("srv/www/conf", "srv/www/VERSION")?;
    assert_eq!(c.read("srv/www/VERSION")?, "port=80\n");
    assert!(!c.exists("srv/www/conf"));
    Ok(())
}

#[test]
fn errors_by_variant() -> Result {
    let mut c = Container::new(&base()?)?;
    c.symlink("loop", "loop")?;

    // NotFound: the path, or a parent, is missing.
    assert!(matches!(c.read("nope"), Err(Error::NotFound { .. })));
    assert!(matches!(c.remove_file("nope"), Err(Error::NotFound { .. })));
    assert!(matches!(c.remove_dir("nope"), Err(Error::NotFound { .. })));
    assert!(matches!(
        c.write("no/such/file", "x"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.create_dir("no/such"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(c.rename("nope", "x"), Err(Error::NotFound { .. })));
    assert!(matches!(
        c.hard_link("nope", "x"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.set_permissions("nope", 0o644),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.set_owner("dangling", 0, 0),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        c.metadata("dangling"),
        Err(Error::NotFound { .. })
    ));
    assert!(c.symlink_metadata("dangling").is_ok());

    // AlreadyExists: the name is taken, even by a dangling symlink.
    assert!(matches!(
        c.create_dir("etc"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.create_dir("dangling"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.symlink("x", "etc/hosts"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.hard_link("etc/hosts", "etc/passwd"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        c.create_dir_all("dangling/sub"),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(
        !c.exists("var/lib/state"),
        "mkdir -p does not create through a dangling link"
    );

    // IsADirectory: a file operation on a directory.
    assert!(matches!(
        c.write("etc", "x"),
        Err(Error::IsADirectory { .. })
    ));
    assert!(matches!(c.read("abs-etc"), Err(Error::IsADirectory { .. })));
    assert!(matches!(
        c.remove_file("etc"),
        Err(Error::IsADirectory { .. })
    ));
    assert!(matches!(
        c.hard_link("etc", "etc2"),
        Err(Error::IsADirectory { .. })
    ));
    assert!(matches!(c.write("/", "x"), Err(Error::IsADirectory { .. })));

    // NotADirectory: a file used as a directory.
    assert!(matches!(
        c.read("etc/hosts/x"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.remove_dir("etc/hosts"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.remove_dir("lib"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.create_dir_all("etc/hosts/d"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.write("etc/hosts/x", "x"),
        Err(Error::NotADirectory { .. })
    ));
    assert!(matches!(
        c.read_dir("etc/hosts"),
        Err(Error::NotADirectory { .. })
    ));

    // DirectoryNotEmpty.
    assert!(matches!(
        c.remove_dir("etc"),
        Err(Error::DirectoryNotEmpty { .. })
    ));
    assert!(matches!(
        c.remove_dir("/"),
        Err(Error::DirectoryNotEmpty { .. })
    ));

    // RootDirectory: the root cannot go or move.
    assert!(matches!(
        c.remove_dir_all("/"),
        Err(Error::RootDirectory { .. })
    ));
    assert!(matches!(
        c.remove_dir_all("."),
        Err(Error::RootDirectory { .. })
    ));
    assert!(matches!(
        c.rename("/", "new"),
        Err(Error::RootDirectory { .. })
    ));
    assert!(matches!(
        c.rename("tmp", "/"),
        Err(Error::RootDirectory { .. })
    ));
    let mut empty = Container::new(&Image::builder().build()?)?;
    assert!(matches!(
        empty.remove_dir("/"),
        Err(Error::RootDirectory { .. })
    ));

    // SymlinkLoop: more than 40 hops.
    assert!(matches!(c.read("loop"), Err(Error::SymlinkLoop { .. })));
    assert!(matches!(
        c.write("loop", "x"),
        Err(Error::SymlinkLoop { .. })
    ));

    // InvalidPath: `..` components, devices as files.
    assert!(matches!(
        c.write("etc/../x", "x"),
        Err(Error::InvalidPath { .. })
    ));
    // InvalidMode: modes with type bits.
    assert!(matches!(
        c.set_permissions("etc/hosts", 0o100644),
        Err(Error::InvalidMode { mode: 0o100644, .. })
    ));
    let mut fifo = Container::new(
        &Image::builder()
            .layer(Layer::builder().fifo("run/pipe").build()?)
            .build()?,
    )?;
    assert!(matches!(
        fifo.write("run/pipe", "x"),
        Err(Error::InvalidPath { .. })
    ));
    assert!(matches!(
        fifo.read("run/pipe"),
        Err(Error::InvalidPath { .. })
    ));

    // Failures change nothing.
    assert_eq!(lines(&c), ["A /loop"]);
    assert!(fifo.diff()?.is_empty());

    // They convert to io::Error with the matching kind.
    let err = std::io::Error::from(c.read("nope").unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let err = std::io::Error::from(c.create_dir("etc").unwrap_err());
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    Ok(())
}

#[test]
fn symlinks_resolve_inside_the_root() -> Result {
    let mut c = Container::new(&base()?)?;
    // Absolute targets start at the image root, not the host's.
    assert_eq!(c.read("abs-etc/hosts")?, "127.0.0.1 localhost\n");
    // `..` at the root stays at the root.
    assert_eq!(c.read("escape")?, "127.0.0.1 localhost\n");
    assert_eq!(c.read("/lib/libc.so")?, "ELF");
    // `..` in a target is taken from where the link really is, as the kernel does.
    c.symlink("../../etc", "usr/lib/etc-link")?;
    assert_eq!(c.read("lib/etc-link/hosts")?, "127.0.0.1 localhost\n");
    // Paths given to the container never hold `..`.
    assert!(matches!(
        c.read("lib/../etc/hosts"),
        Err(Error::InvalidPath { .. })
    ));

    // Writing through a symlink writes the target; the symlink stays a symlink.
    c.write("abs-etc/motd", "hi\n")?;
    assert_eq!(c.tree().read("etc/motd")?, "hi\n");
    assert!(
        c.tree().lookup("abs-etc/motd")?.is_none(),
        "lookup does not follow"
    );
    c.write("escape", "10.0.0.1 box\n")?;
    assert_eq!(c.read("etc/hosts")?, "10.0.0.1 box\n");
    assert_eq!(c.symlink_metadata("escape")?.file_type(), FileType::Symlink);
    // A dangling symlink is created through, as open(O_CREAT) does.
    c.write("dangling", "state")?;
    assert_eq!(c.read("var/lib/state")?, "state");
    // Metadata changes follow too.
    c.set_permissions("lib/libc.so", 0o755)?;
    assert_eq!(c.metadata("usr/lib/libc.so")?.metadata().mode, 0o755);
    c.set_permissions("lib", 0o700)?;
    assert_eq!(c.metadata("usr/lib")?.metadata().mode, 0o700);
    assert_eq!(c.symlink_metadata("lib")?.metadata().mode, 0o777);

    // Removing a symlink removes the link, not the target.
    c.remove_file("abs-etc")?;
    assert!(c.exists("etc/motd"));
    assert_eq!(
        lines(&c),
        [
            "D /abs-etc",
            "C /etc",
            "C /etc/hosts",
            "A /etc/motd",
            "C /usr",
            "C /usr/lib",
            "A /usr/lib/etc-link",
            "C /usr/lib/libc.so",
            "C /var",
            "C /var/lib",
            "A /var/lib/state",
        ]
    );
    Ok(())
}

#[test]
fn docker_diff_lines() -> Result {
    let image = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/hosts", "127.0.0.1 localhost\n")
                .file("tmp/x", "")
                .file("var/log/old/1.log", "")
                .build()?,
        )
        .build()?;
    let mut c = Container::new(&image)?;
    assert!(c.diff()?.is_empty());
    c.write("x", "new")?;
    c.set_permissions("etc/hosts", 0o600)?;
    c.remove_file("tmp/x")?;
    c.remove_dir_all("var/log/old")?;
    c.create_dir_all("srv/a")?;
    assert_eq!(
        lines(&c),
        [
            "C /etc",
            "C /etc/hosts",
            "A /srv",
            "A /srv/a",
            "C /tmp",
            "D /tmp/x",
            "C /var",
            "C /var/log",
            "D /var/log/old",
            "A /x",
        ]
    );
    // Undoing a change by hand leaves no change behind.
    c.set_permissions("etc/hosts", 0o644)?;
    c.remove_file("x")?;
    c.remove_dir_all("srv")?;
    assert_eq!(
        lines(&c),
        [
            "C /tmp",
            "D /tmp/x",
            "C /var",
            "C /var/log",
            "D /var/log/old"
        ]
    );
    // The image-to-image diff of the commit says the same.
    let committed = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(0)))?;
    let by_image: Vec<String> = image
        .diff(&committed)?
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(by_image, lines(&c));
    Ok(())
}

#[test]
fn commit_records_author_message_time_and_config() -> Result {
    let base = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/os-release", "ID=demo\n")
                .build()?,
        )
        .env("PATH=/usr/bin:/bin")
        .label("org.example.base", "1")
        .cmd(["/bin/sh"])
        .commit(layercake::Commit::new().created(1_000))
        .build()?;
    let mut c = Container::new(&base)?;
    c.set_clock(1_700_000_000);
    c.write("app", "#!/bin/sh\n")?;

    // Without a config, the image's config is kept.
    let kept =
        c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(1_700_000_000)))?;
    assert_eq!(
        kept.config().container_config(),
        base.config().container_config()
    );

    let mut config = ContainerConfig::default();
    config.cmd = Some(vec!["/app".into()]);
    config.working_dir = Some("/".into());
    let committed = c.commit(
        &CommitOptions::new()
            .commit(
                layercake::Commit::new()
                    .author("Jane Doe <jane@example.com>")
                    .message("add the app"),
            )
            .created_by("/bin/sh -c install app")
            .commit(
                layercake::Commit::new()
                    .created(1_700_000_000)
                    .config(config.clone()),
            ),
    )?;
    assert_eq!(committed.layers().count(), 2);
    assert_eq!(committed.diff_ids()[0], base.diff_ids()[0]);
    assert_eq!(committed.chain_ids()[0], base.chain_ids()[0]);

    let inspect = committed.inspect();
    assert_eq!(inspect.id, committed.id());
    assert_eq!(inspect.author, "Jane Doe <jane@example.com>");
    assert_eq!(inspect.comment, "add the app");
    assert_eq!(inspect.created, "2023-11-14T22:13:20Z");
    assert_eq!(inspect.created, rfc3339(1_700_000_000));
    assert_eq!(inspect.config, config, "the config is replaced, not merged");
    assert!(inspect.config.env.is_empty());
    assert_eq!(inspect.root_fs.layers, committed.diff_ids());

    let history = committed.history();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, Some(committed.id()));
    assert_eq!(history[0].comment, "add the app");
    assert_eq!(history[0].created_by, "/bin/sh -c install app");
    assert_eq!(history[0].created, "2023-11-14T22:13:20Z");
    assert_eq!(history[0].size, Some(10));
    assert_eq!(history[1].id, None);
    assert_eq!(history[1].created, rfc3339(1_000));
    let steps = &committed.config().file().history;
    assert_eq!(
        steps.last().unwrap().author.as_deref(),
        Some("Jane Doe <jane@example.com>")
    );
    assert_eq!(
        committed.config().file().comment.as_deref(),
        Some("add the app")
    );

    // The new file carries the container's clock.
    let tree = committed.tree()?;
    assert_eq!(tree.lookup("app")?.unwrap().metadata().mtime, 1_700_000_000);
    assert_eq!(tree, *c.tree());
    Ok(())
}

#[test]
fn recreated_directory_whiteouts() -> Result {
    let image = Image::builder()
        .layer(
            Layer::builder()
                .file("etc/a", "1")
                .file("etc/b", "2")
                .file("keep/x", "3")
                .build()?,
        )
        .build()?;
    let mut c = Container::new(&image)?;
    c.set_clock(7);
    c.remove_dir_all("etc")?;
    c.create_dir("etc")?;
    c.write("etc/c", "new")?;
    c.remove_file("keep/x")?;
    c.write("keep/y", "other")?;

    let explicit = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(0)))?;
    let layer = explicit.layers().last().unwrap();
    let whiteouts: Vec<String> = layer
        .changeset()?
        .whiteouts()
        .map(ToString::to_string)
        .collect();
    assert_eq!(whiteouts, ["etc/a", "etc/b", "keep/x"]);
    assert_eq!(layer.changeset()?.opaque_dirs().count(), 0);
    assert!(contains(&layer.tar()?.to_bytes()?, b"etc/.wh.a"));
    assert!(!contains(&layer.tar()?.to_bytes()?, b".wh..wh..opq"));

    let opaque = c.commit(
        &CommitOptions::new()
            .commit(layercake::Commit::new().created(0))
            .whiteouts(WhiteoutStyle::Opaque),
    )?;
    let layer = opaque.layers().last().unwrap();
    let dirs: Vec<String> = layer
        .changeset()?
        .opaque_dirs()
        .map(ToString::to_string)
        .collect();
    // `keep` lost x and kept nothing of its lower contents either: both are recreated.
    assert_eq!(dirs, ["etc", "keep"]);
    assert_eq!(layer.changeset()?.whiteouts().count(), 0);
    assert!(contains(&layer.tar()?.to_bytes()?, b"etc/.wh..wh..opq"));
    assert!(!contains(&layer.tar()?.to_bytes()?, b".wh.a"));

    // Both say the same thing.
    let lower = image.tree()?;
    for image in [&explicit, &opaque] {
        let layer = Layer::from_tar(image.layers().last().unwrap().tar()?.clone())?;
        assert_eq!(lower.apply(&layer)?, *c.tree());
    }
    assert_ne!(explicit.id(), opaque.id());

    // A directory that keeps one lower child unchanged is not recreated.
    let mut c = Container::new(&image)?;
    c.remove_file("etc/a")?;
    let partial = c.commit(&CommitOptions::new().whiteouts(WhiteoutStyle::Opaque))?;
    let layer = partial.layers().last().unwrap();
    assert_eq!(layer.changeset()?.opaque_dirs().count(), 0);
    let whiteouts: Vec<String> = layer
        .changeset()?
        .whiteouts()
        .map(ToString::to_string)
        .collect();
    assert_eq!(whiteouts, ["etc/a"]);
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn commit_is_deterministic() -> Result {
    let image = base()?;
    let build = || -> Result<Image> {
        let mut c = Container::new(&image)?;
        c.set_clock(1_700_000_000);
        c.write("etc/motd", "hello\n")?;
        c.create_dir_all("srv/www")?;
        c.symlink("/srv/www", "www")?;
        c.remove_file("tmp/x")?;
        c.set_xattr("etc/hosts", "user.origin", "test")?;
        c.commit(
            &CommitOptions::new()
                .commit(layercake::Commit::new().message("m").created(1_700_000_000)),
        )
    };
    let (a, b) = (build()?, build()?);
    assert_eq!(a.id(), b.id());
    assert_eq!(a.diff_ids(), b.diff_ids());
    assert_eq!(a.config().as_bytes(), b.config().as_bytes());
    assert_eq!(
        a.layers().last().unwrap().tar()?,
        b.layers().last().unwrap().tar()?
    );

    // The same container committed at two times: same layer, different image.
    let mut c = Container::new(&image)?;
    c.set_clock(5);
    c.write("f", "x")?;
    let early = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(5)))?;
    let late = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(6)))?;
    assert_ne!(early.id(), late.id());
    assert_eq!(early.diff_ids(), late.diff_ids());
    // A different clock changes the file's mtime, so the layer.
    c.set_clock(6);
    c.write("f", "x")?;
    let touched = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(5)))?;
    assert_ne!(touched.diff_ids(), early.diff_ids());
    Ok(())
}

#[test]
fn container_new_on_an_image_reads_as_the_image() -> Result {
    let image = base()?;
    let c = Container::new(&image)?;
    assert_eq!(*c.tree(), image.tree()?);
    assert!(c.diff()?.is_empty());
    let names: Vec<String> = c.read_dir("/")?.map(|(name, _)| name).collect();
    assert_eq!(
        names,
        ["abs-etc", "bin", "dangling", "escape", "etc", "lib", "tmp", "usr", "var"]
    );
    let names: Vec<String> = c.read_dir("lib")?.map(|(name, _)| name).collect();
    assert_eq!(names, ["libc.so"]);
    // An empty commit is a layer with no changes.
    let committed = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(0)))?;
    let top = committed.layers().last().unwrap();
    assert_eq!(top.changeset()?.entries().count(), 0);
    assert_eq!(top.changeset()?.whiteouts().count(), 0);
    assert_eq!(
        committed.tree()?,
        Tree::new().apply(image.layers().next().unwrap())?
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A container on an image read from an image file: contents stay on disk until written

/// `image` written as a docker-archive to a temporary file and read back from it: its
/// layers are read in place from the file.
fn through_image_file(image: &Image, file: &TempFile) -> Result<Image> {
    Writer::new(Format::DockerArchive)
        .image(image, ["app:1"])
        .write(std::fs::File::create(file.path()).unwrap())?;
    let read = Archive::open(file.path())?.image("app:1")?;
    assert_eq!(read.id(), image.id());
    Ok(read)
}

/// Whether a regular file's contents are in memory (`true`) or on disk (`false`).
fn in_memory(node: &layercake::Node) -> bool {
    node.contents()
        .expect("a regular file")
        .as_bytes()
        .is_some()
}

#[test]
fn a_container_on_an_image_file_keeps_contents_on_disk_until_written() -> Result {
    let file = TempFile::new("base.tar");
    let image = through_image_file(&base()?, &file)?;
    let lower = image.tree()?;
    assert!(!in_memory(&lower.lookup("bin/tool")?.unwrap()));
    assert!(!in_memory(&lower.lookup("usr/lib/libc.so")?.unwrap()));

    let mut c = Container::new(&image)?;
    c.set_clock(1_000);
    // Copy-up of metadata: the bytes are not read, the new node points at the same range.
    c.set_permissions("bin/tool", 0o700)?;
    c.set_xattr("bin/tool", "user.k", "v")?;
    let tool = c.symlink_metadata("bin/tool")?;
    assert_eq!(tool.metadata().mode, 0o700);
    assert!(
        !in_memory(&tool),
        "copy-up of metadata keeps the contents on disk"
    );
    assert!(!tool.same_file(&lower.lookup("bin/tool")?.unwrap()));
    assert_eq!(c.read("bin/tool")?, vec![0x7f; 4096]);
    // The other name of the lower file keeps the lower node.
    assert!(c
        .symlink_metadata("bin/tool-alias")?
        .same_file(&lower.lookup("bin/tool-alias")?.unwrap()));

    // A write replaces the contents with bytes in memory.
    c.write("etc/hosts", "10.0.0.1 db\n")?;
    let hosts = c.symlink_metadata("etc/hosts")?;
    assert!(in_memory(&hosts));
    assert_eq!(hosts.contents().unwrap(), "10.0.0.1 db\n");
    assert_eq!(hosts.metadata().mtime, 1_000);

    // A rename moves the node: its contents stay on disk.
    c.rename("usr/lib/libc.so", "usr/lib/libc.so.6")?;
    let libc = c.symlink_metadata("usr/lib/libc.so.6")?;
    assert!(!in_memory(&libc), "rename keeps the contents on disk");
    assert_eq!(c.read("lib/libc.so.6")?, "ELF");
    assert!(!c.exists("usr/lib/libc.so"));

    assert_eq!(
        lines(&c),
        [
            "C /bin",
            "C /bin/tool",
            "C /etc",
            "C /etc/hosts",
            "C /usr",
            "C /usr/lib",
            "D /usr/lib/libc.so",
            "A /usr/lib/libc.so.6",
        ]
    );

    // The commit writes the bytes of the files on disk into the new layer's tar.
    let committed =
        c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(2_000)))?;
    let top = committed.layers().last().unwrap();
    let changes = top.changeset()?;
    assert_eq!(
        changes.entry("bin/tool")?.unwrap().contents().unwrap(),
        &vec![0x7f; 4096]
    );
    assert_eq!(
        changes
            .entry("usr/lib/libc.so.6")?
            .unwrap()
            .contents()
            .unwrap(),
        "ELF"
    );
    let whiteouts: Vec<String> = changes.whiteouts().map(ToString::to_string).collect();
    assert_eq!(whiteouts, ["usr/lib/libc.so"]);
    let tar = top.tar()?.to_bytes()?;
    assert!(
        contains(&tar, &[0x7f; 4096]),
        "bin/tool's bytes are in the tar"
    );
    assert!(contains(&tar, b"10.0.0.1 db\n"));
    // Read back as a tar, the layer is the same.
    let again = Layer::from_tar(tar)?;
    assert_eq!(again.diff_id(), top.diff_id());
    assert_eq!(lower.apply(&again)?, *c.tree());
    assert_eq!(committed.tree()?, *c.tree());

    // The committed image through an image file of its own: the same tree, now all on disk.
    let out = TempFile::new("committed.tar");
    let reread = through_image_file(&committed, &out)?;
    assert_eq!(reread.diff_ids(), committed.diff_ids());
    let tree = reread.tree()?;
    assert_eq!(tree, *c.tree());
    assert_eq!(tree.dump().to_string(), c.tree().dump().to_string());
    for path in ["bin/tool", "etc/hosts", "usr/lib/libc.so.6"] {
        let node = tree.lookup(path)?.unwrap();
        assert!(!in_memory(&node), "{path}");
        assert_eq!(tree.read(path)?, c.read(path)?, "{path}");
    }
    Ok(())
}

#[test]
fn container_write_takes_contents_from_another_tree() -> Result {
    let file = TempFile::new("other.tar");
    let other = Image::builder()
        .layer(
            Layer::builder()
                .file("opt/big", vec![0x5a; 300_000])
                .file("opt/small", "s")
                .build()?,
        )
        .build()?;
    let other = through_image_file(&other, &file)?;
    let other_tree = other.tree()?;
    let big = other_tree
        .lookup("opt/big")?
        .unwrap()
        .contents()
        .unwrap()
        .clone();
    assert!(
        big.as_bytes().is_none(),
        "the other image's file is on disk"
    );

    let mut c = Container::new(&base()?)?;
    c.set_clock(3);
    c.write("srv/big", big.clone()).unwrap_err();
    c.create_dir("srv")?;
    c.write("srv/big", big.clone())?;
    let node = c.symlink_metadata("srv/big")?;
    assert!(!in_memory(&node), "written as it is: no copy into memory");
    assert_eq!(node.contents().unwrap(), &big);
    assert_eq!(node.metadata().mtime, 3);
    assert_eq!(c.read("srv/big")?, vec![0x5a; 300_000]);
    // Replacing a lower file with contents from elsewhere.
    let small = other_tree
        .lookup("opt/small")?
        .unwrap()
        .contents()
        .unwrap()
        .clone();
    c.write("etc/passwd", small)?;
    assert_eq!(c.read("etc/passwd")?, "s");
    assert_eq!(
        lines(&c),
        ["C /etc", "C /etc/passwd", "A /srv", "A /srv/big"]
    );

    let committed = c.commit(&CommitOptions::new().commit(layercake::Commit::new().created(0)))?;
    let top = committed.layers().last().unwrap();
    assert_eq!(
        top.changeset()?
            .entry("srv/big")?
            .unwrap()
            .contents()
            .unwrap(),
        &vec![0x5a; 300_000]
    );
    assert_eq!(committed.tree()?, *c.tree());
    let reread = Layer::from_tar(top.tar()?.to_bytes()?)?;
    assert_eq!(reread.diff_id(), top.diff_id());
    assert_eq!(base()?.tree()?.apply(&reread)?, *c.tree());
    Ok(())
}
