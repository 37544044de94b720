//! Layer tars: reading the forms real tools write (DESIGN.md §6, PEERS.md "What the wild
//! looks like"), keeping foreign bytes exactly, writing the canonical form, and refusing
//! broken input with `Error::InvalidTar` instead of panicking.
//!
//! Inputs are assembled header by header in [`Tar`], so each quirk is spelled exactly as the
//! tool that writes it spells it; the `tar` crate's own `Builder` and `Archive` serve as an
//! independent writer and reader where a second opinion is the point.

mod common;

use std::io::{self, Read, Seek};

use common::TempFile;
use layercake::{Entry, EntryKind, Error, FileType, ImagePath, Layer, Metadata, Tree};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------------------
// Hand-assembled tars

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    /// POSIX USTAR (`ustar\0` `00`): Go, Docker, umoci, layercake.
    Ustar,
    /// GNU (`ustar  \0`): GNU tar `--format=gnu`.
    Gnu,
    /// Pre-POSIX (no magic): old `tar`s.
    V7,
}

/// One header's fields. `size` overrides the size field (default: the data length).
#[derive(Clone, Debug)]
struct Rec {
    format: Format,
    typ: u8,
    name: Vec<u8>,
    prefix: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    owner_names: Option<(&'static str, &'static str)>,
    size: Option<u64>,
    data: Vec<u8>,
}

fn rec(typ: u8, name: impl AsRef<[u8]>) -> Rec {
    Rec {
        format: Format::Ustar,
        typ,
        name: name.as_ref().to_vec(),
        prefix: Vec::new(),
        link: Vec::new(),
        mode: match typ {
            b'5' => 0o755,
            b'2' => 0o777,
            _ => 0o644,
        },
        uid: 0,
        gid: 0,
        mtime: 0,
        owner_names: None,
        size: None,
        data: Vec::new(),
    }
}

impl Rec {
    fn format(mut self, format: Format) -> Rec {
        self.format = format;
        self
    }
    fn data(mut self, data: impl AsRef<[u8]>) -> Rec {
        self.data = data.as_ref().to_vec();
        self
    }
    fn link(mut self, link: impl AsRef<[u8]>) -> Rec {
        self.link = link.as_ref().to_vec();
        self
    }
    fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Rec {
        self.prefix = prefix.as_ref().to_vec();
        self
    }
    fn mode(mut self, mode: u32) -> Rec {
        self.mode = mode;
        self
    }
    fn owner(mut self, uid: u64, gid: u64) -> Rec {
        self.uid = uid;
        self.gid = gid;
        self
    }
    fn mtime(mut self, mtime: u64) -> Rec {
        self.mtime = mtime;
        self
    }
    fn names(mut self, user: &'static str, group: &'static str) -> Rec {
        self.owner_names = Some((user, group));
        self
    }
    fn size(mut self, size: u64) -> Rec {
        self.size = Some(size);
        self
    }

    fn header(&self) -> tar::Header {
        let mut h = match self.format {
            Format::Ustar => tar::Header::new_ustar(),
            Format::Gnu => tar::Header::new_gnu(),
            Format::V7 => tar::Header::new_old(),
        };
        let n = self.name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&self.name[..n]);
        let n = self.link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&self.link[..n]);
        if !self.prefix.is_empty() {
            let ustar = h.as_ustar_mut().expect("a prefix needs a USTAR header");
            ustar.prefix[..self.prefix.len()].copy_from_slice(&self.prefix);
        }
        h.set_mode(self.mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_mtime(self.mtime);
        h.set_size(self.size.unwrap_or(self.data.len() as u64));
        if self.format != Format::V7 {
            h.set_device_major(0).unwrap();
            h.set_device_minor(0).unwrap();
            if let Some((user, group)) = self.owner_names {
                h.set_username(user).unwrap();
                h.set_groupname(group).unwrap();
            }
        }
        h.as_old_mut().linkflag = [self.typ];
        h.set_cksum();
        h
    }
}

/// A tar assembled record by record. It remembers where each logical entry ends, so the
/// truncation test knows which cuts leave a readable archive.
#[derive(Default, Clone)]
struct Tar {
    out: Vec<u8>,
    /// Start of every header block (extension headers included).
    headers: Vec<usize>,
    /// `(data end, padded end)` of every logical entry.
    ends: Vec<(usize, usize)>,
    /// `(start, end)` of every PAX data block.
    pax_data: Vec<(usize, usize)>,
}

impl Tar {
    fn new() -> Tar {
        Tar::default()
    }

    fn block(&mut self, header: &tar::Header, data: &[u8]) -> (usize, usize) {
        self.headers.push(self.out.len());
        self.out.extend_from_slice(header.as_bytes());
        let start = self.out.len();
        self.out.extend_from_slice(data);
        let end = self.out.len();
        self.out.resize(end.next_multiple_of(512), 0);
        (start, end)
    }

    /// A logical entry.
    fn add(mut self, r: Rec) -> Tar {
        let (_, end) = self.block(&r.header(), &r.data);
        self.ends.push((end, self.out.len()));
        self
    }

    /// A PAX extended header (`x`) for the next entry.
    fn pax(mut self, records: &[(&str, &[u8])]) -> Tar {
        let mut body = Vec::new();
        for (key, value) in records {
            body.extend_from_slice(&pax_record(key.as_bytes(), value));
        }
        let h = rec(b'x', "PaxHeaders.0/entry").data(&body).header();
        let span = self.block(&h, &body);
        self.pax_data.push(span);
        self
    }

    /// A PAX extended header whose body is given raw.
    fn pax_raw(mut self, body: &[u8]) -> Tar {
        let h = rec(b'x', "PaxHeaders.0/entry").data(body).header();
        let span = self.block(&h, body);
        self.pax_data.push(span);
        self
    }

    /// A PAX global header (`g`), as `git archive` writes first.
    fn pax_global(mut self, records: &[(&str, &[u8])]) -> Tar {
        let mut body = Vec::new();
        for (key, value) in records {
            body.extend_from_slice(&pax_record(key.as_bytes(), value));
        }
        let h = rec(b'g', "pax_global_header").data(&body).header();
        self.block(&h, &body);
        self.ends.push((self.out.len(), self.out.len()));
        self
    }

