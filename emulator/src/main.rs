//! `dropbox-emulator [--port N] [--token T]...`: runs the emulator until killed.
//!
//! Prints `listening on http://127.0.0.1:PORT` on stdout once ready. Static access
//! tokens come from `--token` (repeatable); without any, the token is `emulator-token`.

use std::io::Write;
use std::process::ExitCode;

use dropbox_emulator::{Config, Emulator};

const USAGE: &str = "usage: dropbox-emulator [--port N] [--token T]...";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Config, String> {
    let mut config = Config::default();
    let mut tokens = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                config.port = value
                    .parse()
                    .map_err(|_| format!("invalid port {value:?}"))?;
            }
            "--token" => tokens.push(args.next().ok_or("--token needs a value")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if !tokens.is_empty() {
        config.static_tokens = tokens;
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("dropbox-emulator: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::start(config) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("dropbox-emulator: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", emulator.url());
    let _ = stdout.flush();
    loop {
        std::thread::park();
    }
}
