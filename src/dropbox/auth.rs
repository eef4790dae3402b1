//! Dropbox OAuth 2.0 for a command-line tool: authorization code with PKCE and no redirect (the
//! user opens a URL, clicks Allow and pastes the code), `token_access_type=offline` for a refresh
//! token, which is stored in the user's config folder with mode 0600. Access tokens live only in
//! memory. No token is ever printed, logged or put in an error: [`Secret`] hides itself from
//! `Debug` and `Display`.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::api::{ApiError, Client};

/// Environment variables that supply credentials without `photoferry login`.
pub const TOKEN_ENV: &str = "PHOTOFERRY_DROPBOX_TOKEN";
pub const REFRESH_TOKEN_ENV: &str = "PHOTOFERRY_DROPBOX_REFRESH_TOKEN";
pub const APP_KEY_ENV: &str = "PHOTOFERRY_DROPBOX_APP_KEY";
/// Overrides the config folder (default `$XDG_CONFIG_HOME/photoferry` or `~/.config/photoferry`).
pub const CONFIG_DIR_ENV: &str = "PHOTOFERRY_CONFIG_DIR";

/// The scopes photoferry asks for: write files, read listings. Nothing else.
pub const SCOPES: &str = "files.content.write files.metadata.read";

/// A token or verifier. Never shown: `{:?}` and `{}` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What the client authenticates with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A short-lived access token (`PHOTOFERRY_DROPBOX_TOKEN`); cannot be refreshed.
    AccessToken(Secret),
    /// A refresh token and the app it belongs to: access tokens are minted as needed (starting
    /// with `access`, when one was given).
    Refresh { app_key: String, refresh_token: Secret, access: Option<Secret> },
}

impl Credentials {
    pub fn can_refresh(&self) -> bool {
        matches!(self, Credentials::Refresh { .. })
    }
}

/// Why there are no credentials to use.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("not logged in to Dropbox: run `photoferry login` (or set {TOKEN_ENV}, or {REFRESH_TOKEN_ENV} with {APP_KEY_ENV})")]
    NotLoggedIn,
    #[error("{REFRESH_TOKEN_ENV} is set but {APP_KEY_ENV} is not: a refresh token only works with its app key")]
    MissingAppKey,
    #[error("no Dropbox app key: pass --app-key, set {APP_KEY_ENV}, or put {{\"app_key\": \"...\"}} in the config file (see the README: \"Connect photoferry to Dropbox\")")]
    NoAppKey,
    #[error("config file {}: {why}", path.display())]
    BadConfig { path: PathBuf, why: String },
    #[error("token file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("token file {} is not valid ({why}); run `photoferry login` again", path.display())]
    BadFile { path: PathBuf, why: String },
    #[error("token file {} is readable by other users (mode {mode:o}); run `chmod 600` on it or log in again", path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The token file: `<config>/dropbox-token.json`, mode 0600.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredToken {
    pub app_key: String,
    pub refresh_token: Secret,
    #[serde(default)]
    pub account_id: Option<String>,
}

/// The user's photoferry config folder.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("photoferry"));
    }
    let home = PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?);
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Application Support/photoferry"))
    } else {
        Some(home.join(".config/photoferry"))
    }
}

pub fn token_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("dropbox-token.json"))
}

/// The settings file, `<config>/config.json`: `{"app_key": "..."}`.
pub fn config_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.json"))
}

/// The app key from the settings file, if it has one.
pub fn app_key_from_config() -> Result<Option<String>, AuthError> {
    let Some(path) = config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::Io { path, source: e }),
    };
    #[derive(Deserialize)]
    struct Config {
        app_key: Option<String>,
    }
    let c: Config = serde_json::from_str(&text).map_err(|e| AuthError::BadConfig { path, why: e.to_string() })?;
    Ok(c.app_key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()))
}

/// Read the token file, refusing one that others can read.
pub fn load_token(path: &Path) -> Result<Option<StoredToken>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::Io { path: path.into(), source: e }),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| AuthError::Io { path: path.into(), source: e })?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuthError::Permissions { path: path.into(), mode });
        }
    }
    // The serde error may quote the file; never echo it (it holds the token).
    serde_json::from_str(&text).map(Some).map_err(|e| AuthError::BadFile { path: path.into(), why: format!("line {}", e.line()) })
}

