//! `Archive::from_bytes` on arbitrary bytes with tight limits, from docker_archive seeds; see
//! `common::check_archive`.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::check_archive(data));
