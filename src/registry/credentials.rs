//! Docker's credential config: reading it for a registry (the file, credential helpers),
//! and `login` and `logout` writing it.
//!
//! Where credentials come from, first found wins: [`ClientOptions::credentials`]; the file
//! [`ClientOptions::auth_file`] names; `$REGISTRY_AUTH_FILE`; Docker's
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. A missing file, or a file with
//! no entry for the registry, means anonymous access; a file that is not JSON, or a
//! credential helper that fails, is an error naming the file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use serde_json::{Map, Value};

use super::client::ClientOptions;
use super::Client;
use crate::error::{Error, Result};

/// The key Docker writes Docker Hub's credentials under.
const HUB_KEY: &str = "https://index.docker.io/v1/";
/// The keys Docker reads Docker Hub's credentials from, in order.
const HUB_KEYS: [&str; 4] = [
    HUB_KEY,
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
];
/// The largest credential file read.
const FILE_BYTES: u64 = 16 << 20;

/// Credentials for a registry.
///
/// `Debug` never shows a password or token.
///
/// ```
/// use layercake::registry::Credentials;
///
/// let c = Credentials::Basic { username: "me".into(), password: "s3cret".into() };
/// assert_eq!(format!("{c:?}"), "Basic(me, ***)");
/// ```
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

/// Whether a registry name is Docker Hub.
pub(super) fn is_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// The credential file in force when none is named: `$REGISTRY_AUTH_FILE`, else Docker's
/// `config.json` (`$DOCKER_CONFIG`, else `~/.docker`); `None` without a home.
fn default_file() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(file) = var("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(file));
    }
    if let Some(dir) = var("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    var("HOME").map(|home| Path::new(&home).join(".docker").join("config.json"))
}

/// The file `options` read credentials from.
fn file_of(options: &ClientOptions) -> Option<PathBuf> {
    options.auth_file.clone().or_else(default_file)
}

/// An error about a credential file.
fn file_error(path: &Path, doing: &str, source: io::Error) -> Error {
    Error::io(format!("{doing} `{}`", path.display()), source)
}

/// The credentials `options` give for `registry` (a reference's domain).
pub(super) fn lookup(options: &ClientOptions, registry: &str) -> Result<Credentials> {
    if let Some((username, password)) = &options.credentials {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        });
    }
    let Some(path) = file_of(options) else {
        return Ok(Credentials::Anonymous);
    };
    let Some(bytes) = read_file(&path)? else {
        return Ok(Credentials::Anonymous);
    };
    let Ok(Value::Object(mut config)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(file_error(
            &path,
            "reading credentials from",
            io::Error::new(io::ErrorKind::InvalidData, "not a JSON object"),
        ));
    };
    // An empty `credsStore` means none, to Docker; docker_credential would run
    // `docker-credential-` for it.
    if config
        .get("credsStore")
        .is_some_and(|s| s.as_str() == Some(""))
    {
        config.remove("credsStore");
    }
    let bytes = serde_json::to_vec(&Value::Object(config)).unwrap_or_default();
    let keys: Vec<&str> = if is_hub(registry) {
        HUB_KEYS.to_vec()
    } else {
        vec![registry]
    };
    for key in keys {
        match docker_credential::get_credential_from_reader(&bytes[..], key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Ok(Credentials::Basic { username, password })
            }
            Ok(DockerCredential::IdentityToken(token)) => {
                return Ok(Credentials::IdentityToken(token))
            }
            Err(CredentialRetrievalError::NoCredentialConfigured) => {}
            // What helpers say when they hold nothing for this server (docker-credential-helpers'
            // `credentials not found in native keychain`): anonymous, as in Docker.
            Err(CredentialRetrievalError::HelperFailure { stdout, stderr, .. })
                if stdout.contains("credentials not found")
                    || stderr.contains("credentials not found") => {}
            Err(CredentialRetrievalError::ConfigReadError) => {
                return Err(file_error(
                    &path,
                    "reading credentials from",
                    io::Error::new(io::ErrorKind::InvalidData, "not a valid credential file"),
                ))
            }
            Err(e) => {
                return Err(file_error(
                    &path,
                    &format!("reading credentials for {registry} from"),
                    io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                ))
            }
        }
    }
    Ok(Credentials::Anonymous)
}

/// A credential file's bytes; `None` if there is no such file.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, "opening", e)),
    };
    let mut bytes = Vec::new();
    file.take(FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, "reading", e))?;
    if bytes.len() as u64 > FILE_BYTES {
        return Err(Error::LimitExceeded {
            limit: "credential file bytes",
            value: bytes.len() as u64,
            max: FILE_BYTES,
        });
    }
    Ok(Some(bytes))
}