/// Write the token file atomically, created 0600 from the start (never briefly world-readable).
pub fn save_token(path: &Path, token: &StoredToken) -> Result<(), AuthError> {
    let io = |e| AuthError::Io { path: path.into(), source: e };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new().prefix(".dropbox-token").tempfile_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    serde_json::to_writer_pretty(&mut tmp, token).map_err(|e| io(e.into()))?;
    tmp.write_all(b"\n").map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The credentials to use, in order: `PHOTOFERRY_DROPBOX_REFRESH_TOKEN` with
/// `PHOTOFERRY_DROPBOX_APP_KEY` (and `PHOTOFERRY_DROPBOX_TOKEN` as the first access token, if set);
/// `PHOTOFERRY_DROPBOX_TOKEN` alone; the token file written by `photoferry login`.
pub fn credentials_from_env_or_file() -> Result<Credentials, AuthError> {
    let var = |k| std::env::var(k).ok().filter(|v: &String| !v.trim().is_empty());
    let access = var(TOKEN_ENV).map(|t| Secret::new(t.trim()));
    if let Some(r) = var(REFRESH_TOKEN_ENV) {
        let app_key = var(APP_KEY_ENV).ok_or(AuthError::MissingAppKey)?;
        return Ok(Credentials::Refresh { app_key, refresh_token: Secret::new(r.trim()), access });
    }
    if let Some(t) = access {
        return Ok(Credentials::AccessToken(t));
    }
    let path = token_path().ok_or(AuthError::NotLoggedIn)?;
    match load_token(&path)? {
        Some(t) => Ok(Credentials::Refresh { app_key: t.app_key, refresh_token: t.refresh_token, access: None }),
        None => Err(AuthError::NotLoggedIn),
    }
}

/// `/oauth2/token`'s answer.
#[derive(Debug, Deserialize)]
pub struct TokenGrant {
    pub access_token: Secret,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

pub(crate) fn refresh(client: &Client, app_key: &str, refresh_token: &str) -> Result<TokenGrant, ApiError> {
    client.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", app_key)])
}

/// A PKCE pair: the verifier stays here, the challenge goes in the URL.
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    /// 128 characters from 96 random bytes (RFC 7636 allows 43–128 unreserved characters).
    pub fn generate() -> std::io::Result<Pkce> {
        let mut raw = [0u8; 96];
        getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Pkce::from_verifier(URL_SAFE_NO_PAD.encode(raw)))
    }

    pub fn from_verifier(verifier: String) -> Pkce {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce { verifier: Secret::new(verifier), challenge }
    }
}

/// The page the user opens to allow access.
pub fn authorize_url(client: &Client, app_key: &str, pkce: &Pkce) -> String {
    let q = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "{}/oauth2/authorize?client_id={}&response_type=code&token_access_type=offline&code_challenge={}&code_challenge_method=S256&scope={}",
        client.endpoints.authorize,
        q(app_key),
        q(&pkce.challenge),
        q(SCOPES)
    )
}

/// Trade the pasted code for tokens.
pub fn exchange_code(client: &Client, app_key: &str, code: &str, pkce: &Pkce) -> Result<TokenGrant, ApiError> {
    client.token_request(&[
        ("grant_type", "authorization_code"),
        ("code", code.trim()),
        ("client_id", app_key),
        ("code_verifier", pkce.verifier.expose()),
    ])
}

/// Revoke the token the client holds (Dropbox also disables the refresh token it came from).
pub fn revoke(client: &Client) -> Result<(), ApiError> {
    client.rpc::<_, serde_json::Value>("/2/auth/token/revoke", &serde_json::Value::Null).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc7636_s256() {
        // RFC 7636 appendix B.
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let g = Pkce::generate().unwrap();
        assert_eq!(g.verifier.expose().len(), 128);
        assert!(g.verifier.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn secrets_never_print() {
        let c = Credentials::Refresh { app_key: "key".into(), refresh_token: Secret::new("sl.very-secret"), access: Some(Secret::new("sl.very-secret")) };
        let shown = format!("{c:?} {}", Secret::new("sl.very-secret"));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn token_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dropbox-token.json");
        let t = StoredToken { app_key: "k".into(), refresh_token: Secret::new("r-123"), account_id: Some("dbid:x".into()) };
        save_token(&path, &t).unwrap();
        let back = load_token(&path).unwrap().unwrap();
        assert_eq!(back.refresh_token.expose(), "r-123");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(load_token(&path), Err(AuthError::Permissions { mode: 0o644, .. })));
        }
    }
}
