//! Login-method rows: auth mounts, AppRole roles and secret IDs, userpass users (every row MAC'd),
//! failed-login counts, and the tokens a login issued.
use async_trait::async_trait;
use keyward_core::{
    AppRole, AuthItem, AuthKind, AuthMount, AuthReads, AuthTx, LoginFailures, SecretIdRecord, StoreError, TokenOrigin,
    User,
};
use uuid::Uuid;

use crate::db::{args, Arg, Exec, Pool, Row};
use crate::integrity::{Macs, APPROLE_ROLES, APPROLE_SECRET_IDS, AUTH_ITEMS, AUTH_MOUNTS, USERPASS_USERS};
use crate::rows::{corrupt, to_i64, u64_of, uuid};
use crate::sql_store::SqlStore;
use crate::sql_tx::{json, SqlTx};
use crate::Backend;

const MOUNT_COLS: &str = "id, path, kind, description, created_at, mac";
const ROLE_COLS: &str = "id, mount_id, name, role_id, config, created_at, mac";
const SECRET_ID_COLS: &str =
    "accessor, digest, role, metadata, cidrs, created_at, expires_at, num_uses, uses_left, mac";

const USER_COLS: &str =
    "id, mount_id, name, password_hash, config, totp_seed, totp_enrolled, totp_last_step, created_at, mac";

const ITEM_COLS: &str = "id, mount_id, kind, name, body, created_at, mac";

fn item(macs: &Macs, row: &Row) -> Result<AuthItem, StoreError> {
    macs.check(&AUTH_ITEMS, row)?;
    Ok(AuthItem {
        mount_id: uuid(row, "mount_id")?,
        kind: row.get("kind")?,
        name: row.get("name")?,
        body: row.get("body")?,
        created_at: row.get("created_at")?,
    })
}

