//! `layercake demo`: the life of a Docker image, told with the library on data it carries.

use std::error::Error;
use std::io::Write;

use layercake::config::History;
use layercake::{CommitOptions, Container, Entry, Image, Layer, LayerStatus, Store, Tree};

/// A fixed clock, so the demo prints the same digests on every run and every machine.
const T0: i64 = 1_700_000_000;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

pub fn run(out: &mut impl Write) -> Result<()> {
    let mut store = Store::new();

    heading(out, "1. A base image of three files")?;
    let base_layer = Layer::builder()
        .entry(
            "etc/os-release",
            Entry::file("NAME=\"Cake Linux\"\nID=cake\n").mtime(T0),
        )
        .entry(
            "etc/motd",
            Entry::file("Welcome to Cake Linux.\n").mtime(T0),
        )
        .entry(
            "usr/bin/hello",
            Entry::file("#!/bin/sh\necho \"hello from $(cat /etc/os-release | head -1)\"\n")
                .mode(0o755)
                .mtime(T0),
        )
        .symlink("usr/bin", "bin")
        .build()?;
    let base = Image::builder()
        .layer_with(
            base_layer,
            History::new("ADD rootfs /")
                .created(layercake::config::Timestamp::from_unix(1_700_000_000)),
        )
        .cmd(["/bin/hello"])
        .commit(layercake::Commit::new().created(T0))
        .build()?;
    report_add(out, &mut store, &base, "cake/base:1")?;
    listing(out, &base.tree()?)?;

    heading(out, "2. A second image on the same base, overriding a file")?;
    let app_layer = Layer::builder()
        .entry(
            "etc/motd",
            Entry::file("Welcome to the cake shop app.\n").mtime(T0 + 60),
        )
        .entry(
            "srv/app/menu.txt",
            Entry::file("sponge\nganache\nmille-feuille\n").mtime(T0 + 60),
        )
        .build()?;
    let app = Image::builder()
        .base(&base)
        .layer_with(app_layer, History::new("COPY menu.txt motd /"))
        .env("SHOP=open")
        .commit(layercake::Commit::new().created(T0 + 60))
        .build()?;
    let app = report_add(out, &mut store, &app, "cake/app:1")?;
    writeln!(out, "store: {}", store.usage()?)?;
    let tree = app.tree()?;
    let motd = tree.lookup("etc/motd")?.ok_or("etc/motd is missing")?;
    writeln!(
        out,
        "merged view: /etc/motd comes from layer {} and reads {:?}",
        motd.layer().unwrap_or(0),
        String::from_utf8_lossy(&tree.read("etc/motd")?)
    )?;
    let lower = base.tree()?.read("etc/motd")?;
    writeln!(
        out,
        "             the base layer's version, {:?}, is hidden, not gone",
        String::from_utf8_lossy(&lower)
    )?;
    let (resolved, _) = tree.resolve("/bin/hello")?;
    writeln!(
        out,
        "             /bin/hello resolves through the symlink to /{resolved}"
    )?;
    listing(out, &tree)?;

    heading(
        out,
        "3. A container on cake/app:1 changes, deletes and adds files",
    )?;
    let mut container = Container::new(&app)?;
    container.set_clock(T0 + 120);
    let mut menu = container.read("srv/app/menu.txt")?.to_vec();
    menu.extend_from_slice(b"opera\n");
    container.write("srv/app/menu.txt", menu)?;
    writeln!(out, "$ echo opera >> /srv/app/menu.txt")?;
    container.remove_file("etc/motd")?;
    writeln!(out, "$ rm /etc/motd")?;
    container.create_dir_all("var/log/shop")?;
    container.write("var/log/shop/orders.log", "1 x opera\n")?;
    writeln!(
        out,
        "$ mkdir -p /var/log/shop && echo '1 x opera' > /var/log/shop/orders.log"
    )?;
    container.set_permissions("usr/bin/hello", 0o700)?;
    writeln!(
        out,
        "$ chmod 700 /usr/bin/hello   (copy-up of metadata; the bytes stay shared)"
    )?;
    writeln!(out, "\n$ docker diff")?;
    for change in container.diff()? {
        writeln!(out, "{change}")?;
    }
    writeln!(
        out,
        "\n/etc/motd in the container: {}",
        if container.exists("etc/motd") {
            "present"
        } else {
            "deleted (the committed layer will carry a whiteout)"
        }
    )?;

    heading(out, "4. docker commit")?;
    let committed = container.commit(
        &CommitOptions::new()
            .commit(
                layercake::Commit::new()
                    .author("layercake demo")
                    .message("take an order"),
            )
            .commit(layercake::Commit::new().created(T0 + 180)),
    )?;
    let committed = report_add(out, &mut store, &committed, "cake/app:2")?;
    let top = committed.layers().last().ok_or("no layers")?;
    let changes = top.changeset()?;
    writeln!(
        out,
        "new layer: {} entries, whiteouts: {}",
        changes.entries().count(),
        changes
            .whiteouts()
            .map(|w| format!("/{w}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let again = Layer::from_tar(top.tar()?.clone())?;
    writeln!(
        out,
        "read back from its {}-byte tar: DiffId {} ({})",
        top.size()?,
        again.diff_id(),
        if again.diff_id() == top.diff_id() {
            "the same"
        } else {
            "DIFFERENT"
        }
    )?;
    let rebuilt = committed.tree()?;
    writeln!(
        out,
        "the committed image's merged view equals the container's tree: {}",
        rebuilt == *container.tree()
    )?;

    heading(out, "5. docker image inspect cake/app:2")?;
    let inspect = store.inspect("cake/app:2")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&[inspect])?)?;

    heading(out, "6. The layer stack of cake/app:2 (bottom first)")?;
    writeln!(
        out,
        "{:<3} {:<19} {:<19} {:>7} {:>7} {:>9}",
        "#", "DIFF ID", "CHAIN ID", "BYTES", "ENTRIES", "WHITEOUTS"
    )?;
    for (i, (layer, chain)) in committed.layers().zip(committed.chain_ids()).enumerate() {
        writeln!(
            out,
            "{:<3} {:<19} {:<19} {:>7} {:>7} {:>9}",
            i,
            short(&layer.diff_id().to_string()),
            short(&chain.to_string()),
            layer.size()?,
            layer.changeset()?.entries().count(),
            layer.changeset()?.whiteouts().count()
        )?;
    }
    writeln!(out, "\n$ docker history cake/app:2")?;
    for row in committed.history() {
        writeln!(
            out,
            "{:<19} {:<22} {:<30} {:>5}B  {}",
            row.id
                .map_or("<missing>".to_string(), |id| short(&id.to_string())),
            row.created,
            row.created_by,
            row.size.unwrap_or(0),
            row.comment
        )?;
    }
    writeln!(out, "\nstore: {}", store.usage()?)?;
    Ok(())
}

fn heading(out: &mut impl Write, title: &str) -> Result<()> {
    writeln!(out, "\n== {title} ==\n")?;
    Ok(())
}

/// `sha256:` and the first 12 hex digits, as Docker shortens ids.
fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

/// Adds an image to the store, tags it, and prints what `docker load` would.
fn report_add(out: &mut impl Write, store: &mut Store, image: &Image, tag: &str) -> Result<Image> {
    let report = store.add(image)?;
    for (diff_id, status) in &report.layers {
        let what = match status {
            LayerStatus::New => "Loaded layer",
            LayerStatus::AlreadyExists => "Layer already exists",
        };
        writeln!(out, "{}: {what}", short(&diff_id.to_string()))?;
    }
    store.tag(&report.image.id().to_string(), tag)?;
    writeln!(out, "Loaded image: {tag} (ID {})", report.image.id())?;
    Ok(report.image)
}

/// `ls -lR` of a tree, with the layer that supplied each entry.
fn listing(out: &mut impl Write, tree: &Tree) -> Result<()> {
    writeln!(out)?;
    for (path, node) in tree.walk() {
        writeln!(
            out,
            "  {}",
            crate::commands::long_line(&format!("/{path}"), node, None)
        )?;
    }
    Ok(())
}
