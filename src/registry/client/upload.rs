//! Writing to a registry: blobs (mounted from another repository, or uploaded whole or in
//! chunks, started over after a failure) and manifests.

use std::io::{self, Read};

use bytes::Bytes;
use ureq::http::Method;

use super::transport::{drain, header, Budget, Op, Registry, Req};
use super::{check_claimed, manifest_target, Client, Transfer};
use crate::archive::oci::Descriptor;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::registry::auth::{encode, pull_scope, push_scope};

impl Client {
    /// Puts a blob into `reference`'s repository: mounted from the first of `mount_from`
    /// (repositories of the same registry) that the registry links, else uploaded from
    /// what `open` gives (called again to start over after a failure). Returns
    /// [`Transfer::Mounted`] or [`Transfer::Done`]; `progress` hears bytes sent.
    ///
    /// A mount is `POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=SOURCE` with one token for
    /// both repositories. An upload is one `PUT` for a blob of at most
    /// [`Client::CHUNK_BYTES`], else `PATCH`es of that size and a closing `PUT`. The bytes
    /// are checked against `blob`'s size and digest before the closing request, so a wrong
    /// source fails here, not in the registry. `progress` hears the bytes sent so far by
    /// the current attempt (it starts again from 0 when an upload starts over).
    ///
    /// ```no_run
    /// use layercake::archive::oci::Descriptor;
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let client = Client::new();
    /// let bytes = b"{}".to_vec();
    /// let blob = Descriptor::of("application/vnd.oci.image.config.v1+json", &bytes);
    /// let transfer = client.put_blob(
    ///     &Reference::parse("localhost:5000/app:1")?,
    ///     &blob,
    ///     &["library/base".to_owned()],
    ///     &mut || Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
    ///     &mut |sent| println!("{sent} bytes sent"),
    /// )?;
    /// println!("{transfer:?}");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] when the registry refuses or cannot be reached within the retry
    /// budget; [`Error::SizeMismatch`], [`Error::DigestMismatch`] when `open` gives other
    /// bytes than `blob` describes; what `open` returns.
    pub fn put_blob(
        &self,
        reference: &Reference,
        blob: &Descriptor,
        mount_from: &[String],
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Transfer> {
        let (reg, repo) = self.target(reference)?;
        let mut budget = Budget::new(self.options());
        let digest = blob.digest;
        let sources: Vec<&String> = mount_from
            .iter()
            .filter(|s| !s.is_empty() && s.as_str() != repo)
            .collect();
        let mut location = None;
        for (i, source) in sources.iter().enumerate() {
            let url = format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                encode(&digest.to_string()),
                encode(source)
            );
            let mut op = Op::new(
                repo,
                &Method::POST,
                &url,
                [push_scope(repo), pull_scope(source)],
            );
            let req = Req::new(Method::POST, url).body(&[]);
            let mut response = match self.execute(&reg, &mut op, &req, &mut budget) {
                Ok(response) => response,
                // Refused (no right to read the source): try the next, then upload.
                Err(Error::Registry {
                    status: Some(400..=499),
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            match response.status().as_u16() {
                201 => {
                    drain(&mut response);
                    return Ok(Transfer::Mounted {
                        digest,
                        from: (*source).clone(),
                    });
                }
                202 => {
                    let started = self.location(&reg, &op, &mut response)?;
                    if i + 1 < sources.len() {
                        // Not there: give the session back and try the next source.
                        let mut cancel = Op::new(repo, &Method::DELETE, &started, []);
                        cancel.scopes = op.scopes.clone();
                        let req = Req::new(Method::DELETE, started).once();
                        if let Ok(mut r) = self.execute(&reg, &mut cancel, &req, &mut budget) {
                            drain(&mut r);
                        }
                    } else {
                        location = Some(started);
                    }
                }
                _ => drain(&mut response),
            }
        }
        loop {
            match self.upload(
                &reg,
                repo,
                blob,
                location.take(),
                open,
                progress,
                &mut budget,
            ) {
                Ok(transfer) => return Ok(transfer),
                Err(e) if restartable(&e) => {
                    // Each attempt gets the whole time; the count bounds the attempts.
                    budget.restart_clock();
                    if !budget.pause(None) {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt at an upload: a session (the one given, or a new one), the bytes, the
    /// closing `PUT`.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        reg: &Registry,
        repo: &str,
        blob: &Descriptor,
        location: Option<String>,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + Send>>,
        progress: &mut dyn FnMut(u64),
        budget: &mut Budget,
    ) -> Result<Transfer> {
        let digest = blob.digest;
        let scopes = [push_scope(repo)];
        let mut location = match location {
            Some(location) => location,
            None => {
                let url = format!("/v2/{repo}/blobs/uploads/");
                let mut op = Op::new(repo, &Method::POST, &url, scopes.clone());
                let req = Req::new(Method::POST, url).body(&[]);
                let mut response = self.execute(reg, &mut op, &req, budget)?;
                if !response.status().is_success() {
                    return Err(self.status_error(reg, &op, &mut response));
                }
                self.location(reg, &op, &mut response)?
            }
        };
        let what = || format!("blob {digest} to upload");
        let mut reader = HashingReader::new(open()?);
        let read_error = |e| Error::io(format!("reading blob {digest} to upload"), e);
        let mut chunk = Vec::new();
        let mut sent = 0u64;
        loop {
            chunk.clear();
            (&mut reader)
                .take(Client::CHUNK_BYTES)
                .read_to_end(&mut chunk)
                .map_err(read_error)?;
            if chunk.is_empty() {
                break;
            }
            if sent + chunk.len() as u64 > blob.size {
                // Count what is left, to say how long the source really is.
                let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
                return Err(Error::SizeMismatch {
                    what: what(),
                    expected: blob.size,
                    actual: sent + chunk.len() as u64 + rest,
                });
            }
            if blob.size <= Client::CHUNK_BYTES {
                // Monolithic: the whole blob goes with the closing PUT, if that was all.
                sent = chunk.len() as u64;
                let rest = io::copy(&mut reader, &mut io::sink()).map_err(read_error)?;
                if rest > 0 {
                    return Err(Error::SizeMismatch {
                        what: what(),
                        expected: blob.size,
                        actual: sent + rest,
                    });
                }
                break;
            }
            let end = sent + chunk.len() as u64 - 1;
            let mut op = Op::new(repo, &Method::PATCH, &location, scopes.clone());
            let req = Req::new(Method::PATCH, location.clone())
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{sent}-{end}"))
                .body(&chunk)
                .once();
            let mut response = self.execute(reg, &mut op, &req, budget)?;
            if !response.status().is_success() {
                return Err(self.status_error(reg, &op, &mut response));
            }
            if header(&response, "location").is_some() {
                location = self.location(reg, &op, &mut response)?;
            } else {
                drain(&mut response);
            }
            sent = end + 1;
            progress(sent);
        }
        if sent != blob.size {
            return Err(Error::SizeMismatch {
                what: what(),
                expected: blob.size,
                actual: sent,
            });
        }
        if reader.digest() != digest {
            return Err(Error::DigestMismatch {
                what: what(),
                expected: digest,
                actual: reader.digest(),
            });
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", encode(&digest.to_string()));
        let body: &[u8] = if blob.size <= Client::CHUNK_BYTES {
            &chunk
        } else {
            &[]
        };
        let mut op = Op::new(repo, &Method::PUT, &url, scopes);
        let mut req = Req::new(Method::PUT, url).body(body).once();
        if !body.is_empty() {
            req = req.header("content-type", "application/octet-stream");
        }
        let mut response = self.execute(reg, &mut op, &req, budget)?;
        if !response.status().is_success() {
            return Err(self.status_error(reg, &op, &mut response));
        }
        check_claimed(&response, digest, || format!("blob {digest} as uploaded"))?;
        drain(&mut response);
        if blob.size <= Client::CHUNK_BYTES {
            progress(sent);
        }
        Ok(Transfer::Done {
            digest,
            size: blob.size,
        })
    }

    /// PUTs a manifest or index under `reference` (its tag, or its digest), with these
    /// bytes exactly; returns its digest.
    ///
    /// ```no_run
    /// use bytes::Bytes;
    /// use layercake::archive::oci::MANIFEST_V1;
    /// use layercake::registry::Client;
    /// use layercake::{Digest, Reference};
    /// # fn manifest_bytes() -> Bytes { unimplemented!() }
    ///
    /// let client = Client::new();
    /// let bytes = manifest_bytes();
    /// let digest = client.put_manifest(&Reference::parse("localhost:5000/app:1")?, MANIFEST_V1, &bytes)?;
    /// assert_eq!(digest, Digest::sha256(&bytes));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`] when the reference is pinned to another digest than the
    /// bytes', or the registry names another; [`Error::Registry`] when it refuses them
    /// (`MANIFEST_BLOB_UNKNOWN`, `MANIFEST_INVALID`).
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<Digest> {
        let (reg, repo) = self.target(reference)?;
        let digest = Digest::sha256(bytes);
        if let (Some(pin), None) = (reference.digest(), reference.tag()) {
            if pin != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest to put as {reference}"),
                    expected: pin,
                    actual: digest,
                });
            }
        }
        let mut budget = Budget::new(self.options());
        let url = format!("/v2/{repo}/manifests/{}", manifest_target(reference));
        let mut op = Op::new(repo, &Method::PUT, &url, [push_scope(repo)]);
        let req = Req::new(Method::PUT, url)
            .header("content-type", media_type)
            .body(bytes);
        let mut response = self.execute(&reg, &mut op, &req, &mut budget)?;
        if !response.status().is_success() {
            return Err(self.status_error(&reg, &op, &mut response));
        }
        check_claimed(&response, digest, || {
            format!("manifest {reference} as stored")
        })?;
        drain(&mut response);
        Ok(digest)
    }
}

/// Whether an upload that failed this way may start over: no answer, a 5xx or 429, or a
/// session the registry forgot.
fn restartable(e: &Error) -> bool {
    match e {
        Error::Registry { status: None, .. } => true,
        Error::Registry {
            status: Some(status),
            code,
            ..
        } => {
            *status >= 500
                || *status == 429
                || *status == 416
                || (*status == 404 && code.as_deref() == Some("BLOB_UPLOAD_UNKNOWN"))
        }
        _ => false,
    }
}