    /// A GNU `././@LongLink` record: `L` for the next name, `K` for the next link target.
    fn gnu_long(mut self, typ: u8, value: &[u8]) -> Tar {
        let mut data = value.to_vec();
        data.push(0);
        let h = rec(typ, "././@LongLink")
            .format(Format::Gnu)
            .mode(0)
            .data(&data)
            .header();
        self.block(&h, &data);
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.out.clone();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    /// Without the two zero blocks that end an archive (umoci 0.4.7 `insert`).
    fn bytes_without_end(&self) -> Vec<u8> {
        self.out.clone()
    }

    fn layer(&self) -> Layer {
        Layer::from_tar(self.bytes()).expect("a valid layer tar")
    }
}

/// `LEN KEY=VALUE\n`, LEN counting the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    assert_eq!(out.len(), len);
    out
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn dump(layer: &Layer) -> String {
    Tree::new().apply(layer).unwrap().dump().to_string()
}

fn lines(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn contents(layer: &Layer, path: impl layercake::AsImagePath) -> Vec<u8> {
    layer
        .changeset()
        .unwrap()
        .entry(path)
        .unwrap()
        .expect("entry present")
        .contents()
        .expect("a regular file")
        .to_bytes()
        .expect("contents readable")
        .to_vec()
}

/// The layer's uncompressed tar, as bytes.
fn tar_bytes(layer: &Layer) -> Vec<u8> {
    layer.tar().unwrap().to_bytes().unwrap().to_vec()
}

fn assert_invalid_tar<T: std::fmt::Debug>(result: layercake::Result<T>, what: &str) {
    match result {
        Err(Error::InvalidTar { .. }) => {}
        other => panic!("{what}: expected InvalidTar, got {other:?}"),
    }
}

/// A long path: 4 × 30-byte directories and a file name, 142 bytes in all.
fn long_path() -> String {
    let dir = "a-directory-name-of-thirty-byt";
    assert_eq!(dir.len(), 30);
    format!("{dir}/{dir}/{dir}/{dir}/file-name.txt")
}

// ---------------------------------------------------------------------------------------
// Reading the quirks of real tars

#[test]
fn gnu_long_name_records_hand_assembled() {
    let long = long_path();
    assert!(long.len() > 100);
    let t = Tar::new()
        .gnu_long(b'L', long.as_bytes())
        .add(rec(b'0', &long).format(Format::Gnu).data("long"))
        .add(rec(b'0', "short").format(Format::Gnu).data("s"));
    let l = t.layer();
    assert_eq!(contents(&l, &long), b"long");
    assert_eq!(contents(&l, "short"), b"s");
    // The L record names only the entry after it; the 100-byte truncation is not an entry.
    assert_eq!(l.changeset().unwrap().entries().count(), 2);
}

#[test]
fn gnu_long_names_and_link_targets_from_the_tar_crate_builder() {
    let long = long_path();
    let long_target = format!("/{}", long);
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(4);
    builder.append_data(&mut h, &long, &b"data"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    builder.append_link(&mut h, "sym", &long_target).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    builder.append_link(&mut h, "hard", &long).unwrap();
    let bytes = builder.into_inner().unwrap();
    assert!(
        bytes.windows(13).any(|w| w == b"././@LongLink"),
        "the tar crate wrote GNU long-name records"
    );

    let l = Layer::from_tar(bytes).unwrap();
    assert_eq!(contents(&l, &long), b"data");
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("sym")
            .unwrap()
            .unwrap()
            .link_target()
            .unwrap(),
        long_target.as_bytes()
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("hard")
            .unwrap()
            .unwrap()
            .kind(),
        &EntryKind::Hardlink(ImagePath::new(&long).unwrap())
    );
    let tree = Tree::new().apply(&l).unwrap();
    assert!(tree
        .lookup("hard")
        .unwrap()
        .unwrap()
        .same_file(&tree.lookup(&long).unwrap().unwrap()));
    assert_eq!(tree.read("sym").unwrap(), "data");
}

#[test]
fn gnu_long_link_records_hand_assembled() {
    let long = long_path();
    let target = format!("../../{long}");
    let t = Tar::new()
        .gnu_long(b'L', long.as_bytes())
        .add(rec(b'0', &long).format(Format::Gnu).data("x"))
        .gnu_long(b'K', target.as_bytes())
        .add(rec(b'2', "sym").format(Format::Gnu).link(&target))
        .gnu_long(b'K', long.as_bytes())
        .add(rec(b'1', "hard").format(Format::Gnu).link(&long));
    let l = t.layer();
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("sym")
            .unwrap()
            .unwrap()
            .link_target()
            .unwrap(),
        target.as_bytes()
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("hard")
            .unwrap()
            .unwrap()
            .kind(),
        &EntryKind::Hardlink(ImagePath::new(&long).unwrap())
    );
}

#[test]
fn pax_path_and_linkpath_override_the_header_names() {
    let long = long_path();
    let target = format!("/opt/{long}");
    let t = Tar::new()
        .pax(&[("path", long.as_bytes())])
        .add(rec(b'0', "truncated-name-in-header").data("p"))
        .pax(&[("linkpath", target.as_bytes())])
        .add(rec(b'2', "sym").link("truncated-target"))
        .pax(&[("path", b"hard"), ("linkpath", long.as_bytes())])
        .add(rec(b'1', "ignored").link("ignored"));
    let l = t.layer();
    let names: Vec<String> = l
        .changeset()
        .unwrap()
        .entries()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(names, [long.clone(), "hard".into(), "sym".into()]);
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("sym")
            .unwrap()
            .unwrap()
            .link_target()
            .unwrap(),
        target.as_bytes()
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("hard")
            .unwrap()
            .unwrap()
            .kind(),
        &EntryKind::Hardlink(ImagePath::new(&long).unwrap())
    );
}

#[test]
fn gnu_long_names_win_over_pax_names() {
    // Go's reader applies PAX records first and GNU long names after them.
    let t = Tar::new()
        .pax(&[("path", b"pax-name"), ("linkpath", b"pax-target")])
        .gnu_long(b'L', b"gnu-name")
        .gnu_long(b'K', b"gnu-target")
        .add(
            rec(b'2', "header-name")
                .format(Format::Gnu)
                .link("header-target"),
        )
        .pax(&[("linkpath", b"pax-target")])
        .gnu_long(b'L', b"second")
        .add(
            rec(b'2', "header-name-2")
                .format(Format::Gnu)
                .link("header-target"),
        );
    let l = t.layer();
    let links: Vec<(String, String)> = l
        .changeset()
        .unwrap()
        .entries()
        .map(|(p, e)| {
            let target = String::from_utf8(e.link_target().unwrap().to_vec()).unwrap();
            (p.to_string(), target)
        })
        .collect();
    assert_eq!(
        links,
        [
            ("gnu-name".to_string(), "gnu-target".to_string()),
            ("second".into(), "pax-target".into()),
        ]
    );
}

#[test]
fn pax_records_apply_to_the_next_entry_only() {
    let t = Tar::new()
        .pax(&[("path", b"renamed"), ("uid", b"5000000")])
        .add(rec(b'0', "orig").owner(1, 1))
        .add(rec(b'0', "plain").owner(2, 2));
    let l = t.layer();
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("renamed")
            .unwrap()
            .unwrap()
            .metadata()
            .uid,
        5_000_000
    );
    assert!(l.changeset().unwrap().entry("orig").unwrap().is_none());
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("plain")
            .unwrap()
            .unwrap()
            .metadata()
            .uid,
        2
    );
}

#[test]
fn pax_schily_xattrs() {
    let cap = b"\x01\x00\x00\x02\x0a\x00\x00\x00\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let t = Tar::new()
        .pax(&[
            ("SCHILY.xattr.security.capability", &cap[..]),
            (
                "SCHILY.xattr.security.selinux",
                b"system_u:object_r:bin_t:s0\0",
            ),
            ("SCHILY.xattr.user.multi line", b"one\ntwo\n"),
            ("SCHILY.xattr.user.empty", b""),
            ("mtime", b"1700000000.999"),
        ])
        .add(rec(b'0', "usr/bin/ping").mode(0o755).data("ELF"))
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .add(rec(b'5', "etc/"));
    let l = t.layer();
    let m = l
        .changeset()
        .unwrap()
        .entry("usr/bin/ping")
        .unwrap()
        .unwrap()
        .metadata();
    let got: Vec<(&[u8], &[u8])> = m.xattrs.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    assert_eq!(
        got,
        [
            (&b"security.capability"[..], &cap[..]),
            (b"security.selinux", b"system_u:object_r:bin_t:s0\0"),
            (b"user.empty", b""),
            (b"user.multi line", b"one\ntwo\n"),
        ]
    );
    assert_eq!(m.mtime, 1_700_000_000);
    assert_eq!(contents(&l, "usr/bin/ping"), b"ELF");
    let etc = l
        .changeset()
        .unwrap()
        .entry("etc")
        .unwrap()
        .unwrap()
        .metadata();
    assert_eq!(etc.xattrs.len(), 1);
    assert_eq!(etc.xattrs[&b"trusted.overlay.opaque"[..]], "y");
}

#[test]
fn pax_uid_gid_mtime_size_override_the_header() {
    let t = Tar::new()
        .pax(&[
            ("uid", b"3000000000"),
            ("gid", b"4000000000"),
            ("mtime", b"1700000000.123456789"),
            ("size", b"5"),
            ("atime", b"1.5"),
            ("uname", b"someone"),
        ])
        // The header's own size field says 0: the PAX size (5) is what counts, and the next
        // header is found after 5 bytes of data.
        .add(rec(b'0', "big").owner(1, 2).mtime(3).size(0).data("hello"))
        .pax(&[("mtime", b"-86400.5")])
        .add(rec(b'0', "old").mtime(7).data("o"))
        .add(rec(b'0', "after").data("a"));
    let l = t.layer();
    let m = l
        .changeset()
        .unwrap()
        .entry("big")
        .unwrap()
        .unwrap()
        .metadata();
    assert_eq!(
        (m.uid, m.gid, m.mtime),
        (3_000_000_000, 4_000_000_000, 1_700_000_000)
    );
    assert_eq!(contents(&l, "big"), b"hello");
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("old")
            .unwrap()
            .unwrap()
            .metadata()
            .mtime,
        -86400
    );
    assert_eq!(contents(&l, "after"), b"a");
}

