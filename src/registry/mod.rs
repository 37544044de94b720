//! Registries: a daemonless client of the OCI distribution API (and Docker's registry v2)
//! that pulls into a [`Store`](crate::Store), pushes stored or built images, and copies between
//! registries, stores and image files. Behind the `registry` feature.
//!
//! ```text
//! client.rs       Client: requests, retries, auth challenges, tokens, TLS per registry
//! auth.rs         WWW-Authenticate challenges, basic and bearer auth, the token cache
//! credentials.rs  Docker's config.json: credentials, helpers, login and logout
//! tls.rs          roots: the system's, certs.d/HOST[:PORT]/*.crt, --cert-dir
//! pull.rs         manifest → platform → blobs into the store, four at once, order kept
//! push.rs         blobs (HEAD, mount, upload), manifest last with its bytes
//! edit.rs         append, rebase, mutate in a registry: only what changed moves
//! ```

mod auth;
mod client;
mod credentials;
mod edit;
mod pull;
mod push;
mod tls;

pub use client::BlobReader;
pub use client::{Client, ClientOptions};
pub use credentials::{login, logout, Credentials};
pub use edit::{ConfigChange, EditOptions};
pub use pull::{PullOptions, PullReport, RemoteImage};
pub use push::{PushOptions, PushReport};

use crate::digest::Digest;

/// The callback a pull or a push reports progress to.
pub(crate) type ProgressFn<'a> = Box<dyn FnMut(&Transfer) + Send + 'a>;

/// What a pull or a push did with one blob: reported to the progress callback as it happens,
/// and kept per layer in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transfer {
    /// The destination had the blob: nothing was sent (`Already exists`, `Layer already
    /// exists`).
    Exists {
        /// The blob.
        digest: Digest,
    },
    /// The registry linked the blob from another of its repositories (`Mounted from REPO`).
    Mounted {
        /// The blob.
        digest: Digest,
        /// The repository it came from (`library/busybox`).
        from: String,
    },
    /// Bytes of the blob moved so far.
    Moving {
        /// The blob.
        digest: Digest,
        /// Bytes moved.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// The blob arrived whole and verified (`Pull complete`, `Pushed`).
    Done {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
}

impl Transfer {
    /// The blob this is about.
    ///
    /// ```
    /// use layercake::registry::Transfer;
    /// use layercake::Digest;
    ///
    /// let digest = Digest::sha256(b"");
    /// assert_eq!(Transfer::Exists { digest }.digest(), digest);
    /// ```
    pub fn digest(&self) -> Digest {
        match self {
            Transfer::Exists { digest }
            | Transfer::Mounted { digest, .. }
            | Transfer::Moving { digest, .. }
            | Transfer::Done { digest, .. } => *digest,
        }
    }
}
