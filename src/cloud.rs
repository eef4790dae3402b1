//! The Dropbox commands of the binary: `login`, `logout`, `upload`, `verify`. They turn the
//! library's reports into messages and exit codes; no token ever reaches the output.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use photoferry::dropbox::api::{Client, Endpoints};
use photoferry::dropbox::auth::{self, AuthError, Credentials, Pkce, Secret, StoredToken};
use photoferry::dropbox::upload::{self, Decision, UploadOptions, UploadReport};
use photoferry::dropbox::verify::{self, VerifyReport};

use super::{fatal, Bar};

fn client(creds: Credentials) -> Result<Client, String> {
    Client::new(Endpoints::from_env(), creds).map_err(|e| e.to_string())
}

pub fn login(app_key: Option<String>) -> ExitCode {
    let Some(path) = auth::token_path() else { return fatal("cannot find a config folder: set HOME or PHOTOFERRY_CONFIG_DIR") };
    let saved = auth::load_token(&path).ok().flatten();
    let from_config = match auth::app_key_from_config() {
        Ok(k) => k,
        Err(e) => return fatal(&e.to_string()),
    };
    // The key: --app-key, then the environment, then config.json, then the saved login's.
    let app_key = app_key
        .or_else(|| std::env::var(auth::APP_KEY_ENV).ok().filter(|k| !k.trim().is_empty()))
        .or(from_config)
        .or_else(|| saved.map(|s| s.app_key));
    let Some(app_key) = app_key else { return fatal(&AuthError::NoAppKey.to_string()) };
    let app_key = app_key.trim().to_string();
    // The token endpoint needs no bearer token; the grant itself authenticates.
    let client = match client(Credentials::AccessToken(Secret::new(""))) {
        Ok(c) => c,
        Err(e) => return fatal(&e),
    };
    let pkce = match Pkce::generate() {
        Ok(p) => p,
        Err(e) => return fatal(&format!("no randomness for the login: {e}")),
    };
    let url = auth::authorize_url(&client, &app_key, &pkce);
    {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "1. Open this link in a browser and sign in to Dropbox:");
        let _ = writeln!(err);
        let _ = writeln!(err, "   {url}");
        let _ = writeln!(err);
        let _ = writeln!(err, "2. Click \"Allow\". Dropbox then shows an access code.");
        let _ = write!(err, "3. Paste the code here and press Enter: ");
        let _ = err.flush();
    }
    let mut code = String::new();
    if std::io::stdin().lock().read_line(&mut code).is_err() || code.trim().is_empty() {
        return fatal("no code entered; nothing was saved");
    }
    let grant = match auth::exchange_code(&client, &app_key, &code, &pkce) {
        Ok(g) => g,
        Err(e) => return fatal(&format!("{e} (codes work once and expire within minutes: run login again)")),
    };
    let Some(refresh_token) = grant.refresh_token else {
        return fatal("Dropbox returned no refresh token (offline access); check the app's settings");
    };
    let stored = StoredToken { app_key, refresh_token, account_id: grant.account_id.clone() };
    if let Err(e) = auth::save_token(&path, &stored) {
        return fatal(&e.to_string());
    }
    eprintln!();
    eprintln!(
        "Logged in{}. The login is saved in {} (readable only by you).",
        grant.account_id.map(|a| format!(" to account {a}")).unwrap_or_default(),
        path.display()
    );
    ExitCode::SUCCESS
}

pub fn logout() -> ExitCode {
    let Some(path) = auth::token_path() else { return fatal("cannot find a config folder: set HOME or PHOTOFERRY_CONFIG_DIR") };
    let stored = match auth::load_token(&path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!("Not logged in (no {}); nothing to do.", path.display());
            return ExitCode::SUCCESS;
        }
        // A token file others can read is still ours to revoke and delete.
        Err(AuthError::Permissions { .. }) => match std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()) {
            Some(t) => t,
            None => return fatal(&format!("cannot read {}", path.display())),
        },
        Err(e) => return fatal(&e.to_string()),
    };
    let revoked = client(Credentials::Refresh { app_key: stored.app_key, refresh_token: stored.refresh_token, access: None })
        .and_then(|c| auth::revoke(&c).map_err(|e| e.to_string()));
    if let Err(e) = std::fs::remove_file(&path) {
        return fatal(&format!("could not delete {}: {e}", path.display()));
    }
    match revoked {
        Ok(()) => {
            eprintln!("Logged out: Dropbox access revoked and {} deleted.", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Deleted {}, but Dropbox did not confirm the revocation ({e}).", path.display());
            eprintln!("To be sure, remove the app at https://www.dropbox.com/account/connected_apps");
            ExitCode::from(1)
        }
    }
}