#[test]
fn pax_values_containing_newlines_do_not_hide_later_records() {
    // The tar crate's own PAX iterator splits at newlines; every record must still count.
    let t = Tar::new()
        .pax(&[
            ("SCHILY.xattr.user.a", b"x\ny"),
            ("path", b"real-name"),
            ("uid", b"3000000"),
            ("mtime", b"42"),
        ])
        .add(rec(b'0', "header-name").data("d"));
    let l = t.layer();
    let e = l
        .changeset()
        .unwrap()
        .entry("real-name")
        .unwrap()
        .expect("the PAX path applies");
    assert_eq!(e.metadata().uid, 3_000_000);
    assert_eq!(e.metadata().mtime, 42);
    assert_eq!(e.metadata().xattrs[&b"user.a"[..]], "x\ny");
}

#[test]
fn pax_global_header_is_not_an_entry() {
    let t = Tar::new()
        .pax_global(&[("comment", b"3b0e6b1a9f1b7a0c")])
        .add(rec(b'0', "a").data("1"));
    let l = t.layer();
    let names: Vec<String> = l
        .changeset()
        .unwrap()
        .entries()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn ustar_prefix_field() {
    let prefix =
        "usr/lib/python3/dist-packages/some-package-with-a-long-name/and-a-subpackage/more-nesting";
    let name = "module/__init__.py";
    assert!(prefix.len() + 1 + name.len() > 100 && prefix.len() <= 155);
    let t = Tar::new()
        .add(rec(b'0', name).prefix(prefix).data("# init"))
        .add(rec(b'5', "x/").prefix("pre"));
    let l = t.layer();
    let full = format!("{prefix}/{name}");
    assert_eq!(contents(&l, &full), b"# init");
    assert!(l
        .changeset()
        .unwrap()
        .entry("pre/x")
        .unwrap()
        .unwrap()
        .is_dir());
    // GNU headers have no prefix field: those bytes are other fields and must not be read
    // as one.
    let gnu = Tar::new().add(rec(b'0', "plain").format(Format::Gnu).data("g"));
    assert_eq!(contents(&gnu.layer(), "plain"), b"g");
}

#[test]
fn dot_slash_prefixes() {
    let t = Tar::new()
        .add(rec(b'5', "./").mode(0o750).mtime(9))
        .add(rec(b'5', "./etc/"))
        .add(rec(b'0', "./etc/hosts").data("127.0.0.1 localhost\n"))
        .add(rec(b'0', "./etc/./motd").data("hi"));
    let l = t.layer();
    let tree = Tree::new().apply(&l).unwrap();
    assert_eq!(
        (
            tree.root().metadata().mode,
            tree.root().metadata().mtime,
            tree.root().layer()
        ),
        (0o750, 9, Some(0))
    );
    assert_eq!(
        tree.dump().to_string(),
        lines(&[
            "drwxr-xr-x 0:0 0 0 etc/",
            "-rw-r--r-- 0:0 20 0 etc/hosts",
            "-rw-r--r-- 0:0 2 0 etc/motd",
        ])
    );
}

#[test]
fn non_utf8_names_in_pax_records() {
    let t = Tar::new()
        .pax(&[("path", b"caf\xe9/r\xe9sum\xe9.txt")])
        .add(rec(b'0', "caf_/r_sum_.txt").data("cv"))
        .pax(&[
            ("path", b"caf\xe9/new\nline"),
            ("linkpath", b"r\xe9sum\xe9.txt"),
        ])
        .add(rec(b'2', "x"));
    let l = t.layer();
    assert_eq!(contents(&l, &b"caf\xe9/r\xe9sum\xe9.txt"[..]), b"cv");
    let sym = l
        .changeset()
        .unwrap()
        .entry(&b"caf\xe9/new\nline"[..])
        .unwrap()
        .expect("name with a newline");
    assert_eq!(sym.link_target().unwrap(), &b"r\xe9sum\xe9.txt"[..]);
    let tree = Tree::new().apply(&l).unwrap();
    assert_eq!(tree.read(&b"caf\xe9/new\nline"[..]).unwrap(), "cv");
}

#[test]
fn non_utf8_names_in_plain_headers() {
    let t = Tar::new()
        .add(rec(b'5', b"\xff\xfe/"))
        .add(rec(b'0', b"\xff\xfe/\xe9t\xe9").data("summer"))
        .add(rec(b'2', b"link").link(b"\xff\xfe/\xe9t\xe9"));
    let l = t.layer();
    assert_eq!(contents(&l, &b"\xff\xfe/\xe9t\xe9"[..]), b"summer");
    assert_eq!(
        dump(&l),
        lines(&[
            "lrwxrwxrwx 0:0 6 0 link -> \\xff\\xfe/\\xe9t\\xe9",
            "drwxr-xr-x 0:0 0 0 \\xff\\xfe/",
            "-rw-r--r-- 0:0 6 0 \\xff\\xfe/\\xe9t\\xe9",
        ])
    );
}

#[test]
fn file_type_bits_in_the_mode_field_are_masked() {
    // docker commit writes the st_mode type bits into the tar mode field.
    let t = Tar::new()
        .add(rec(b'5', "dir/").mode(0o40755))
        .add(rec(b'5', "tmp/").mode(0o41777))
        .add(rec(b'0', "dir/file").mode(0o100644).data("f"))
        .add(rec(b'0', "dir/su").mode(0o104755).data("s"))
        .add(rec(b'2', "dir/link").mode(0o120777).link("file"));
    let l = t.layer();
    let modes: Vec<(String, u32)> = l
        .changeset()
        .unwrap()
        .entries()
        .map(|(p, e)| (p.to_string(), e.metadata().mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("dir".to_string(), 0o755),
            ("dir/file".into(), 0o644),
            ("dir/link".into(), 0o777),
            ("dir/su".into(), 0o4755),
            ("tmp".into(), 0o1777),
        ]
    );
}

#[test]
fn whiteouts_with_mode_0_or_0644_are_markers() {
    let lower = Layer::builder()
        .file("a", "1")
        .file("b", "2")
        .file("d/x", "3")
        .file("keep", "4")
        .build()
        .unwrap();
    let t = Tar::new()
        // umoci and Docker: mode 0, mtime 0
        .add(rec(b'0', ".wh.a").mode(0))
        // GNU tar of a directory someone prepared by hand: 0644, a real mtime, owner names
        .add(
            rec(b'0', "./.wh.b")
                .format(Format::Gnu)
                .mode(0o644)
                .mtime(1_700_000_000)
                .names("root", "root"),
        )
        .add(
            rec(b'0', "./d/.wh..wh..opq")
                .format(Format::Gnu)
                .mode(0o100644)
                .mtime(1_700_000_000),
        );
    let l = t.layer();
    assert_eq!(l.changeset().unwrap().entries().count(), 0);
    let tree = Tree::new().apply(&lower).unwrap().apply(&l).unwrap();
    assert_eq!(
        tree.dump().to_string(),
        lines(&["drwxr-xr-x 0:0 0 0 d/", "-rw-r--r-- 0:0 1 0 keep"])
    );
}

#[test]
fn tar_without_end_of_archive_blocks_reads() {
    // umoci 0.4.7 `insert`: the archive just stops after the last entry.
    let t = Tar::new()
        .add(rec(b'5', "etc/"))
        .add(rec(b'0', "etc/a").data("aaa"))
        .add(rec(b'0', "etc/.wh.b").mode(0));
    let with_end = t.layer();
    let bytes = t.bytes_without_end();
    assert_eq!(bytes.len() % 512, 0);
    let l = Layer::from_tar(bytes.clone()).unwrap();
    assert_eq!(dump(&l), dump(&with_end));
    assert_eq!(l.changeset().unwrap().whiteouts().count(), 1);
    assert_eq!(&tar_bytes(&l)[..], &bytes[..]);
    assert_eq!(l.diff_id().to_string(), sha256_of(&bytes));
    assert_ne!(l.diff_id(), with_end.diff_id());
}

#[test]
fn tar_ending_right_after_the_last_entrys_data_reads() {
    // Go's writer pads an entry when the next header or Close comes; with neither, the last
    // file's data ends the stream. Go readers take that as the end of the archive, and
    // refuse a stream that stops partway into the padding.
    let t = Tar::new().add(rec(b'0', "f").data("abc"));
    let bytes = t.out[..512 + 3].to_vec();
    let l = Layer::from_tar(bytes.clone()).unwrap();
    assert_eq!(contents(&l, "f"), b"abc");
    assert_eq!(&tar_bytes(&l)[..], &bytes[..]);
    assert_invalid_tar(Layer::from_tar(t.out[..512 + 4].to_vec()), "cut in padding");
    // A directory carries no data whatever its size field says (as Go reads header-only
    // types): a stream that ends right after its header ends after a whole entry...
    let d = Tar::new().add(rec(b'5', "d/").size(10));
    let l = Layer::from_tar(d.out[..512].to_vec()).unwrap();
    assert!(l.changeset().unwrap().entry("d").unwrap().unwrap().is_dir());
    // ... and bytes after its header are the next header, here cut short.
    let d = Tar::new().add(rec(b'5', "d/").data("0123456789"));
    match Layer::from_tar(d.out[..512 + 5].to_vec()) {
        Err(Error::InvalidTar { reason, .. }) => {
            assert!(
                reason.contains("the archive ends inside a header block"),
                "{reason}"
            )
        }
        other => panic!("bytes after a directory header: expected InvalidTar, got {other:?}"),
    }
}

#[test]
fn header_only_entry_types_carry_no_data_whatever_their_size_field_says() {
    // Go's archive/tar (and so Docker) reads links, directories, devices and pipes as a
    // header alone: a size field is ignored and the next header follows at once.
    let mut dev = rec(b'3', "dev/null").size(700).header();
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_cksum();
    let mut t = Tar::new()
        .add(rec(b'5', "d/").size(1000))
        .add(rec(b'2', "sym").link("d").size(0o777))
        .add(rec(b'0', "f").data("abc"))
        .add(rec(b'1', "hard").link("f").size(3));
    t.block(&dev, &[]);
    let t = t
        .add(rec(b'6', "pipe").size(512))
        .add(rec(b'0', "last").data("z"));
    let l = t.layer();
    assert_eq!(
        dump(&l),
        lines(&[
            "drwxr-xr-x 0:0 0 0 d/",
            "drwxr-xr-x 0:0 0 0 dev/",
            "crw-r--r-- 0:0 0 0 dev/null 1,3",
            "-rw-r--r-- 0:0 3 0 f",
            "-rw-r--r-- 0:0 3 0 hard",
            "-rw-r--r-- 0:0 1 0 last",
            "prw-r--r-- 0:0 0 0 pipe",
            "lrwxrwxrwx 0:0 1 0 sym -> d",
        ])
    );
    assert_eq!(contents(&l, "last"), b"z");
}

#[test]
fn record_size_10240_padding_after_the_end() {
    let t = Tar::new()
        .add(rec(b'0', "a").data("1"))
        .add(rec(b'0', "b").data("2"));
    let mut bytes = t.bytes();
    bytes.resize(bytes.len().next_multiple_of(10240), 0);
    assert_eq!(bytes.len(), 10240);
    let l = Layer::from_tar(bytes.clone()).unwrap();
    assert_eq!(dump(&l), dump(&t.layer()));
    assert_eq!(l.size().unwrap(), 10240);
    assert_eq!(l.diff_id().to_string(), sha256_of(&bytes));
}

#[test]
fn old_style_regular_entry_with_trailing_slash_is_a_directory() {
    let t = Tar::new()
        .add(rec(0, "v7dir/").format(Format::V7).mode(0o700))
        .add(rec(0, "v7dir/file").format(Format::V7).data("old"))
        .add(rec(b'0', "ustar-dir/").mode(0o750));
    let l = t.layer();
    assert_eq!(
        dump(&l),
        lines(&[
            "drwxr-x--- 0:0 0 0 ustar-dir/",
            "drwx------ 0:0 0 0 v7dir/",
            "-rw-r--r-- 0:0 3 0 v7dir/file",
        ])
    );
}

#[test]
fn gnu_tar_style_layer() {
    // What `tar --format=gnu -C rootfs -cf layer.tar .` writes for a hand-made layer: `./`
    // names, owner names, real mtimes, a long name as an L record, whiteouts with mode 0644
    // and the opaque marker after its directory.
    let long = format!("./usr/share/doc/{}", long_path());
    let g = |typ, name: &str| {
        rec(typ, name)
            .format(Format::Gnu)
            .mtime(1_700_000_000)
            .names("root", "root")
    };
    let t = Tar::new()
        .add(g(b'5', "./"))
        .add(g(b'5', "./etc/"))
        .add(g(b'0', "./etc/.wh.motd"))
        .add(g(b'0', "./etc/hostname").data("box\n"))
        .add(g(b'5', "./var/cache/"))
        .add(g(b'0', "./var/cache/new").owner(1000, 1000).data("n"))
        .add(g(b'0', "./var/cache/.wh..wh..opq"))
        .gnu_long(b'L', long.as_bytes())
        .add(g(b'0', &long).data("doc"))
        .add(g(b'2', "./usr/bin/vi").link("vim.basic"));
    let lower = Layer::builder()
        .file("etc/motd", "old motd")
        .file("etc/passwd", "root")
        .file("var/cache/old", "o")
        .build()
        .unwrap();
    let l = t.layer();
    let tree = Tree::new().apply(&lower).unwrap().apply(&l).unwrap();
    let long_dump = long.trim_start_matches("./");
    let expected = [
        "drwxr-xr-x 0:0 0 1700000000 etc/".to_string(),
        "-rw-r--r-- 0:0 4 1700000000 etc/hostname".into(),
        "-rw-r--r-- 0:0 4 0 etc/passwd".into(),
        "drwxr-xr-x 0:0 0 0 usr/".into(),
        "drwxr-xr-x 0:0 0 0 usr/bin/".into(),
        "lrwxrwxrwx 0:0 9 1700000000 usr/bin/vi -> vim.basic".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/doc/".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/doc/a-directory-name-of-thirty-byt/".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/doc/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/doc/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/".into(),
        "drwxr-xr-x 0:0 0 0 usr/share/doc/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/a-directory-name-of-thirty-byt/".into(),
        format!("-rw-r--r-- 0:0 3 1700000000 {long_dump}"),
        "drwxr-xr-x 0:0 0 0 var/".into(),
        "drwxr-xr-x 0:0 0 1700000000 var/cache/".into(),
        "-rw-r--r-- 1000:1000 1 1700000000 var/cache/new".into(),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(tree.dump().to_string(), lines(&expected));
    assert_eq!(tree.root().metadata().mtime, 1_700_000_000);
    assert_eq!(&tar_bytes(&l)[..], &t.bytes()[..]);
}

#[test]
fn unsupported_and_malformed_entries_are_invalid_tar() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "gnu sparse",
            Tar::new()
                .add(rec(b'S', "sparse").format(Format::Gnu))
                .bytes(),
        ),
        ("unknown type", Tar::new().add(rec(b'Z', "what")).bytes()),
        (
            "hardlink without target",
            Tar::new().add(rec(b'1', "h")).bytes(),
        ),
        ("empty name", Tar::new().add(rec(b'0', "")).bytes()),
        (
            "PAX header with no entry after it",
            Tar::new()
                .add(rec(b'0', "a"))
                .pax(&[("path", b"b")])
                .bytes(),
        ),
        (
            "GNU long name with no entry after it",
            Tar::new().gnu_long(b'L', b"name").bytes(),
        ),
        (
            "PAX record length wrong",
            Tar::new()
                .pax_raw(b"99 path=x\n")
                .add(rec(b'0', "a"))
                .bytes(),
        ),
        (
            "PAX record without newline",
            Tar::new()
                .pax_raw(b"10 path=ab")
                .add(rec(b'0', "a"))
                .bytes(),
        ),
        (
            "PAX record without =",
            Tar::new()
                .pax_raw(b"9 pathxx\n")
                .add(rec(b'0', "a"))
                .bytes(),
        ),
        (
            "PAX uid not a number",
            Tar::new()
                .pax(&[("uid", b"-1")])
                .add(rec(b'0', "a"))
                .bytes(),
        ),
        (
            "PAX mtime not a number",
            Tar::new()
                .pax(&[("mtime", b"soon")])
                .add(rec(b'0', "a"))
                .bytes(),
        ),
        (
            "PAX size not a number",
            Tar::new()
                .pax(&[("size", b"five")])
                .add(rec(b'0', "a").data("hello"))
                .bytes(),
        ),
        (
            "file data past the end (size field)",
            Tar::new()
                .add(rec(b'0', "a").size(0o77_777_777_777).data("x"))
                .bytes(),
        ),
    ];
    for (what, bytes) in cases {
        assert_invalid_tar(Layer::from_tar(bytes), what);
    }
}

