//! `keyward secrets …`.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use keyward_api::wire::{ReadQuery, SecretWriteRequest, StaleQuery, WriteResult};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::{ExportFormat, Format, SecretsCommand};
use crate::client::Client;
use crate::output::{json, table};
use crate::values::read_pairs;
use keyward_cli::dotenv;

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_write(r: &WriteResult, format: Format) -> Result<()> {
    if format == Format::Json {
        return json(r);
    }
    let target = format!("{}/{}", r.mount, r.path);
    if !r.created {
        println!("No change in {target} (version {} unchanged)", r.version);
        return Ok(());
    }
    let mut parts = Vec::new();
    for (label, names) in [("added", &r.added), ("changed", &r.changed), ("removed", &r.removed)] {
        if !names.is_empty() {
            parts.push(format!("{label} {}", names.join(", ")));
        }
    }
    println!("{target} is now version {}: {}", r.version, parts.join("; "));
    Ok(())
}

fn read_source(file: &str) -> Result<Zeroizing<String>> {
    let mut text = Zeroizing::new(String::new());
    if file == "-" {
        std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
    } else {
        *text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    }
    Ok(text)
}

/// The plaintext map of an environment, as strings (for export).
async fn string_map(client: &Client, project: &str, env: &str) -> Result<BTreeMap<String, String>> {
    let query = ReadQuery { reveal: Some(true), export: Some(true), ..ReadQuery::default() };
    let view = client.read(project, env, &query).await?;
    let mut map = BTreeMap::new();
    let mut non_strings = Vec::new();
    for f in view.fields {
        match f.value {
            Value::String(s) => {
                map.insert(f.name, s);
            }
            _ => non_strings.push(f.name),
        }
    }
    if !non_strings.is_empty() {
        bail!("these fields are not strings and cannot be exported as text: {}", non_strings.join(", "));
    }
    Ok(map)
}

fn write_private_file(path: &Path, contents: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // An existing file keeps its mode on open: narrow it before writing plaintext.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set mode 0600 on {}", path.display()))?;
    f.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all().with_context(|| format!("cannot write {}", path.display()))
}

/// Where a Kubernetes export goes: the Secret's name and namespace.
struct K8sTarget<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
}

fn render_export(map: &BTreeMap<String, String>, format: ExportFormat, k8s: &K8sTarget<'_>) -> Result<String> {
    let (valid, kind): (fn(&str) -> bool, &str) = match format {
        ExportFormat::Json => return Ok(dotenv::render_json(map)),
        ExportFormat::Dotenv => (dotenv::valid_dotenv_name, "dotenv"),
        ExportFormat::Shell | ExportFormat::GithubEnv | ExportFormat::DockerEnv => {
            (dotenv::valid_shell_name, "environment")
        }
        ExportFormat::K8sSecret => (dotenv::valid_k8s_key, "Kubernetes Secret"),
    };
    let bad: Vec<&str> = map.keys().map(String::as_str).filter(|k| !valid(k)).collect();
    if !bad.is_empty() {
        bail!("these names cannot be written as {kind} variables: {} (use --format json)", bad.join(", "));
    }
    let nul: Vec<&str> = map.iter().filter(|(_, v)| v.contains('\0')).map(|(k, _)| k.as_str()).collect();
    if !nul.is_empty() {
        bail!("these values contain NUL bytes and cannot be written as {kind}: {} (use --format json)", nul.join(", "));
    }
    if format == ExportFormat::DockerEnv {
        let multi: Vec<&str> = map.iter().filter(|(_, v)| v.contains(['\n', '\r'])).map(|(k, _)| k.as_str()).collect();
        if !multi.is_empty() {
            bail!("docker env files cannot hold values that span lines: {} (use --format json)", multi.join(", "));
        }
    }
    if format == ExportFormat::K8sSecret && !dotenv::valid_k8s_name(k8s.name) {
        bail!("{:?} is not a valid Kubernetes name (lowercase letters, digits, '-', '.'): pass --name", k8s.name);
    }
    Ok(match format {
        ExportFormat::Shell => dotenv::render_shell(map),
        ExportFormat::K8sSecret => dotenv::render_k8s_secret(map, k8s.name, k8s.namespace),
        ExportFormat::GithubEnv => dotenv::render_github_env(map),
        ExportFormat::DockerEnv => dotenv::render_docker_env(map),
        _ => dotenv::render_dotenv(map),
    })
}

