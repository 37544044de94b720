//! Inputs the benches share: real files of this machine, which is what image layers hold
//! (binaries, libraries, scripts, data), in a fixed order.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The regular files below `root`, in path order.
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        // Directories go on the stack in reverse, so they come off in path order.
        for path in paths.iter().rev() {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                todo.push(path.clone());
            }
        }
        out.extend(
            paths
                .into_iter()
                .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())),
        );
    }
    out
}

/// Up to `limit` bytes of the files under /usr/lib and /usr/share, concatenated in path
/// order, with generated text after them if there are too few.
pub fn real_bytes(limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    for root in ["/usr/lib", "/usr/share"] {
        for path in files_under(Path::new(root)) {
            if out.len() >= limit {
                break;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                out.extend_from_slice(&bytes);
            }
        }
    }
    let mut n: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < limit {
        n ^= n << 13;
        n ^= n >> 7;
        n ^= n << 17;
        let line = format!("layer {} sha256:{:016x} size {}\n", n % 97, n, n % 4096);
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(limit);
    out
}
