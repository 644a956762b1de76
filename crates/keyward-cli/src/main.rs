//! `keyward`: the server and its CLI client in one binary.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod commands;
mod config;
mod hygiene;
mod output;
mod settings;
mod values;

use std::process::ExitCode;

use crate::cli::Command;

fn main() -> ExitCode {
    hygiene::disable_core_dumps();
    hygiene::install_panic_hook();
    let cli = match settings::parse_from(std::env::args_os().collect()) {
        Ok(settings::Parsed { print: Some(text), .. }) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(parsed) => parsed.cli,
        Err(settings::SettingsError::Clap(e)) => e.exit(),
        Err(settings::SettingsError::Config(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => commands::server::run(*args).await,
            Command::Operator(cmd) => commands::operator::run(&cli.addr, cmd).await,
            Command::Secrets(cmd) => commands::secrets::run(&cli.addr, cmd).await,
            Command::Envs(cmd) => commands::envs::run(&cli.addr, cmd).await,
            Command::Mounts(cmd) => commands::mounts::run(&cli.addr, cmd).await,
            Command::Token(cmd) => commands::token::run(&cli.addr, cmd).await,
            Command::Policy(cmd) => commands::policy::run(&cli.addr, cmd).await,
            Command::Proxy(cmd) => commands::proxy::run(&cli.addr, cmd).await,
            Command::Run(args) => commands::run::run(&cli.addr, args).await,
            Command::Login(args) if args.method == "approle" => commands::auth::login_approle(&cli.addr, args).await,
            Command::Login(args) if args.method == "userpass" => commands::auth::login_userpass(&cli.addr, args).await,
            Command::Login(args) if args.method == "jwt" => commands::auth::login_jwt(&cli.addr, args).await,
            Command::User(cmd) => commands::auth::user(&cli.addr, cmd).await,
            Command::Login(args) => commands::session::login(&cli.addr, args.token_stdin).await,
            Command::Auth(cmd) => commands::auth::run(&cli.addr, cmd).await,
            Command::Approle(cmd) => commands::auth::approle(&cli.addr, cmd).await,
            Command::Logout => commands::session::logout(),
            Command::Unwrap => commands::secrets::unwrap(&cli.addr).await,
            Command::Status(out) => commands::session::status(&cli.addr, out).await,
            Command::Import(cmd) => commands::import::run(&cli.addr, cmd).await,
            Command::Completions { shell } => commands::docs::completions(shell),
            Command::Man { dir } => commands::docs::man_pages(&dir),
            Command::Keys(cmd) => commands::keys::run(&cli.addr, cmd).await,
            Command::Doctor { verify_all, out } => commands::keys::doctor(&cli.addr, verify_all, out.format).await,
            Command::Audit(cmd) => commands::audit::run(&cli.addr, cmd).await,
            Command::Gen(cmd) => commands::gen::run(cmd),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
