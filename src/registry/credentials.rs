//! Docker's credential config: reading it for a registry (files, helpers), and `login` and
//! `logout` writing it. SKELETON.

use std::path::{Path, PathBuf};

use super::Client;
use crate::error::Result;

/// Credentials for a registry.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credentials {
    /// None: anonymous access.
    Anonymous,
    /// A user name and password (or a personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// An identity token (a refresh token for the registry's token server).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// Checks `username`/`password` against `registry`, then stores them in `auth_file` (or
/// Docker's `config.json`) as `docker login` does; returns the file written.
pub fn login(
    client: &Client,
    registry: &str,
    username: &str,
    password: &str,
    auth_file: Option<&Path>,
) -> Result<PathBuf> {
    let _ = (client, registry, username, password, auth_file);
    todo!()
}

/// Removes `registry`'s credentials from `auth_file` (or Docker's `config.json`); whether
/// there were any.
pub fn logout(registry: &str, auth_file: Option<&Path>) -> Result<bool> {
    let _ = (registry, auth_file);
    todo!()
}