#[test]
fn invalid_names_in_extension_records_are_invalid_path() {
    for (what, bytes) in [
        (
            "NUL in PAX path",
            Tar::new()
                .pax(&[("path", b"a\0b")])
                .add(rec(b'0', "ab"))
                .bytes(),
        ),
        (
            "`..` in PAX path",
            Tar::new()
                .pax(&[("path", b"a/../../b")])
                .add(rec(b'0', "ab"))
                .bytes(),
        ),
        (
            "`..` in GNU long name",
            Tar::new()
                .gnu_long(b'L', b"../escape")
                .add(rec(b'0', "x").format(Format::Gnu))
                .bytes(),
        ),
        (
            "`..` in PAX hardlink target",
            Tar::new()
                .add(rec(b'0', "a"))
                .pax(&[("linkpath", b"../a")])
                .add(rec(b'1', "h").link("a"))
                .bytes(),
        ),
    ] {
        match Layer::from_tar(bytes) {
            Err(Error::InvalidPath { .. }) => {}
            other => panic!("{what}: expected InvalidPath, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Round trips

/// A builder layer with every kind of entry, marker and awkward value.
fn rich_layer() -> Layer {
    Layer::builder()
        .entry("", Entry::dir().mode(0o755).mtime(1))
        .entry(
            "bin/sh",
            Entry::file("#!")
                .mode(0o4755)
                .owner(0, 0)
                .mtime(1_700_000_000),
        )
        .hard_link("bin/sh", "bin/ash")
        .symlink("usr/lib", "lib")
        .entry(
            "etc/shadow",
            Entry::file("root:*:").mode(0o640).owner(0, 42),
        )
        .char_device("dev/null", 1, 3)
        .block_device("dev/sda", 8, 0)
        .fifo("run/fifo")
        .whiteout("etc/motd")
        .opaque("var/cache")
        .file("var/cache/new", "n")
        .build()
        .unwrap()
}

#[test]
fn build_tar_read_gives_the_same_layer_tree_and_diff_id() {
    let built = rich_layer();
    let read = Layer::from_tar(built.tar().unwrap().clone()).unwrap();
    assert_eq!(read.diff_id(), built.diff_id());
    assert_eq!(read.diff_id().to_string(), sha256_of(&tar_bytes(&built)));
    assert_eq!(
        read.changeset().unwrap().entries().collect::<Vec<_>>(),
        built.changeset().unwrap().entries().collect::<Vec<_>>()
    );
    assert_eq!(
        read.changeset().unwrap().whiteouts().collect::<Vec<_>>(),
        built.changeset().unwrap().whiteouts().collect::<Vec<_>>()
    );
    assert_eq!(
        read.changeset().unwrap().opaque_dirs().collect::<Vec<_>>(),
        built.changeset().unwrap().opaque_dirs().collect::<Vec<_>>()
    );
    let (a, b) = (
        Tree::new().apply(&built).unwrap(),
        Tree::new().apply(&read).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.dump().to_string(), b.dump().to_string());
    // And through a reader that returns a few bytes at a time.
    let short = Layer::read(ShortReads(&tar_bytes(&built)[..], 0)).unwrap();
    assert_eq!(short.diff_id(), built.diff_id());
}

/// A reader that returns 1 to 7 bytes per call.
struct ShortReads<'a>(&'a [u8], usize);

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 += 1;
        let n = (self.1 % 7 + 1).min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn read_errors_from_the_reader_are_io_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"))
        }
    }
    match Layer::read(Failing) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected Io, got {other:?}"),
    }
}