/// What `login` and `logout` are told (`docker.io`, `https://index.docker.io/v1/`,
/// `localhost:5000`), as the registry to ask and the key of its entry.
fn server(registry: &str) -> Result<(String, String)> {
    let rest = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidReference {
            reference: registry.to_owned(),
            reason: "not a registry host",
        });
    }
    if is_hub(host) {
        return Ok(("docker.io".to_owned(), HUB_KEY.to_owned()));
    }
    Ok((host.to_owned(), host.to_owned()))
}

/// Whether a key of `auths` names the registry `key` is written for.
fn same_server(entry: &str, key: &str) -> bool {
    let host = |k: &str| -> String {
        let rest = k
            .strip_prefix("https://")
            .or_else(|| k.strip_prefix("http://"))
            .unwrap_or(k);
        let host = rest.split('/').next().unwrap_or("");
        if is_hub(host) {
            "docker.io".to_owned()
        } else {
            host.to_owned()
        }
    };
    host(entry) == host(key)
}

/// Checks `username`/`password` against `registry`, then stores them in `auth_file` (or
/// the client's [`ClientOptions::auth_file`], `$REGISTRY_AUTH_FILE`, Docker's
/// `config.json`) as `docker login` does; returns the file written.
///
/// The check is a ping of `/v2/` through the registry's own auth: basic auth sent to it,
/// or a token asked of its token server with these credentials. The entry written is
/// `{"auths": {KEY: {"auth": base64(user:pass)}}}`, `KEY` being `https://index.docker.io/v1/`
/// for Docker Hub and `host[:port]` otherwise; every other key of the file is kept. The
/// directory is created mode 0700 and the file written mode 0600, by rename.
///
/// ```no_run
/// use layercake::registry::{login, Client};
///
/// let client = Client::new();
/// let file = login(&client, "localhost:5000", "me", "s3cret", None)?;
/// println!("credentials stored in {}", file.display());
/// # Ok::<(), layercake::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Registry`] with status 401 when the registry refuses the credentials, or when
/// it cannot be reached; [`Error::Io`] naming the file when it cannot be read or written,
/// or is not a JSON object.
pub fn login(
    client: &Client,
    registry: &str,
    username: &str,
    password: &str,
    auth_file: Option<&Path>,
) -> Result<PathBuf> {
    let (name, key) = server(registry)?;
    let checker = Client::with_options(client.options().clone().credentials(username, password));
    checker.ping(&name)?;
    let path = auth_file
        .map(Path::to_path_buf)
        .or_else(|| file_of(client.options()))
        .ok_or_else(no_home)?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    update(&path, |auths| {
        let mut entry = Map::new();
        entry.insert("auth".to_owned(), Value::String(auth));
        auths.insert(key, Value::Object(entry));
        true
    })?;
    Ok(path)
}

/// Removes `registry`'s credentials from `auth_file` (or `$REGISTRY_AUTH_FILE`, Docker's
/// `config.json`); whether there were any.
///
/// Every entry naming the registry goes (for Docker Hub, `https://index.docker.io/v1/`,
/// `docker.io` and the other names Docker reads). The file is rewritten only when
/// something was removed.
///
/// ```
/// use layercake::registry::logout;
///
/// let dir = std::env::temp_dir().join(format!("layercake-logout-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let file = dir.join("auth.json");
/// std::fs::write(&file, r#"{"auths":{"localhost:5000":{"auth":"bWU6cHc="}},"other":1}"#)?;
/// assert!(logout("localhost:5000", Some(&file))?);
/// assert!(!logout("localhost:5000", Some(&file))?, "nothing left to remove");
/// let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
/// assert_eq!(kept["other"], 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::Io`] naming the file when it cannot be read or written, or is not a JSON
/// object.
pub fn logout(registry: &str, auth_file: Option<&Path>) -> Result<bool> {
    let (_, key) = server(registry)?;
    let path = match auth_file {
        Some(path) => path.to_path_buf(),
        None => default_file().ok_or_else(no_home)?,
    };
    if !path.exists() {
        return Ok(false);
    }
    update(&path, |auths| {
        let before = auths.len();
        auths.retain(|entry, _| !same_server(entry, &key));
        auths.len() != before
    })
}

fn no_home() -> Error {
    Error::Io {
        context: "finding the credential file".to_owned(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            "neither REGISTRY_AUTH_FILE, DOCKER_CONFIG nor HOME is set",
        ),
    }
}