/// Runs a secrets command.
pub async fn run(addr: &str, cmd: SecretsCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        SecretsCommand::Set { env, pairs, rotate_after, out } => {
            let set = read_pairs(&pairs)?;
            let r = client
                .write(&env.project, &env.env, &SecretWriteRequest { set, rotate_after, ..Default::default() })
                .await?;
            print_write(&r, out.format)?;
        }
        SecretsCommand::Unset { env, names, out } => {
            let req = SecretWriteRequest { unset: names, ..Default::default() };
            let r = client.write(&env.project, &env.env, &req).await?;
            print_write(&r, out.format)?;
        }
        SecretsCommand::Get { env, name, reveal, version, wrap_ttl } => {
            let wrapping = wrap_ttl.is_some();
            let query =
                ReadQuery { reveal: Some(reveal || wrapping), field: Some(name.clone()), version, export: None };
            let view = client.read(&env.project, &env.env, &query).await?;
            let field = view.fields.into_iter().next().context("the server returned no field")?;
            if let Some(ttl) = wrap_ttl {
                // The value goes from the server into a wrapped response, never to the terminal.
                let payload = serde_json::json!({ name.as_str(): field.value });
                let answer = client.vault_wrapped("sys/wrapping/wrap", &payload, &ttl).await?;
                let info = &answer["wrap_info"];
                println!("{}", info["token"].as_str().context("the server returned no wrapping token")?);
                eprintln!(
                    "A one-time wrapping token for {name}: `keyward unwrap` opens it (from stdin) within {}s; \
                     after that, or once opened, it is worthless. Accessor: {}",
                    info["ttl"],
                    info["accessor"].as_str().unwrap_or_default()
                );
                return Ok(());
            }
            let text = Zeroizing::new(value_text(&field.value));
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.write_all(b"\n")?;
        }
        SecretsCommand::List { env, version, out } => {
            let view = client.read(&env.project, &env.env, &ReadQuery { version, ..ReadQuery::default() }).await?;
            match out.format {
                Format::Json => json(&view)?,
                Format::Table => table(
                    &["NAME", "VALUE", "UPDATED", "VERSION"],
                    view.fields
                        .into_iter()
                        .map(|f| vec![f.name, value_text(&f.value), f.updated_time, f.version.to_string()])
                        .collect(),
                ),
            }
        }
        SecretsCommand::Import { env, file, out } => {
            let text = read_source(&file)?;
            let parsed = dotenv::parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e}; nothing was imported"))?;
            if parsed.is_empty() {
                bail!("{file} holds no secrets; nothing was imported");
            }
            let set = parsed.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let r = client.write(&env.project, &env.env, &SecretWriteRequest { set, ..Default::default() }).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => println!(
                    "Imported into {}/{} (version {}): {} added, {} changed, {} unchanged",
                    r.mount,
                    r.path,
                    r.version,
                    r.added.len(),
                    r.changed.len(),
                    r.unchanged.len()
                ),
            }
        }
        SecretsCommand::Export { env, format, output, name, namespace } => {
            let map = string_map(&client, &env.project, &env.env).await?;
            let default_name = env.env.replace(['/', '_'], "-").to_ascii_lowercase();
            let k8s = K8sTarget { name: name.as_deref().unwrap_or(&default_name), namespace: namespace.as_deref() };
            let text = Zeroizing::new(render_export(&map, format, &k8s)?);
            match output {
                Some(path) => {
                    write_private_file(&path, &text)?;
                    eprintln!("Wrote {} secret(s) to {} (mode 0600)", map.len(), path.display());
                }
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
        }
        SecretsCommand::Diff { project, envs, out } => {
            let [a, b] = envs.as_slice() else { bail!("give exactly two environments: -e A -e B") };
            let d = client.diff(&project, a, b).await?;
            match out.format {
                Format::Json => json(&d)?,
                Format::Table => {
                    let mut rows: Vec<Vec<String>> = Vec::new();
                    rows.extend(d.only_in_a.iter().map(|n| vec![n.clone(), format!("only in {a}")]));
                    rows.extend(d.only_in_b.iter().map(|n| vec![n.clone(), format!("only in {b}")]));
                    rows.extend(d.different.iter().map(|n| vec![n.clone(), "different".into()]));
                    rows.sort();
                    if rows.is_empty() {
                        println!("{a} and {b} hold the same {} name(s) with equal values", d.same.len());
                    } else {
                        table(&["NAME", "DIFFERENCE"], rows);
                        println!("{} name(s) equal", d.same.len());
                    }
                }
            }
        }
        SecretsCommand::Stale { project, older_than, out } => {
            let fields = client.stale(&StaleQuery { mount: project, older_than }).await?;
            match out.format {
                Format::Json => json(&fields)?,
                Format::Table if fields.is_empty() => println!("No stale fields"),
                Format::Table => table(
                    &["PROJECT", "ENVIRONMENT", "NAME", "AGE", "LIMIT", "CHANGED", "VERSION"],
                    fields
                        .into_iter()
                        .map(|f| vec![f.mount, f.path, f.field, f.age, f.limit, f.changed_time, f.version.to_string()])
                        .collect(),
                ),
            }
        }
        SecretsCommand::History { env, out } => {
            let h = client.history(&env.project, &env.env).await?;
            match out.format {
                Format::Json => json(&h)?,
                Format::Table => table(
                    &["VERSION", "CREATED", "AUTHOR", "FIELDS", "STATE"],
                    h.versions
                        .into_iter()
                        .rev()
                        .map(|v| {
                            let state = if v.destroyed {
                                "destroyed".to_owned()
                            } else if !v.deletion_time.is_empty() {
                                format!("deleted {}", v.deletion_time)
                            } else {
                                String::new()
                            };
                            vec![v.version.to_string(), v.created_time, v.created_by, v.fields.join(", "), state]
                        })
                        .collect(),
                ),
            }
        }
        SecretsCommand::Rollback { env, version, out } => {
            let r = client.rollback(&env.project, &env.env, version).await?;
            print_write(&r, out.format)?;
        }
    }
    Ok(())
}

/// `keyward unwrap`: opens a wrapping token read from stdin, once.
pub async fn unwrap(addr: &str) -> Result<()> {
    let mut token = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut token).context("cannot read the wrapping token from stdin")?;
    let token = token.trim();
    if token.is_empty() {
        bail!("give the wrapping token on stdin (e.g. `printf %s \"$T\" | keyward unwrap`)");
    }
    let client = Client::new(addr)?;
    let answer = client
        .vault(reqwest::Method::POST, "sys/wrapping/unwrap", Some(&serde_json::json!({ "token": token })), true)
        .await?;
    let data = &answer["data"];
    let mut stdout = std::io::stdout().lock();
    match data.as_object().filter(|m| m.len() == 1).and_then(|m| m.values().next()).and_then(Value::as_str) {
        Some(single) => writeln!(stdout, "{single}")?,
        None => writeln!(stdout, "{}", Zeroizing::new(serde_json::to_string_pretty(data)?).as_str())?,
    }
    Ok(())
}
