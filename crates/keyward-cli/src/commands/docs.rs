//! `keyward completions` and `keyward man`: generated from the clap definitions.
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// Prints a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    clap_complete::generate(shell, &mut Cli::command(), "keyward", &mut std::io::stdout());
    Ok(())
}

/// Writes `keyward.1` and one page per subcommand (`keyward-secrets-set.1`, …) into `dir`.
pub fn man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let cmd = Cli::command();
    let mut written = 0;
    write_pages(&cmd, "keyward", dir, &mut written)?;
    println!("Wrote {written} man page(s) to {}", dir.display());
    Ok(())
}

fn write_pages(cmd: &clap::Command, name: &str, dir: &Path, written: &mut usize) -> Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).title(name.to_uppercase()).render(&mut out)?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out).with_context(|| format!("cannot write {}", file.display()))?;
    *written += 1;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