/// Foreign tars in every quirky spelling: each is kept byte for byte.
fn foreign_tars() -> Vec<(&'static str, Vec<u8>)> {
    let long = long_path();
    let mut padded = Tar::new().add(rec(b'0', "a").data("1")).bytes();
    padded.resize(10240, 0);
    vec![
        (
            "gnu long name",
            Tar::new()
                .gnu_long(b'L', long.as_bytes())
                .add(rec(b'0', &long).format(Format::Gnu).data("x"))
                .bytes(),
        ),
        (
            "pax",
            Tar::new()
                .pax(&[("path", b"p\xe9"), ("SCHILY.xattr.user.k", b"v\n")])
                .add(rec(b'0', "p").data("x"))
                .bytes(),
        ),
        (
            "docker commit modes",
            Tar::new()
                .add(rec(b'5', "d/").mode(0o40755))
                .add(rec(b'0', "d/f").mode(0o100644).data("f"))
                .bytes(),
        ),
        (
            "ustar prefix",
            Tar::new()
                .add(rec(b'0', "name").prefix("some/prefix").data("x"))
                .bytes(),
        ),
        (
            "no end blocks",
            Tar::new().add(rec(b'0', "a").data("1")).bytes_without_end(),
        ),
        ("record size 10240", padded),
        (
            "v7",
            Tar::new()
                .add(rec(0, "dir/").format(Format::V7))
                .add(rec(0, "dir/f").format(Format::V7).data("x"))
                .bytes(),
        ),
        (
            "markers",
            Tar::new()
                .add(rec(b'0', "d/.wh..wh..opq").mode(0))
                .add(rec(b'5', "./d/"))
                .add(rec(b'0', ".wh.x").mode(0o644).mtime(5))
                .bytes(),
        ),
    ]
}