pub fn upload(opts: &UploadOptions, json: bool, verbose: bool, progress: &Bar) -> ExitCode {
    if !opts.dir.is_dir() {
        return fatal(&format!("{} is not a folder", opts.dir.display()));
    }
    let client = match auth::credentials_from_env_or_file() {
        Ok(c) => match client(c) {
            Ok(c) => Some(c),
            Err(e) => return fatal(&e),
        },
        // A dry run may plan against what the manifest remembers of Dropbox.
        Err(AuthError::NotLoggedIn) if opts.dry_run => None,
        Err(e) => return fatal(&e.to_string()),
    };
    let report = match upload::upload(client.as_ref(), opts, progress) {
        Ok(r) => r,
        Err(e) => return fatal(&e.to_string()),
    };
    progress.clear();
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        print_upload(&report, verbose, client.is_none());
    }
    // Errors go to stderr in every mode, so a --json run still shows what failed.
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if !report.errors.is_empty() {
        eprintln!("{} file(s) not uploaded; see the lines above.", report.errors.len());
    }
    if let Some(f) = &report.fatal {
        eprintln!("photoferry: error: {f}");
        return ExitCode::from(2);
    }
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_upload(r: &UploadReport, verbose: bool, offline: bool) {
    let mut o = std::io::stdout().lock();
    let to_send: Vec<_> = r.plan.iter().filter(|p| matches!(p.decision, Decision::Upload { .. })).collect();
    if r.dry_run {
        if offline {
            let _ = writeln!(o, "Not logged in: planning against what this folder's manifest remembers of Dropbox.");
        }
        let _ = writeln!(o, "Plan for {} (dry run: nothing is sent)", r.to);
        for p in &r.plan {
            match &p.decision {
                Decision::Upload { remote, renamed } => {
                    let _ = writeln!(o, "send    {}  -> {}{}  ({})", p.local, remote, if *renamed { "  [renamed: a different file holds the name]" } else { "" }, human_bytes(p.size));
                }
                Decision::Present { remote } if verbose => {
                    let _ = writeln!(o, "present {}  = {}", p.local, remote);
                }
                Decision::Refused { remote } => {
                    let _ = writeln!(o, "refuse  {}  (a different file is at {remote})", p.local);
                }
                Decision::Present { .. } => {}
            }
        }
        let bytes: u64 = to_send.iter().map(|p| p.size).sum();
        let _ = writeln!(o, "Would send {} file(s), {}; {} already in Dropbox.", to_send.len(), human_bytes(bytes), r.already_there);
    } else {
        if verbose {
            for p in &r.plan {
                if let Decision::Upload { remote, .. } = &p.decision {
                    let _ = writeln!(o, "sent    {}  -> {remote}", p.local);
                }
            }
        }
        let _ = writeln!(
            o,
            "Uploaded {} to {}; {} already there. {}, {} sent.",
            count(r.uploaded, "file", &format!(", {}", human_bytes(r.uploaded_bytes))),
            r.to,
            r.already_there,
            count(r.api_calls, "API call", ""),
            human_bytes(r.bytes_sent)
        );
    }
    for (local, remote) in &r.renamed {
        let _ = writeln!(o, "renamed: {local} -> {remote} (Dropbox holds a different file under the original name)");
    }
    for (path, why) in &r.left_out {
        let _ = writeln!(o, "not sent: {path}: {why}");
    }
}

/// `1 file`, `2 files` (+ `extra` when there were any).
fn count(n: u64, what: &str, extra: &str) -> String {
    match n {
        0 => format!("0 {what}s"),
        1 => format!("1 {what}{extra}"),
        n => format!("{n} {what}s{extra}"),
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

pub fn verify(dir: &Path, dropbox: Option<&str>, json: bool, progress: &Bar) -> ExitCode {
    let root = dropbox.map(upload::normalize_root);
    let client = match &root {
        Some(_) => match auth::credentials_from_env_or_file().map_err(|e| e.to_string()).and_then(client) {
            Ok(c) => Some(c),
            Err(e) => return fatal(&e),
        },
        None => None,
    };
    let report = match verify::verify(dir, client.as_ref(), root.as_deref(), progress) {
        Ok(r) => r,
        Err(e) => return fatal(&e.to_string()),
    };
    progress.clear();
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        print_verify(&report);
    }
    if report.differences.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn print_verify(r: &VerifyReport) {
    let mut o = std::io::stdout().lock();
    let color = std::io::stdout().is_terminal();
    // Each column: a file count and a digest of the folder's (name, hash) pairs. Manifest and
    // disk digests are over BLAKE3, Dropbox's over its content_hash, so they match across rows,
    // not across columns.
    let _ = write!(o, "{:<28} {:>17} {:>17}", "year/album", "manifest·blake3", "disk·blake3");
    if r.dropbox.is_some() {
        let _ = write!(o, " {:>17}", "dropbox·content");
    }
    let _ = writeln!(o, "  status");
    for g in &r.groups {
        let _ = write!(o, "{:<28} {:>6} {} {:>6} {}", g.group, g.manifest, &g.manifest_digest[..10], g.disk, &g.disk_digest[..10]);
        if let Some(n) = g.dropbox {
            let d = g.dropbox_digest.as_deref().unwrap_or("");
            let _ = write!(o, " {:>6} {}", n, &d[..d.len().min(10)]);
        }
        let status = match (g.ok, color) {
            (true, true) => "\x1b[32mok\x1b[0m",
            (true, false) => "ok",
            (false, true) => "\x1b[31mDIFFERENT\x1b[0m",
            (false, false) => "DIFFERENT",
        };
        let _ = writeln!(o, "  {status}");
    }
    if r.no_manifest {
        let _ = writeln!(o, "(no organize manifest in this folder: the manifest column is empty and not compared)");
    }
    for d in &r.differences {
        let _ = writeln!(o, "{:<20} {}: {}", d.kind, d.path, d.detail);
    }
    let where_ = match &r.dropbox {
        Some(root) => format!("manifest, disk and Dropbox {root}"),
        None => "manifest and disk".to_string(),
    };
    if r.differences.is_empty() {
        let _ = writeln!(o, "All {} files agree ({where_}).", r.files_on_disk);
    } else {
        let _ = writeln!(o, "{} difference(s) between {where_}. Exit code 1.", r.differences.len());
    }
}