fn item_args(macs: &Macs, i: &AuthItem) -> Result<Vec<Arg>, StoreError> {
    let values = args![i.key(), i.mount_id.to_string(), i.kind.clone(), i.name.clone(), i.body.clone(), i.created_at];
    let names = ["id", "mount_id", "kind", "name", "body", "created_at"];
    let mac = macs.seal(&AUTH_ITEMS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

fn item_key(mount_id: Uuid, kind: &str, name: &str) -> String {
    format!("{mount_id}/{kind}/{name}")
}

fn user(macs: &Macs, row: &Row) -> Result<User, StoreError> {
    macs.check(&USERPASS_USERS, row)?;
    let config: String = row.get("config")?;
    Ok(User {
        mount_id: uuid(row, "mount_id")?,
        name: row.get("name")?,
        password_hash: row.get("password_hash")?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("userpass user config"))?,
        totp_seed: row.get("totp_seed")?,
        totp_enrolled: row.get::<i64>("totp_enrolled")? != 0,
        totp_last_step: u64_of(row, "totp_last_step")?,
        created_at: row.get("created_at")?,
    })
}

fn user_args(macs: &Macs, u: &User) -> Result<Vec<Arg>, StoreError> {
    let values = args![
        u.key(),
        u.mount_id.to_string(),
        u.name.clone(),
        u.password_hash.clone(),
        json(&u.config),
        u.totp_seed.clone(),
        i64::from(u.totp_enrolled),
        to_i64(u.totp_last_step)?,
        u.created_at
    ];
    let names = [
        "id",
        "mount_id",
        "name",
        "password_hash",
        "config",
        "totp_seed",
        "totp_enrolled",
        "totp_last_step",
        "created_at",
    ];
    let mac = macs.seal(&USERPASS_USERS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

async fn users_where(db: &mut dyn Exec, macs: &Macs, filter: &str, args: Vec<Arg>) -> Result<Vec<User>, StoreError> {
    let sql = format!("SELECT {USER_COLS} FROM userpass_users WHERE {filter}");
    db.fetch_all(&sql, args).await?.iter().map(|r| user(macs, r)).collect()
}

async fn login_failures(db: &mut dyn Exec, id: &str, lock: &str) -> Result<Option<LoginFailures>, StoreError> {
    let sql = format!("SELECT failures, window_start, locked_until FROM login_failures WHERE id = $1{lock}");
    let Some(row) = db.fetch_optional(&sql, args![id]).await? else { return Ok(None) };
    Ok(Some(LoginFailures {
        failures: u32::try_from(row.get::<i64>("failures")?).map_err(|_| corrupt("login failures"))?,
        window_start: row.get("window_start")?,
        locked_until: row.get("locked_until")?,
    }))
}

fn auth_mount(macs: &Macs, row: &Row) -> Result<AuthMount, StoreError> {
    macs.check(&AUTH_MOUNTS, row)?;
    let kind: String = row.get("kind")?;
    Ok(AuthMount {
        id: uuid(row, "id")?,
        path: row.get("path")?,
        kind: AuthKind::parse(&kind).map_err(|_| corrupt("auth mount kind"))?,
        description: row.get("description")?,
        created_at: row.get("created_at")?,
    })
}

fn role(macs: &Macs, row: &Row) -> Result<AppRole, StoreError> {
    macs.check(&APPROLE_ROLES, row)?;
    let config: String = row.get("config")?;
    Ok(AppRole {
        mount_id: uuid(row, "mount_id")?,
        name: row.get("name")?,
        role_id: row.get("role_id")?,
        config: serde_json::from_str(&config).map_err(|_| corrupt("approle role config"))?,
        created_at: row.get("created_at")?,
    })
}

fn secret_id(macs: &Macs, row: &Row) -> Result<SecretIdRecord, StoreError> {
    macs.check(&APPROLE_SECRET_IDS, row)?;
    let (metadata, cidrs): (String, String) = (row.get("metadata")?, row.get("cidrs")?);
    Ok(SecretIdRecord {
        accessor: row.get("accessor")?,
        digest: row.get("digest")?,
        role: row.get("role")?,
        metadata: serde_json::from_str(&metadata).map_err(|_| corrupt("secret id metadata"))?,
        cidrs: serde_json::from_str(&cidrs).map_err(|_| corrupt("secret id cidrs"))?,
        created_at: row.get("created_at")?,
        expires_at: row.get("expires_at")?,
        num_uses: u64_of(row, "num_uses")?,
        uses_left: u64_of(row, "uses_left")?,
    })
}

fn mount_args(macs: &Macs, m: &AuthMount) -> Result<Vec<Arg>, StoreError> {
    let values = args![m.id.to_string(), m.path.clone(), m.kind.as_str(), m.description.clone(), m.created_at];
    let names = ["id", "path", "kind", "description", "created_at"];
    let mac = macs.seal(&AUTH_MOUNTS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

fn role_args(macs: &Macs, r: &AppRole) -> Result<Vec<Arg>, StoreError> {
    let values =
        args![r.key(), r.mount_id.to_string(), r.name.clone(), r.role_id.clone(), json(&r.config), r.created_at];
    let names = ["id", "mount_id", "name", "role_id", "config", "created_at"];
    let mac = macs.seal(&APPROLE_ROLES, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

fn secret_id_args(macs: &Macs, s: &SecretIdRecord) -> Result<Vec<Arg>, StoreError> {
    let values = args![
        s.accessor.clone(),
        s.digest.clone(),
        s.role.clone(),
        json(&s.metadata),
        json(&s.cidrs),
        s.created_at,
        s.expires_at,
        to_i64(s.num_uses)?,
        to_i64(s.uses_left)?
    ];
    let names =
        ["accessor", "digest", "role", "metadata", "cidrs", "created_at", "expires_at", "num_uses", "uses_left"];
    let mac = macs.seal(&APPROLE_SECRET_IDS, &names.iter().copied().zip(values.iter()).collect::<Vec<_>>())?;
    Ok(values.into_iter().chain([mac]).collect())
}

async fn roles_where(db: &mut dyn Exec, macs: &Macs, filter: &str, args: Vec<Arg>) -> Result<Vec<AppRole>, StoreError> {
    let sql = format!("SELECT {ROLE_COLS} FROM approle_roles WHERE {filter}");
    db.fetch_all(&sql, args).await?.iter().map(|r| role(macs, r)).collect()
}

async fn secret_ids_where(
    db: &mut dyn Exec,
    macs: &Macs,
    filter: &str,
    args: Vec<Arg>,
) -> Result<Vec<SecretIdRecord>, StoreError> {
    let sql = format!("SELECT {SECRET_ID_COLS} FROM approle_secret_ids WHERE {filter}");
    db.fetch_all(&sql, args).await?.iter().map(|r| secret_id(macs, r)).collect()
}

#[async_trait]
impl AuthReads for SqlStore {
    async fn auth_mounts(&self) -> Result<Vec<AuthMount>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {MOUNT_COLS} FROM auth_mounts ORDER BY path");
        Pool(&self.pool).fetch_all(&sql, vec![]).await?.iter().map(|r| auth_mount(&macs, r)).collect()
    }

    async fn approle_roles(&self, mount_id: Uuid) -> Result<Vec<AppRole>, StoreError> {
        let filter = "mount_id = $1 ORDER BY name";
        roles_where(&mut Pool(&self.pool), &self.macs()?, filter, args![mount_id.to_string()]).await
    }

    async fn approle_role(&self, mount_id: Uuid, name: &str) -> Result<Option<AppRole>, StoreError> {
        let key = keyward_core::role_key(mount_id, name);
        Ok(roles_where(&mut Pool(&self.pool), &self.macs()?, "id = $1", args![key]).await?.pop())
    }

    async fn approle_role_with_id(&self, mount_id: Uuid, role_id: &str) -> Result<Option<AppRole>, StoreError> {
        let filter = "mount_id = $1 AND role_id = $2";
        Ok(roles_where(&mut Pool(&self.pool), &self.macs()?, filter, args![mount_id.to_string(), role_id]).await?.pop())
    }

    async fn approle_secret_ids(&self, role: &str) -> Result<Vec<SecretIdRecord>, StoreError> {
        let filter = "role = $1 ORDER BY accessor";
        secret_ids_where(&mut Pool(&self.pool), &self.macs()?, filter, args![role]).await
    }

    async fn approle_secret_id(&self, accessor: &str) -> Result<Option<SecretIdRecord>, StoreError> {
        Ok(secret_ids_where(&mut Pool(&self.pool), &self.macs()?, "accessor = $1", args![accessor]).await?.pop())
    }

    async fn approle_secret_id_by_digest(&self, digest: &str) -> Result<Option<SecretIdRecord>, StoreError> {
        Ok(secret_ids_where(&mut Pool(&self.pool), &self.macs()?, "digest = $1", args![digest]).await?.pop())
    }

    async fn userpass_users(&self, mount_id: Uuid) -> Result<Vec<User>, StoreError> {
        let filter = "mount_id = $1 ORDER BY name";
        users_where(&mut Pool(&self.pool), &self.macs()?, filter, args![mount_id.to_string()]).await
    }

    async fn userpass_user(&self, mount_id: Uuid, name: &str) -> Result<Option<User>, StoreError> {
        let key = keyward_core::role_key(mount_id, name);
        Ok(users_where(&mut Pool(&self.pool), &self.macs()?, "id = $1", args![key]).await?.pop())
    }

    async fn login_failures(&self, id: &str) -> Result<Option<LoginFailures>, StoreError> {
        login_failures(&mut Pool(&self.pool), id, "").await
    }

    async fn auth_items(&self, mount_id: Uuid, kind: &str) -> Result<Vec<AuthItem>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {ITEM_COLS} FROM auth_items WHERE mount_id = $1 AND kind = $2 ORDER BY name");
        Pool(&self.pool)
            .fetch_all(&sql, args![mount_id.to_string(), kind])
            .await?
            .iter()
            .map(|r| item(&macs, r))
            .collect()
    }

    async fn auth_item(&self, mount_id: Uuid, kind: &str, name: &str) -> Result<Option<AuthItem>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {ITEM_COLS} FROM auth_items WHERE id = $1");
        let key = item_key(mount_id, kind, name);
        Pool(&self.pool).fetch_optional(&sql, args![key]).await?.map(|r| item(&macs, &r)).transpose()
    }
}

impl SqlTx {
    fn row_lock(&self) -> &'static str {
        if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        }
    }
}

#[async_trait]
impl AuthTx for SqlTx {
    async fn auth_mount(&mut self, path: &str) -> Result<Option<AuthMount>, StoreError> {
        let macs = self.macs()?;
        let sql = format!("SELECT {MOUNT_COLS} FROM auth_mounts WHERE path = $1{}", self.row_lock());
        self.db.fetch_optional(&sql, args![path]).await?.map(|r| auth_mount(&macs, &r)).transpose()
    }

    async fn insert_auth_mount(&mut self, mount: &AuthMount) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO auth_mounts (id, path, kind, description, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6)";
        self.db.execute(sql, mount_args(&self.macs()?, mount)?).await?;
        Ok(())
    }

    async fn delete_auth_mount(&mut self, id: Uuid) -> Result<(), StoreError> {
        let id = id.to_string();
        self.db
            .execute(
                "DELETE FROM approle_secret_ids WHERE role IN (SELECT id FROM approle_roles WHERE mount_id = $1)",
                args![id.clone()],
            )
            .await?;
        self.db.execute("DELETE FROM approle_roles WHERE mount_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM userpass_users WHERE mount_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM auth_items WHERE mount_id = $1", args![id.clone()]).await?;
        self.db.execute("DELETE FROM auth_mounts WHERE id = $1", args![id]).await?;
        Ok(())
    }

    async fn approle_role_locked(&mut self, mount_id: Uuid, name: &str) -> Result<Option<AppRole>, StoreError> {
        let (macs, lock) = (self.macs()?, self.row_lock());
        let filter = format!("id = $1{lock}");
        Ok(roles_where(&mut *self.db, &macs, &filter, args![keyward_core::role_key(mount_id, name)]).await?.pop())
    }

    async fn approle_role_by_role_id(&mut self, mount_id: Uuid, role_id: &str) -> Result<Option<AppRole>, StoreError> {
        let (macs, lock) = (self.macs()?, self.row_lock());
        let filter = format!("mount_id = $1 AND role_id = $2{lock}");
        Ok(roles_where(&mut *self.db, &macs, &filter, args![mount_id.to_string(), role_id]).await?.pop())
    }

    async fn put_approle_role(&mut self, role: &AppRole) -> Result<(), StoreError> {
        let sql = "INSERT INTO approle_roles (id, mount_id, name, role_id, config, created_at, mac) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET role_id = excluded.role_id, \
                   config = excluded.config, created_at = excluded.created_at, mac = excluded.mac";
        self.db.execute(sql, role_args(&self.macs()?, role)?).await?;
        Ok(())
    }

    async fn delete_approle_role(&mut self, role: &AppRole) -> Result<(), StoreError> {
        self.db.execute("DELETE FROM approle_secret_ids WHERE role = $1", args![role.key()]).await?;
        self.db.execute("DELETE FROM approle_roles WHERE id = $1", args![role.key()]).await?;
        Ok(())
    }

    async fn insert_secret_id(&mut self, s: &SecretIdRecord) -> Result<(), StoreError> {
        let sql = "INSERT INTO approle_secret_ids (accessor, digest, role, metadata, cidrs, created_at, expires_at, \
                   num_uses, uses_left, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        self.db.execute(sql, secret_id_args(&self.macs()?, s)?).await?;
        Ok(())
    }

    async fn secret_id_locked(&mut self, digest: &str) -> Result<Option<SecretIdRecord>, StoreError> {
        let (macs, lock) = (self.macs()?, self.row_lock());
        let filter = format!("digest = $1{lock}");
        Ok(secret_ids_where(&mut *self.db, &macs, &filter, args![digest]).await?.pop())
    }

    async fn update_secret_id(&mut self, s: &SecretIdRecord) -> Result<(), StoreError> {
        let sql = "UPDATE approle_secret_ids SET digest = $2, role = $3, metadata = $4, cidrs = $5, created_at = $6, \
                   expires_at = $7, num_uses = $8, uses_left = $9, mac = $10 WHERE accessor = $1";
        self.db.execute(sql, secret_id_args(&self.macs()?, s)?).await?;
        Ok(())
    }

    async fn delete_secret_id(&mut self, accessor: &str) -> Result<bool, StoreError> {
        Ok(self.db.execute("DELETE FROM approle_secret_ids WHERE accessor = $1", args![accessor]).await? > 0)
    }

    async fn tokens_of_origin(&mut self, origin: &TokenOrigin) -> Result<Vec<String>, StoreError> {
        // Only through the MAC'd rows: a row whose origin was changed in SQL fails its MAC here.
        let macs = self.macs()?;
        let sql = format!(
            "SELECT {} FROM tokens WHERE auth_mount = $1 AND revoked = 0 AND ($2 = '' OR auth_role = $2) \
             AND ($3 = '' OR secret_id_accessor = $3)",
            crate::rows::TOKEN_COLS
        );
        let rows = self
            .db
            .fetch_all(&sql, args![origin.auth_mount.clone(), origin.role.clone(), origin.secret_id_accessor.clone()])
            .await?;
        rows.iter().map(|r| crate::rows::token(&macs, r).map(|t| t.accessor)).collect()
    }

    async fn userpass_user_locked(&mut self, mount_id: Uuid, name: &str) -> Result<Option<User>, StoreError> {
        let (macs, lock) = (self.macs()?, self.row_lock());
        let filter = format!("id = $1{lock}");
        Ok(users_where(&mut *self.db, &macs, &filter, args![keyward_core::role_key(mount_id, name)]).await?.pop())
    }

    async fn put_userpass_user(&mut self, u: &User) -> Result<(), StoreError> {
        let sql = "INSERT INTO userpass_users (id, mount_id, name, password_hash, config, totp_seed, totp_enrolled, \
                   totp_last_step, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                   ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, config = excluded.config, \
                   totp_seed = excluded.totp_seed, totp_enrolled = excluded.totp_enrolled, \
                   totp_last_step = excluded.totp_last_step, created_at = excluded.created_at, mac = excluded.mac";
        self.db.execute(sql, user_args(&self.macs()?, u)?).await?;
        Ok(())
    }

    async fn delete_userpass_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.db.execute("DELETE FROM userpass_users WHERE id = $1", args![u.key()]).await?;
        Ok(())
    }

    async fn login_failures_locked(&mut self, id: &str) -> Result<Option<LoginFailures>, StoreError> {
        let lock = self.row_lock();
        login_failures(&mut *self.db, id, lock).await
    }

    async fn set_login_failures(&mut self, id: &str, f: Option<&LoginFailures>) -> Result<(), StoreError> {
        match f {
            None => self.db.execute("DELETE FROM login_failures WHERE id = $1", args![id]).await?,
            Some(f) => {
                let sql =
                    "INSERT INTO login_failures (id, failures, window_start, locked_until) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (id) DO UPDATE SET failures = excluded.failures, \
                           window_start = excluded.window_start, locked_until = excluded.locked_until";
                self.db.execute(sql, args![id, i64::from(f.failures), f.window_start, f.locked_until]).await?
            }
        };
        Ok(())
    }

    async fn put_auth_item(&mut self, item: &AuthItem) -> Result<(), StoreError> {
        let sql = "INSERT INTO auth_items (id, mount_id, kind, name, body, created_at, mac) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET body = excluded.body, \
                   created_at = excluded.created_at, mac = excluded.mac";
        self.db.execute(sql, item_args(&self.macs()?, item)?).await?;
        Ok(())
    }

    async fn delete_auth_item(&mut self, mount_id: Uuid, kind: &str, name: &str) -> Result<bool, StoreError> {
        let n = self.db.execute("DELETE FROM auth_items WHERE id = $1", args![item_key(mount_id, kind, name)]).await?;
        Ok(n > 0)
    }
}