#[test]
fn foreign_tar_bytes_are_kept_exactly() {
    for (what, bytes) in foreign_tars() {
        let l = Layer::from_tar(bytes.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(&tar_bytes(&l)[..], &bytes[..], "{what}");
        assert_eq!(l.diff_id().to_string(), sha256_of(&bytes), "{what}");
        assert_eq!(l.size().unwrap(), bytes.len() as u64, "{what}");
        // And reading the returned bytes again changes nothing.
        let again = Layer::from_tar(l.tar().unwrap().clone()).unwrap();
        assert_eq!(again.diff_id(), l.diff_id(), "{what}");
        assert_eq!(dump(&again), dump(&l), "{what}");
    }
}

#[test]
fn canonical_writer_is_deterministic() {
    let entries: Vec<(&str, Entry)> = vec![
        ("z/last", Entry::file("z").mtime(3)),
        ("a", Entry::dir().mode(0o700)),
        (
            "a/b",
            Entry::file("b").xattr("user.y", "2").xattr("user.x", "1"),
        ),
        ("a-b", Entry::symlink("a/b")),
        ("dev/tty", Entry::char_device(5, 0)),
    ];
    let forward = entries
        .iter()
        .fold(Layer::builder(), |b, (p, e)| b.entry(p, e.clone()))
        .hard_link("a/b", "a/c")
        .whiteout("gone")
        .opaque("z")
        .build()
        .unwrap();
    let backward = entries
        .iter()
        .rev()
        .fold(
            Layer::builder().opaque("z").whiteout("gone"),
            |b, (p, e)| b.entry(p, e.clone()),
        )
        .hard_link("a/b", "a/c")
        .build()
        .unwrap();
    assert_eq!(&tar_bytes(&forward)[..], &tar_bytes(&backward)[..]);
    assert_eq!(forward.diff_id(), backward.diff_id());
    // Building twice gives the same bytes too.
    let again = entries
        .iter()
        .fold(Layer::builder(), |b, (p, e)| b.entry(p, e.clone()))
        .hard_link("a/b", "a/c")
        .whiteout("gone")
        .opaque("z")
        .build()
        .unwrap();
    assert_eq!(again.diff_id(), forward.diff_id());
}

#[test]
fn canonical_output_for_hard_values_reads_back_equal() {
    let long = long_path();
    let very_long = format!("{long}.d/{long}.d/{long}");
    assert!(very_long.len() > 256);
    let entries: Vec<(Vec<u8>, Entry)> = vec![
        (long.clone().into_bytes(), Entry::file("long name")),
        (
            very_long.clone().into_bytes(),
            Entry::file("very long name"),
        ),
        (b"caf\xe9/men\xfc".to_vec(), Entry::file("latin-1")),
        (b"new\nline".to_vec(), Entry::file("newline in the name")),
        (
            b"exactly-100".iter().copied().cycle().take(100).collect(),
            Entry::file("100 bytes"),
        ),
        (b"sym-long".to_vec(), Entry::symlink(very_long.clone())),
        (b"sym-raw".to_vec(), Entry::symlink(&b"\xff/target"[..])),
        (
            b"ids".to_vec(),
            Entry::file("").owner(4_294_967_294, 2_097_152),
        ),
        (
            b"xattrs".to_vec(),
            Entry::file("")
                .xattr("security.capability", &b"\x01\0\0\x02\n\xff"[..])
                .xattr(&b"user.\xe9"[..], "latin-1 key"),
        ),
        (
            b"times/negative".to_vec(),
            Entry::file("").mtime(-1_000_000),
        ),
        (b"times/far".to_vec(), Entry::file("").mtime(1 << 40)),
        (
            b"hard-long".to_vec(),
            Entry::hardlink(ImagePath::new(&very_long).unwrap()),
        ),
    ];
    let layer = entries
        .iter()
        .fold(Layer::builder(), |b, (p, e)| b.entry(p, e.clone()))
        .build()
        .unwrap();
    for (path, entry) in &entries {
        assert_eq!(
            layer.changeset().unwrap().entry(path).unwrap(),
            Some(entry),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    let tree = Tree::new().apply(&layer).unwrap();
    assert!(tree
        .lookup("hard-long")
        .unwrap()
        .unwrap()
        .same_file(&tree.lookup(&very_long).unwrap().unwrap()));
    assert_eq!(tree.read("sym-long").unwrap(), "very long name");
}

#[test]
fn canonical_tar_as_an_independent_reader_sees_it() {
    let long = long_path();
    let layer = Layer::builder()
        .entry("", Entry::dir().mode(0o711))
        .entry("etc", Entry::dir().mode(0o755))
        .entry(
            "etc/passwd",
            Entry::file("root:x:0:0::/root:/bin/sh\n").mode(0o644),
        )
        .entry("bin/su", Entry::file("ELF").mode(0o4755).owner(0, 0))
        .hard_link("bin/su", "bin/su2")
        .symlink("/bin/busybox", "sh")
        .entry(&long, Entry::file("L").owner(3_000_000, 7))
        .entry("x", Entry::file("").xattr("user.k", "v"))
        .char_device("dev/null", 1, 3)
        .fifo("p")
        .whiteout("old")
        .opaque("var")
        .build()
        .unwrap();
    let bytes = tar_bytes(&layer);

    // Canonical framing: whole blocks, two zero blocks at the end, USTAR everywhere.
    assert_eq!(bytes.len() % 512, 0);
    assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0));

    let mut raw = tar::Archive::new(&bytes[..]);
    let mut kinds = Vec::new();
    for entry in raw.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let h = entry.header();
        assert!(h.as_ustar().is_some(), "USTAR magic");
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        kinds.push(h.entry_type().as_byte());
    }
    // Two PAX headers: the long name and the big uid share one, the xattr has the other.
    assert_eq!(kinds.iter().filter(|&&k| k == b'x').count(), 2);

    let mut archive = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header().clone();
        let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.into_owned()).unwrap());
        let xattrs: Vec<String> = match entry.pax_extensions().unwrap() {
            Some(pax) => pax
                .map(|e| {
                    let e = e.unwrap();
                    format!("{}={}", e.key().unwrap(), e.value().unwrap())
                })
                .filter(|kv| kv.starts_with("SCHILY."))
                .collect(),
            None => Vec::new(),
        };
        seen.push((
            path,
            h.entry_type().as_byte() as char,
            format!("{:o}", h.mode().unwrap()),
            h.uid().unwrap(),
            h.mtime().unwrap(),
            link,
            xattrs,
        ));
    }
    let s = |v: &str| v.to_string();
    // Path order, component by component; implied parents (`bin/`, `dev/`) are not written.
    let want = vec![
        (s("./"), '5', s("711"), 0, 0, None, vec![]),
        (s(".wh.old"), '0', s("0"), 0, 0, None, vec![]),
        (s(&long), '0', s("644"), 3_000_000, 0, None, vec![]),
        (s("bin/su"), '0', s("4755"), 0, 0, None, vec![]),
        (
            s("bin/su2"),
            '1',
            s("4755"),
            0,
            0,
            Some(s("bin/su")),
            vec![],
        ),
        (s("dev/null"), '3', s("666"), 0, 0, None, vec![]),
        (s("etc/"), '5', s("755"), 0, 0, None, vec![]),
        (s("etc/passwd"), '0', s("644"), 0, 0, None, vec![]),
        (s("p"), '6', s("644"), 0, 0, None, vec![]),
        (
            s("sh"),
            '2',
            s("777"),
            0,
            0,
            Some(s("/bin/busybox")),
            vec![],
        ),
        (s("var/.wh..wh..opq"), '0', s("0"), 0, 0, None, vec![]),
        (
            s("x"),
            '0',
            s("644"),
            0,
            0,
            None,
            vec![s("SCHILY.xattr.user.k=v")],
        ),
    ];
    assert_eq!(seen, want);
}

#[test]
fn canonical_writer_does_not_write_implied_directories() {
    // Parents are implied when the layer is applied (R6), not written.
    let layer = Layer::builder().file("a/b/c", "x").build().unwrap();
    let bytes = tar_bytes(&layer);
    let mut archive = tar::Archive::new(&bytes[..]);
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
        .collect();
    assert_eq!(names, ["a/b/c"]);
    assert_eq!(layer.tar().unwrap().len(), 512 + 512 + 1024);
}

// ---------------------------------------------------------------------------------------
// Broken input: errors, never panics

/// A tar with a bit of everything that has a framing of its own: PAX, GNU L, multi-block
/// data, markers, and an ending file with a partial last block.
fn sweep_tar() -> Tar {
    let long = long_path();
    Tar::new()
        .add(rec(b'5', "d/"))
        .pax(&[("path", long.as_bytes()), ("SCHILY.xattr.user.k", b"v")])
        .add(rec(b'0', "short").data(vec![b'p'; 700]))
        .add(rec(b'0', "d/.wh.gone").mode(0))
        .gnu_long(b'L', format!("d/{long}").as_bytes())
        .add(rec(b'0', "d/x").format(Format::Gnu).data("gnu"))
        .add(rec(b'2', "d/sym").link("x"))
        .add(rec(b'0', "d/.wh..wh..opq").mode(0))
        .add(rec(b'0', "last").data(vec![b'q'; 1000]))
}

#[test]
fn truncated_tar_is_invalid_tar_never_a_panic() {
    let t = sweep_tar();
    let bytes = t.bytes();
    let full = Layer::from_tar(bytes.clone()).unwrap();
    let items = |l: &Layer| {
        l.changeset().unwrap().entries().count()
            + l.changeset().unwrap().whiteouts().count()
            + l.changeset().unwrap().opaque_dirs().count()
    };
    assert_eq!(items(&full), t.ends.len());
    let last_end = t.ends.last().unwrap().1;

    let (mut oks, mut errs) = (0, 0);
    for cut in 0..bytes.len() {
        let result = Layer::from_tar(bytes[..cut].to_vec());
        // Readable cuts: right after an entry's data (an unclosed Go writer leaves out the
        // padding), after its padding, or after the first whole zero block, which already
        // ends the archive.
        let complete = t
            .ends
            .iter()
            .filter(|(data_end, _)| *data_end <= cut)
            .count();
        let readable =
            cut == 0 || t.ends.iter().any(|&(d, p)| cut == d || cut == p) || cut >= last_end + 512;
        match result {
            Ok(l) if readable => {
                assert_eq!(items(&l), complete, "cut at {cut}");
                assert_eq!(&tar_bytes(&l)[..], &bytes[..cut]);
                oks += 1;
            }
            Err(Error::InvalidTar { .. }) if !readable => errs += 1,
            other => panic!("cut at {cut} (readable: {readable}): {other:?}"),
        }
    }
    assert!(
        oks >= t.ends.len() && errs > bytes.len() / 2,
        "{oks} {errs}"
    );
}