/// Changes the `auths` object of a credential file (created if missing); writes the file
/// back, atomically, if `change` says it changed something. Returns that.
fn update(path: &Path, change: impl FnOnce(&mut Map<String, Value>) -> bool) -> Result<bool> {
    let invalid = |what: &str| {
        file_error(
            path,
            "updating credentials in",
            io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
        )
    };
    let mut root = match read_file(path)? {
        None => Map::new(),
        Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(invalid("the file is not a JSON object")),
            Err(_) => return Err(invalid("the file is not JSON")),
        },
    };
    let auths = root
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if auths.is_null() {
        *auths = Value::Object(Map::new());
    }
    let Value::Object(auths) = auths else {
        return Err(invalid("`auths` is not a JSON object"));
    };
    if !change(auths) {
        return Ok(false);
    }
    let mut text =
        serde_json::to_vec_pretty(&Value::Object(root)).map_err(|e| invalid(&e.to_string()))?;
    text.push(b'\n');
    write_atomic(path, &text)?;
    Ok(true)
}

/// Writes a file by rename: a temporary file beside it (mode 0600), synced, renamed over
/// it; the directory created (mode 0700) if missing.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| file_error(&dir, "creating the directory", e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".to_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(file_error(path, "writing", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "layercake-cred-{label}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn options(file: &Path) -> ClientOptions {
        ClientOptions::new().auth_file(file)
    }

    #[test]
    fn servers_and_keys() {
        assert_eq!(
            server("docker.io").unwrap(),
            ("docker.io".into(), HUB_KEY.into())
        );
        assert_eq!(server(HUB_KEY).unwrap().1, HUB_KEY);
        assert_eq!(server("registry-1.docker.io").unwrap().1, HUB_KEY);
        assert_eq!(
            server("https://localhost:5000/v2/").unwrap(),
            ("localhost:5000".into(), "localhost:5000".into())
        );
        assert!(server("").is_err());
        assert!(same_server("https://index.docker.io/v1/", HUB_KEY));
        assert!(same_server("docker.io", HUB_KEY));
        assert!(same_server("https://quay.io", "quay.io"));
        assert!(!same_server("quay.io:443", "quay.io"));
    }

    #[test]
    fn missing_file_or_entry_is_anonymous() {
        let dir = temp("missing");
        let file = dir.join("none.json");
        assert_eq!(
            lookup(&options(&file), "localhost:5000").unwrap(),
            Credentials::Anonymous
        );
        fs::create_dir_all(&dir).unwrap();
        fs::write(&file, r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#).unwrap();
        assert_eq!(
            lookup(&options(&file), "localhost:5000").unwrap(),
            Credentials::Anonymous
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn malformed_file_names_it() {
        let dir = temp("malformed");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        fs::write(&file, "{not json").unwrap();
        let err = lookup(&options(&file), "quay.io").unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_creds_store_is_none() {
        let dir = temp("store");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        fs::write(&file, r#"{"auths":{},"credsStore":""}"#).unwrap();
        assert_eq!(
            lookup(&options(&file), "quay.io").unwrap(),
            Credentials::Anonymous
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hub_keys_and_overrides() {
        let dir = temp("hub");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        // `docker.io` as the key; `u:p` in base64.
        fs::write(&file, r#"{"auths":{"docker.io":{"auth":"dTpw"}}}"#).unwrap();
        let basic = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        assert_eq!(lookup(&options(&file), "docker.io").unwrap(), basic);
        fs::write(
            &file,
            r#"{"auths":{"registry-1.docker.io":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        assert_eq!(
            lookup(&options(&file), "docker.io").unwrap(),
            Credentials::IdentityToken("tok".into())
        );
        let forced = options(&file).credentials("a", "b");
        assert_eq!(
            lookup(&forced, "docker.io").unwrap(),
            Credentials::Basic {
                username: "a".into(),
                password: "b".into()
            }
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn update_keeps_other_keys_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("update").join("nested");
        let file = dir.join("auth.json");
        assert!(update(&file, |auths| {
            auths.insert("a".into(), Value::Null);
            true
        })
        .unwrap());
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::write(&file, r#"{"credsStore":"x","auths":{"b":{}}}"#).unwrap();
        update(&file, |auths| {
            auths.insert("c".into(), Value::Null);
            true
        })
        .unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "x");
        assert!(v["auths"]["b"].is_object() && v["auths"]["c"].is_null());
        fs::write(&file, "[1]").unwrap();
        assert!(update(&file, |_| true).is_err());
        fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