#[test]
fn truncated_tar_file_on_disk_is_invalid_tar_never_a_panic() {
    // The same cuts as above, read in place from a file instead of from memory: the same
    // outcome, cut by cut.
    let bytes = sweep_tar().bytes();
    let file = TempFile::with("cut.tar", b"");
    for cut in (0..bytes.len()).step_by(37) {
        std::fs::write(file.path(), &bytes[..cut]).unwrap();
        let from_disk = Layer::open(file.path());
        match (Layer::from_tar(bytes[..cut].to_vec()), from_disk) {
            (Ok(memory), Ok(disk)) => {
                assert_eq!(everything(&disk), everything(&memory), "cut at {cut}");
                assert_eq!(tar_bytes(&disk), &bytes[..cut]);
            }
            (
                Err(Error::InvalidTar { reason: a, .. }),
                Err(Error::InvalidTar { reason: b, .. }),
            ) => {
                assert_eq!(a, b, "cut at {cut}")
            }
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn bad_header_checksum_is_invalid_tar() {
    let t = Tar::new()
        .add(rec(b'0', "a").data("1"))
        .add(rec(b'0', "b").data("2"));
    let second = t.headers[1];
    // A changed byte in the name, in the checksum field itself, and in the size field.
    for offset in [0, 148, 124] {
        let mut bytes = t.bytes();
        bytes[second + offset] ^= 0x01;
        assert_invalid_tar(Layer::from_tar(bytes), &format!("byte {offset} flipped"));
    }
    // The first header too, so nothing at all is read.
    let mut bytes = t.bytes();
    bytes[5] = b'!';
    assert_invalid_tar(Layer::from_tar(bytes), "first header");
}

#[test]
fn non_numeric_header_fields_are_invalid_tar() {
    // (field offset, field length) in a USTAR header: mode, uid, gid, size, mtime, devmajor.
    for (offset, len) in [(100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (329, 8)] {
        let t = Tar::new().add(rec(b'3', "dev").data(""));
        let mut bytes = t.bytes();
        bytes[offset..offset + len - 1].copy_from_slice(&b"zzzzzzzzzzzz"[..len - 1]);
        fix_checksum(&mut bytes[..512]);
        assert_invalid_tar(Layer::from_tar(bytes), &format!("field at {offset}"));
    }
}

/// Recomputes a header's checksum after a test changed it.
fn fix_checksum(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
}

#[test]
fn mutated_headers_and_pax_records_never_panic() {
    let t = sweep_tar();
    let clean = t.bytes();
    // Positions worth hitting: every header byte (checksum fixed afterwards) and every PAX
    // record byte.
    let mut targets: Vec<(usize, Option<usize>)> = Vec::new();
    for &h in &t.headers {
        targets.extend(
            (0..512)
                .filter(|i| !(148..156).contains(i))
                .map(|i| (h + i, Some(h))),
        );
    }
    for &(start, end) in &t.pax_data {
        targets.extend((start..end).map(|i| (i, None)));
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    let interesting = [
        0u8, b'/', b'.', b'0', b'7', b' ', b'=', b'\n', 0x80, 0xff, b'5', b'x',
    ];
    let (mut oks, mut errs) = (0, 0);
    for _ in 0..4000 {
        let mut bytes = clean.clone();
        let mut touched = Vec::new();
        for _ in 0..1 + next() % 3 {
            let (pos, header) = targets[next() % targets.len()];
            bytes[pos] = interesting[next() % interesting.len()];
            touched.extend(header);
        }
        for h in touched {
            fix_checksum(&mut bytes[h..h + 512]);
        }
        match Layer::from_tar(bytes.clone()) {
            Ok(l) => {
                assert_eq!(&tar_bytes(&l)[..], &bytes[..]);
                if let Ok(tree) = Tree::new().apply(&l) {
                    let _ = tree.dump().to_string();
                }
                oks += 1;
            }
            Err(_) => errs += 1,
        }
    }
    // Both outcomes occur, so the mutations reach past the first check.
    assert!(oks > 100 && errs > 100, "{oks} ok, {errs} errors");
}

#[test]
fn entry_kinds_and_metadata_from_a_foreign_tar() {
    let mut h = rec(b'4', "dev/sda").mode(0o660).owner(0, 6).header();
    h.set_device_major(8).unwrap();
    h.set_device_minor(16).unwrap();
    h.set_cksum();
    let mut t = Tar::new();
    t.block(&h, &[]);
    t.ends.push((t.out.len(), t.out.len()));
    let t = t.add(rec(b'6', "run/initctl").mode(0o600).mtime(77));
    let l = t.layer();
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("dev/sda")
            .unwrap()
            .unwrap()
            .kind(),
        &EntryKind::BlockDevice {
            major: 8,
            minor: 16
        }
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("dev/sda")
            .unwrap()
            .unwrap()
            .metadata(),
        &Metadata::new(0o660).owner(0, 6)
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("run/initctl")
            .unwrap()
            .unwrap()
            .file_type(),
        FileType::Fifo
    );
    assert_eq!(
        l.changeset()
            .unwrap()
            .entry("run/initctl")
            .unwrap()
            .unwrap()
            .metadata()
            .mtime,
        77
    );
}

// ---------------------------------------------------------------------------------------
// Where the tar is: in memory, in a file on disk, in a stream, in a compressed blob

/// A file of `len` bytes whose every 256 KiB chunk differs, so a read at the wrong offset
/// shows.
fn patterned(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The rich layer plus a file larger than one read chunk of contents on disk.
fn rich_tar() -> Vec<u8> {
    let rich = tar_bytes(&rich_layer());
    let big = Layer::builder()
        .file("big/blob", patterned(600_000))
        .build()
        .unwrap();
    // Both layers' records in one tar: the rich one's end blocks removed.
    [&rich[..rich.len() - 1024], &tar_bytes(&big)[..]].concat()
}

/// Everything a reader of `layer` sees, with each regular file's bytes read out.
fn everything(layer: &Layer) -> (String, Vec<String>, Vec<String>, String) {
    let changes = layer.changeset().unwrap();
    let entries = changes
        .entries()
        .map(|(p, e)| match e.contents() {
            Some(c) => format!(
                "{p} {:?} {}",
                e.metadata(),
                sha256_of(&c.to_bytes().unwrap())
            ),
            None => format!("{p} {e:?}"),
        })
        .collect();
    let whiteouts = changes
        .whiteouts()
        .chain(changes.opaque_dirs())
        .map(|p| p.to_string())
        .collect();
    (layer.diff_id().to_string(), entries, whiteouts, dump(layer))
}

/// Whether every regular file of a layer is in memory (`Some(true)`), all on disk
/// (`Some(false)`), or a mix (`None`).
fn in_memory(layer: &Layer) -> Option<bool> {
    let files: Vec<bool> = layer
        .changeset()
        .unwrap()
        .entries()
        .filter_map(|(_, e)| e.contents())
        .map(|c| c.as_bytes().is_some())
        .collect();
    assert!(!files.is_empty());
    if files.iter().all(|&m| m) {
        Some(true)
    } else if files.iter().all(|&m| !m) {
        Some(false)
    } else {
        None
    }
}

#[test]
fn a_tar_in_memory_on_disk_or_in_a_stream_reads_as_the_same_layer() {
    let bytes = rich_tar();
    let want_diff_id = sha256_of(&bytes);

    let memory = Layer::from_tar(bytes.clone()).unwrap();
    assert_eq!(
        in_memory(&memory),
        Some(true),
        "from_tar of bytes reads in place"
    );
    assert!(memory.tar().unwrap().as_bytes().is_some());

    let file = TempFile::with("plain.tar", &bytes);
    let disk = Layer::open(file.path()).unwrap();
    assert_eq!(
        in_memory(&disk),
        Some(false),
        "open of a plain tar reads in place"
    );
    assert!(disk.tar().unwrap().as_bytes().is_none());

    let stream = Layer::read(ShortReads(&bytes, 0)).unwrap();
    assert_eq!(
        in_memory(&stream),
        Some(false),
        "a stream is spilled to a temporary file"
    );

    let want = everything(&memory);
    assert_eq!(want.0, want_diff_id);
    assert_eq!(want.1.len(), 10, "{:#?}", want.1);
    for (how, layer) in [("open", &disk), ("read", &stream)] {
        assert_eq!(everything(layer), want, "{how}");
        assert_eq!(layer, &memory, "{how}");
        assert_eq!(layer.size().unwrap(), bytes.len() as u64, "{how}");
        assert_eq!(
            tar_bytes(layer),
            bytes,
            "{how}: the tar is kept byte for byte"
        );
        let tree = Tree::new().apply(layer).unwrap();
        assert_eq!(tree.read("big/blob").unwrap(), patterned(600_000), "{how}");
    }
    assert_eq!(
        disk.blob().digest().to_string(),
        want_diff_id,
        "a plain blob is the tar"
    );
    assert_eq!(stream.blob().digest().to_string(), want_diff_id);
}

#[test]
fn gzip_and_zstd_blobs_in_memory_or_on_disk_read_as_the_same_layer() {
    let bytes = rich_tar();
    let plain = Layer::from_tar(bytes.clone()).unwrap();
    let want = everything(&plain);
    for compression in [layercake::Compression::Gzip, layercake::Compression::Zstd] {
        let compressed = plain.compress(compression, 3).unwrap();
        assert_eq!(compressed.diff_id(), plain.diff_id());
        let blob = compressed.blob().contents().to_bytes().unwrap();
        assert_ne!(blob, bytes);

        let from_blob = Layer::from_blob(blob.clone()).unwrap();
        let file = TempFile::with("blob", &blob);
        let opened = Layer::open(file.path()).unwrap();
        let streamed = Layer::read(ShortReads(&blob, 0)).unwrap();
        for (how, layer) in [
            ("from_blob", &from_blob),
            ("open", &opened),
            ("read", &streamed),
        ] {
            let what = format!("{compression:?} {how}");
            assert_eq!(everything(layer), want, "{what}");
            // Decompressed once into a temporary file, read from there.
            assert_eq!(in_memory(layer), Some(false), "{what}");
            assert!(layer.tar().unwrap().as_bytes().is_none(), "{what}");
            assert_eq!(tar_bytes(layer), bytes, "{what}");
        }
        for (how, layer) in [("from_blob", &from_blob), ("open", &opened)] {
            assert_eq!(layer.blob().compression(), compression, "{how}");
            assert_eq!(layer.blob().digest(), compressed.blob().digest(), "{how}");
            assert_eq!(
                layer.blob().contents(),
                &blob,
                "{how}: the blob is kept as it is"
            );
        }
        // A stream's blob is its plain tar: the compressed stream is not kept.
        assert_eq!(streamed.blob().compression(), layercake::Compression::None);
        assert_eq!(streamed.blob().digest(), plain.diff_id().digest());
        // The blob file may go: the layer reads from its own temporary file.
        drop(file);
        let tree = Tree::new().apply(&opened).unwrap();
        assert_eq!(tree.read("big/blob").unwrap(), patterned(600_000));
    }
}

#[test]
fn a_tar_file_truncated_after_open_is_an_io_error_naming_it() {
    let bytes = rich_tar();
    let file = TempFile::with("truncated.tar", &bytes);
    let layer = Layer::open(file.path()).unwrap();
    let tree = Tree::new().apply(&layer).unwrap();
    assert_eq!(tree.read("etc/shadow").unwrap(), "root:*:");
    let start = patterned(64);
    let big_offset = bytes.windows(64).position(|w| w == start).unwrap() as u64;
    // Someone cuts the file in the middle of `big/blob` while the layer is in use.
    std::fs::OpenOptions::new()
        .write(true)
        .open(file.path())
        .unwrap()
        .set_len(big_offset + 1000)
        .unwrap();

    let name = file.path().display().to_string();
    let expect_io = |result: layercake::Result<bytes::Bytes>, what: &str| match result {
        Err(Error::Io { context, source }) => {
            assert!(context.contains(&name), "{what}: {context} names {name}");
            assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof, "{what}");
        }
        other => panic!("{what}: expected Io, got {other:?}"),
    };
    expect_io(tree.read("big/blob"), "Tree::read");
    let contents = layer
        .changeset()
        .unwrap()
        .entry("big/blob")
        .unwrap()
        .unwrap()
        .contents()
        .unwrap()
        .clone();
    expect_io(contents.to_bytes(), "Contents::to_bytes");
    expect_io(layer.tar().unwrap().to_bytes(), "Layer::tar");
    let mut buf = vec![0; 4096];
    match contents.read_at(500_000, &mut buf) {
        Err(Error::Io { context, .. }) => assert!(context.contains(&name), "{context}"),
        other => panic!("read_at: expected Io, got {other:?}"),
    }
    let err = contents.reader().read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains(&name), "{err}");
    // What was not cut still reads, and a comparison of cut contents is unequal, not a panic.
    assert_eq!(tree.read("etc/shadow").unwrap(), "root:*:");
    assert_ne!(contents, patterned(600_000));
}

#[test]
fn contents_readers_seek_and_read_at_in_memory_and_on_disk() {
    let data = patterned(600_000);
    let tar = tar_bytes(&Layer::builder().file("f", data.clone()).build().unwrap());
    let file = TempFile::with("contents.tar", &tar);
    let on_disk = Layer::open(file.path()).unwrap();
    let in_memory = Layer::from_tar(tar.clone()).unwrap();
    let len = data.len() as u64;
    for (how, layer) in [("memory", &in_memory), ("disk", &on_disk)] {
        let contents = layer
            .changeset()
            .unwrap()
            .entry("f")
            .unwrap()
            .unwrap()
            .contents()
            .unwrap()
            .clone();
        assert_eq!(contents.as_bytes().is_some(), how == "memory", "{how}");
        assert_eq!(contents.len(), len, "{how}");

        // read_at: inside, across a 256 KiB chunk boundary, at the end, past the end.
        let mut buf = vec![0u8; 1000];
        assert_eq!(contents.read_at(262_000, &mut buf).unwrap(), 1000, "{how}");
        assert_eq!(buf, &data[262_000..263_000], "{how}");
        assert_eq!(contents.read_at(len - 10, &mut buf).unwrap(), 10, "{how}");
        assert_eq!(&buf[..10], &data[data.len() - 10..], "{how}");
        assert_eq!(
            contents.read_at(len, &mut buf).unwrap(),
            0,
            "{how}: at the end"
        );
        assert_eq!(
            contents.read_at(len + 1, &mut buf).unwrap(),
            0,
            "{how}: past the end"
        );
        assert_eq!(
            contents.read_at(u64::MAX, &mut buf).unwrap(),
            0,
            "{how}: far past"
        );
        assert_eq!(
            contents.read_at(0, &mut []).unwrap(),
            0,
            "{how}: empty buffer"
        );

        // The reader: Seek from each end and from the current position.
        let mut reader = contents.reader();
        let mut part = vec![0u8; 5000];
        reader.seek(io::SeekFrom::Start(300_000)).unwrap();
        reader.read_exact(&mut part).unwrap();
        assert_eq!(part, &data[300_000..305_000], "{how}");
        assert_eq!(reader.stream_position().unwrap(), 305_000, "{how}");
        reader.seek(io::SeekFrom::Current(-100_000)).unwrap();
        reader.read_exact(&mut part).unwrap();
        assert_eq!(
            part,
            &data[205_000..210_000],
            "{how}: backwards over a chunk"
        );
        assert_eq!(
            reader.seek(io::SeekFrom::End(-3)).unwrap(),
            len - 3,
            "{how}"
        );
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 3..], "{how}");
        // Past the end: allowed, and reads nothing.
        assert_eq!(
            reader.seek(io::SeekFrom::End(10)).unwrap(),
            len + 10,
            "{how}"
        );
        // Before the start: an error, and the position stays.
        let err = reader
            .seek(io::SeekFrom::Current(-(len as i64) - 11))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{how}");
        assert_eq!(reader.stream_position().unwrap(), len + 10, "{how}");
        assert_eq!(reader.read(&mut part).unwrap(), 0, "{how}");
        // From the start again, all of it, in whatever pieces the reader gives.
        reader.rewind().unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, data, "{how}");
        // And a slice reads its own range only.
        let slice = contents.slice(100..200);
        assert_eq!(slice.to_bytes().unwrap(), &data[100..200], "{how}");
        assert_eq!(slice.read_at(99, &mut buf).unwrap(), 1, "{how}");
        assert_eq!(buf[0], data[199], "{how}");
    }
}
